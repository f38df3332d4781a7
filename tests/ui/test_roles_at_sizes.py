"""Each role's main views at four screen sizes (1280x800, 1920x1080, 1280x1024 and 1080x1920), with real data.

One ``cds serve --dev`` (a clinic whose hub is ``hub``) holds a pre-read chest radiograph referred to the hub, a read
slide, a read 12-lead ECG, three monitored patients and a hypertension registry. Each view is opened once and the
same page resized to each size; at each the page must not scroll sideways, the view's heading (and, for a patient's
view, whose it is) must be on screen and uncovered at the top, no text may fall below WCAG AA contrast, no text may
be cut off by a box that hides its overflow, and every control must be fully on screen and uncovered when scrolled
to (``elementFromPoint`` at its centre is the control). The study viewer's image must fill at least 60 % of the
window's height and show the film; the slide's tissue must keep its aspect on screen (from the screenshot's pixels)
and the ECG paper its squares (5-mm lines as far apart across as down, read from the screenshot). Every view at every
size is saved as ``roles-<view>-<width>x<height>.png`` in ``$CDS_UI_ARTIFACTS``; the film's own geometry is
``test_cs_viewer.py``'s.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect
from pydicom.data import get_testdata_file

from cds.services.risk import sample_bundle
from cds.serving.ui import STATIC
from tests.pipelines.pathology.slides import tumour_layout
from tests.serving.api.test_monitoring_board import for_patient
from tests.serving.api.test_observations import scored_set
from tests.serving.api.test_registries import bp, hypertension
from tests.ui.conftest import LOW_CONTRAST, dev_headers, dev_token, serve, sign_in
from training.data.he_slide import GeneratedSlide, write_slide

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

SIZES = [(1280, 800), (1920, 1080), (1280, 1024), (1080, 1920)]
READ_TIMEOUT_S = 180
SLIDE_W, SLIDE_H = 3072, 2048
MAJOR = (217, 119, 122)  # ecg_paper.js COLOURS.major: the 5-mm lines
OSD = "document.getElementById('slide-viewer').osd"
needs_bundle = pytest.mark.skipif(not (STATIC / "dist" / "slide.js").is_file(),
                                  reason="the workspace bundle is missing: make web (make test builds it)")

# What is wrong with the page as laid out now: sideways scroll, the heading (and the patient) off screen or covered
# at the top, text cut off by a box that hides its overflow, controls cut off or covered when scrolled to.
LAYOUT = """(top) => {
  const problems = [];
  const [W, H] = [window.innerWidth, window.innerHeight];
  const name = (el) => el ? `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}${typeof el.className === "string"
    && el.className ? "." + el.className.trim().split(/\\s+/).join(".") : ""}` : "nothing";
  const box = (r) => `[${Math.round(r.left)},${Math.round(r.top)} ${Math.round(r.width)}x${Math.round(r.height)}]`;
  const covered = (el, r) => {
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    const labelled = el.labels && Array.from(el.labels).some((label) => label.contains(hit));
    return hit && (el.contains(hit) || labelled) ? null : name(hit);
  };
  const scrolled = Array.from(document.querySelectorAll("*")).filter((el) => el.scrollHeight > el.clientHeight
    || el.scrollWidth > el.clientWidth).map((el) => [el, el.scrollTop, el.scrollLeft]);
  window.scrollTo(0, 0);
  const wide = document.scrollingElement.scrollWidth;
  if (wide > W) problems.push(`the page scrolls sideways: ${wide} px in a ${W} px window`);
  for (const selector of top) {
    const el = document.querySelector(selector);
    const r = el?.getBoundingClientRect();
    if (!el || !r.width || !r.height) { problems.push(`${selector} is not shown`); continue; }
    if (r.left < 0 || r.top < 0 || r.right > W || r.bottom > H) {
      problems.push(`${selector} ${box(r)} is not within the window at the top of the page`);
      continue;
    }
    const by = covered(el, r);
    if (by) problems.push(`${selector} is covered by ${by}`);
  }
  for (const el of document.querySelectorAll("#main *, .app-header *")) {
    const style = getComputedStyle(el);
    if (!["hidden", "clip"].includes(style.overflowX) || el.querySelector("canvas, img, svg, video")) continue;
    if (el.closest(".visually-hidden") || !el.getClientRects().length || !el.textContent.trim()) continue;
    if (el.scrollWidth > el.clientWidth + 1) problems.push(`${name(el)} cuts its text off: ${el.scrollWidth} px in ${el.clientWidth}`);
  }
  const controls = "button, a[href], input:not([type=hidden]), select, textarea, summary";
  for (const el of document.querySelectorAll(controls)) {
    if (!el.getClientRects().length || el.closest(".visually-hidden, .skip-link, .openseadragon-container")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || Number(style.opacity) === 0) continue;
    el.scrollIntoView({ block: "center", inline: "nearest" });
    const r = el.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) continue;
    if (r.left < -0.5 || r.right > W + 0.5 || r.top < -0.5 || r.bottom > H + 0.5) {
      problems.push(`${name(el)} "${(el.textContent || el.value || "").trim().slice(0, 30)}" ${box(r)} is cut off`);
      continue;
    }
    const by = covered(el, r);
    if (by) problems.push(`${name(el)} "${(el.textContent || "").trim().slice(0, 30)}" is covered by ${by}`);
  }
  for (const [el, top, left] of scrolled) el.scrollTo(left, top);  // as the reader left them
  window.scrollTo(0, 0);
  return problems;
}"""
SETTLED = "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => requestAnimationFrame(done))))"


@dataclass(frozen=True)
class View:
    """One view of one role: where it is, what must show at the top, and what else to check at each size."""

    role: str
    route: Callable[[dict[str, Any]], str]
    ready: str  # a selector that shows when the view has its data
    top: tuple[str, ...]  # the heading and, for a patient's view, whose it is
    check: Callable[[Any, dict[str, Any]], list[str]] = field(default=lambda page, data: [])
    prepare: Callable[[Any], None] = field(default=lambda page: None)


@pytest.fixture(scope="module")
def server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A clinic (``clinic-a``) whose hub is ``hub``: the viewer offers remote reading, the referrals view has a route."""
    yield from serve(tmp_path_factory, ct_model="", site="clinic-a", hub_site="hub")


def _wait_done(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + READ_TIMEOUT_S
    state = ""
    while time.monotonic() < deadline:
        state = httpx.get(url, headers=headers, timeout=30).json()["state"]
        if state in ("done", "failed"):
            break
        time.sleep(0.25)
    assert state == "done", f"{url}: {state}"


def _queue(server: str, path: Path, route: str, role: str, subject: str) -> str:
    """Upload ``path`` as ``dev-<role>`` (whose list it then is) for ``subject``; the finished job's id."""
    headers = dev_headers(server, role, subject=f"dev-{role}")
    queued = httpx.post(f"{server}{route}", params={"filename": path.name, "subject": subject},
                        content=path.read_bytes(), timeout=60,
                        headers=headers | {"Content-Type": "application/octet-stream"})  # fmt: skip
    assert queued.status_code == 202, queued.text
    _wait_done(f"{server}{queued.headers['Location']}", headers)
    return str(queued.json()["job_id"])


@pytest.fixture(scope="module")
def slide(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSlide:
    return write_slide(tmp_path_factory.mktemp("roles-slide") / "roles-slide.tif", SLIDE_W, SLIDE_H, seed=8, mpp=0.5,
                       tile=256, factor=2, layout=tumour_layout(SLIDE_W, SLIDE_H))  # fmt: skip


@pytest.fixture(scope="module")
def data(server: str, study: dict[str, str], slide: GeneratedSlide, tmp_path_factory: pytest.TempPathFactory
         ) -> dict[str, Any]:  # fmt: skip
    """Every role's data, made once: the study referred to the hub, a slide and an ECG read, monitored patients with
    an open alert, a hypertension registry with follow-ups, and the sample patient as a FHIR Bundle file."""
    clinic = {"Authorization": f"Bearer {dev_token(server, 'radiologist', subject='dev-radiologist')}"}
    referred = httpx.post(f"{server}/v1/referrals", json={"job_id": study["job_id"], "priority": "urgent",
                                                          "question": "Cardiomegaly? Please review."},
                          headers=clinic, timeout=30)  # fmt: skip
    assert referred.status_code == 201, referred.text

    slide_job = _queue(server, slide.path, "/v1/pathology/jobs", "pathologist", "Patient/roles-slide-1")
    ecg_job = _queue(server, Path(get_testdata_file("waveform_ecg.dcm", download=False)), "/v1/ecg/jobs",
                     "cardiologist", "Patient/roles-ecg-1")  # fmt: skip

    monitor = dev_headers(server, "clinician", subject="monitor-feed")
    for bundle in (for_patient(scored_set("a", 150, rr=18, pulse=80), "Patient/roles-calm"),
                   for_patient(scored_set("a", 120, rr=20, pulse=95), "Patient/roles-sick"),
                   for_patient(scored_set("b", 60, rr=25, pulse=112), "Patient/roles-sick")):  # the last opens an alert
        httpx.post(f"{server}/v1/observations", json=bundle, headers=monitor, timeout=60).raise_for_status()

    doctor = dev_headers(server, "clinician", subject="dr-li")
    httpx.post(f"{server}/v1/registries/hypertension", json=hypertension(), headers=doctor,
               timeout=30).raise_for_status()  # fmt: skip
    visits = {"resourceType": "Bundle", "type": "batch", "entry": [
        bp("v2", "2026-09-01T09:00:00+08:00", 156, 92, clinic=True),
        bp("v3", "2026-09-15T09:00:00+08:00", 158, 94, clinic=True)]}  # fmt: skip
    httpx.post(f"{server}/v1/observations", json=visits, headers=doctor, timeout=30).raise_for_status()

    bundle = tmp_path_factory.mktemp("roles-risk") / "sample-patient.json"
    bundle.write_text(json.dumps(sample_bundle()), encoding="utf-8")
    tissue = np.nonzero(slide.tissue_mask)
    tissue_ratio = (np.ptp(tissue[1]) + 1) / (np.ptp(tissue[0]) + 1)  # the generated tissue's width / height
    return {**study, "slide": slide_job, "ecg": ecg_job, "bundle": bundle, "tissue_ratio": float(tissue_ratio)}


def _shot(element: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(element.screenshot())).convert("RGB")).astype(np.int32)


def _check_film(page: Any, data: dict[str, Any]) -> list[str]:
    """The image box fills at least 60 % of the window's height at the top of the page and shows the film (66 % at
    1280x800: one series, no strip; the head one line)."""
    problems = []
    viewport = page.locator("#image")
    visible = page.evaluate("""() => { const r = document.getElementById("image").getBoundingClientRect();
      return Math.min(r.bottom, innerHeight) - Math.max(r.top, 0); }""")  # fmt: skip
    if visible < 0.6 * page.viewport_size["height"]:
        problems.append(f"the image box shows only {visible:.0f} px of the window's height at the top")
    grey = _shot(viewport).mean(axis=2)
    if grey.mean() < 10 or grey.std() < 10:
        problems.append(f"the image box looks empty: mean {grey.mean():.1f}, spread {grey.std():.1f}")
    return problems


def _osd_settle(page: Any) -> None:
    page.wait_for_function(f"""() => {{ const v = {OSD}; if (!v || !v.world.getItemCount()) return false;
      const [now, target] = [v.viewport.getZoom(true), v.viewport.getZoom(false)];
      return Math.abs(now - target) <= 1e-6 * target && v.world.getItemAt(0).getFullyLoaded(); }}""",
                           timeout=60_000)  # fmt: skip
    page.wait_for_timeout(200)


def _prepare_slide(page: Any) -> None:
    page.wait_for_function(f"() => !!{OSD}", timeout=30_000)
    page.get_by_label("Heatmap opacity").fill("0")  # the tissue's own pixels


def _check_slide(page: Any, data: dict[str, Any]) -> list[str]:
    """The whole slide on screen (home) shows all of its tissue with the tissue's own width to height."""
    page.locator("#slide-home").click()
    _osd_settle(page)
    shot = _shot(page.locator("#slide-viewer"))
    red, green, blue = shot[..., 0], shot[..., 1], shot[..., 2]
    rows, cols = np.nonzero((red - green > 30) & (blue - green > 30))  # H&E: pink and purple; not glass, not the bar
    if rows.size < 1000:
        return [f"the slide viewer shows no tissue ({rows.size} stained pixels)"]
    height, width = shot.shape[:2]
    problems = []
    if rows.min() == 0 or cols.min() == 0 or rows.max() == height - 1 or cols.max() == width - 1:
        problems.append("the tissue runs off the slide viewer's edge at the home view")
    ratio = (np.ptp(cols) + 1) / (np.ptp(rows) + 1)
    if abs(ratio / data["tissue_ratio"] - 1) > 0.03:
        problems.append(f"the tissue is {ratio:.3f} wide to tall on screen, {data['tissue_ratio']:.3f} on the slide")
    if min(height, width) < 300:
        problems.append(f"the slide viewer is only {width} x {height} px")
    return problems


def _line_spacing(mask: np.ndarray) -> tuple[float, int]:
    """Mean distance between the lines that run the length of ``mask`` (axis 0), and how many there are."""
    full = np.nonzero(mask.mean(axis=0) > 0.5)[0]
    if full.size < 2:
        return 0.0, int(full.size)
    starts = full[np.r_[True, np.diff(full) > 1]]
    return float((starts[-1] - starts[0]) / max(1, starts.size - 1)), int(starts.size)


def _check_ecg(page: Any, data: dict[str, Any]) -> list[str]:
    """The twelve-lead paper is drawn unstretched: its 5-mm lines, read from the screenshot, are as far apart across
    as down, and 5 mm apart at the scale the page states; its drawing buffer has the box's proportions."""
    leads = page.locator("#ecg-leads")
    shot = _shot(leads)
    major = np.abs(shot - np.array(MAJOR)).max(axis=2) <= 12
    across, vertical = _line_spacing(major)
    down, horizontal = _line_spacing(major.T)
    ppm = float(leads.get_attribute("data-px-per-mm"))
    problems = []
    if vertical < 10 or horizontal < 6:
        return [f"the 12-lead paper shows {vertical} vertical and {horizontal} horizontal 5-mm lines"]
    if abs(across - down) > 0.25 or abs(across - 5 * ppm) > 0.25:
        problems.append(f"5-mm squares are {across:.2f} x {down:.2f} px on screen, {5 * ppm:.2f} stated")
    buffer = leads.evaluate("(c) => { const r = c.getBoundingClientRect(); return [c.width / c.height, r.width / r.height]; }")
    if abs(buffer[0] / buffer[1] - 1) > 0.01:
        problems.append(f"the 12-lead canvas is drawn {buffer[0]:.3f} wide to tall and shown {buffer[1]:.3f}")
    return problems


VIEWS = {
    "worklist": View("radiologist", lambda d: "#/worklist", "#worklist-table button.open", ("#worklist-heading",)),
    "viewer": View("radiologist", lambda d: f"#/viewer/{d['job_id']}/{d['uid']}", "#image[data-window]",
                   ("#viewer-heading", "#fact-patient"), _check_film),
    "referrals": View("radiologist", lambda d: "#/referrals", "#turnaround-table", ("#turnaround-heading",)),
    "pathology": View("pathologist", lambda d: "#/pathology", "#slides-table button.open", ("#pathology-heading",)),
    "slide": View("pathologist", lambda d: f"#/pathology/{d['slide']}", "#slide-heat[data-loaded='true']",
                  ("#slide-heading", "#slide-patient"), _check_slide, _prepare_slide),
    "ecg-list": View("cardiologist", lambda d: "#/ecg", "#ecgs-table button.open", ("#ecg-heading",)),
    "ecg-read": View("cardiologist", lambda d: f"#/ecg/{d['ecg']}", "#ecg-leads[data-drawn='true']",
                     ("#ecg-read-heading", "#ecg-patient"), _check_ecg),
    "risk": View("clinician", lambda d: "#/risk", "#panel-patient-name", ("#risk-heading", "#panel-patient-name")),
    "monitoring": View("clinician", lambda d: "#/monitoring", "#monitoring-table tbody tr", ("#monitoring-heading",)),
    "monitoring-patient": View("clinician", lambda d: "#/monitoring/Patient%2Froles-sick", "figure.trend",
                               ("#patient-heading",)),
    "follow-up": View("clinician", lambda d: "#/follow-up", "#follow-up-table tbody th", ("#follow-up-heading",)),
    "models": View("ml_engineer", lambda d: "#/models", "#models-table tbody tr", ("#dashboard-heading",)),
}  # fmt: skip


@needs_bundle
@pytest.mark.parametrize("name", list(VIEWS), ids=[f"{v.role}-{k}" for k, v in VIEWS.items()])
def test_each_roles_view_fits_every_screen(page: Any, server: str, data: dict[str, Any], artifacts: Path,
                                          name: str) -> None:  # fmt: skip
    view = VIEWS[name]
    sign_in(page, server, view.role)
    page.goto(f"{server}/ui/{view.route(data)}")
    if name == "risk":  # the sample patient, as a FHIR Bundle file chosen on the page
        page.get_by_label("FHIR Bundle (JSON)").set_input_files(str(data["bundle"]))
    expect(page.locator(view.ready).first).to_be_visible(timeout=60_000)
    view.prepare(page)
    problems: dict[str, list[str]] = {}
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate(SETTLED)
        found = view.check(page, data)
        page.screenshot(path=artifacts / f"roles-{name}-{width}x{height}.png")
        found += page.evaluate(LAYOUT, list(view.top))
        found += [f"low contrast: {text}" for text in page.evaluate(LOW_CONTRAST)]
        if found:
            problems[f"{width}x{height}"] = found
    assert problems == {}
