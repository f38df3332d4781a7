"""Browser-test fixtures: a real ``cds serve --dev`` on a loopback port and Debian's Chromium driven by Playwright.

Nothing downloads a browser: Playwright launches ``/usr/bin/chromium``. Without it the tests skip with the install
line; screenshots go to ``$CDS_UI_ARTIFACTS`` (default: a pytest temporary folder), taken at 1280x800.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect, sync_playwright

from cds.serving.api.app import create_app
from cds.settings import Settings
from tests.support.servers import serve_in_thread
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
PREREAD_TIMEOUT_S = 180
# The visible text whose contrast with its effective background is below WCAG AA (4.5:1).
LOW_CONTRAST = """() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = ({r, g, b}) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const background = (el) => { for (let e = el; e; e = e.parentElement) { const c = parse(getComputedStyle(e).backgroundColor);
    if (c && c.a > 0.5) return c; } return parse(getComputedStyle(document.documentElement).backgroundColor); };
  const low = [];
  for (const el of document.querySelectorAll("button, label, th, td, a, legend, p, dt, dd, h1, h2, option, .badge, select, input[type=text], input[type=number]")) {
    if (el.disabled || !el.getClientRects().length || !(el.textContent || el.value || "").trim()) continue;
    const [a, b] = [lum(parse(getComputedStyle(el).color)), lum(background(el))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < 4.5) low.push(`${el.tagName} "${(el.textContent || el.value).trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return low;
}"""
# What the focused element is and the name assistive technology would read for it.
FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const byId = (ids) => ids.split(/\\s+/).map((id) => document.getElementById(id)?.textContent || "").join(" ");
  const name = el.getAttribute("aria-label") || (el.getAttribute("aria-labelledby") && byId(el.getAttribute("aria-labelledby")))
    || (el.labels && el.labels.length ? Array.from(el.labels).map((l) => l.textContent).join(" ") : "")
    || el.textContent || el.getAttribute("title") || "";
  return {id: el.id, tag: el.tagName.toLowerCase(), type: el.type || "", name: name.trim()};
}"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ui: drives the web workspace in headless Chromium (/usr/bin/chromium)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")
    return CHROMIUM


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CDS_UI_ARTIFACTS") or tmp_path_factory.mktemp("ui-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def serve(tmp_path_factory: pytest.TempPathFactory, ct_model: str, **settings: Any) -> Iterator[str]:
    """``cds serve --dev`` in a thread with these settings; its URL."""
    data = tmp_path_factory.mktemp("ui-server")
    app = create_app(Settings(dev_mode=True, data_dir=data, preread_saliency_grid=3, ct_model=ct_model, **settings))
    with serve_in_thread(app, start_timeout_s=120) as url:
        yield url


@pytest.fixture(scope="module")
def server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``cds serve --dev`` in this process: small heatmap grid, no CT model (radiographs only)."""
    yield from serve(tmp_path_factory, ct_model="")


@pytest.fixture(scope="module")
def ct_server(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``cds serve --dev`` with the CT organ segmentation model."""
    yield from serve(tmp_path_factory, ct_model="ct-organs-demo")


@pytest.fixture(scope="module")
def radiograph(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated 256x256 chest radiograph with cardiomegaly and an effusion (several positive findings)."""
    pixels = render(256, 5, 0, findings={"Cardiomegaly", "Effusion"})[0]
    return write_radiograph(tmp_path_factory.mktemp("ui-dicom") / "chest.dcm", pixels, patient_id="SYNTH-UI-1")


def dev_token(url: str, *roles: str, subject: str = "ui-test", site: str | None = None) -> str:
    """A dev-mode bearer token (for the site named, else the server's own)."""
    body: dict[str, Any] = {"subject": subject, "roles": list(roles)} | ({"site": site} if site else {})
    answer = httpx.post(f"{url}/v1/dev/token", json=body, timeout=30)
    answer.raise_for_status()
    return str(answer.json()["access_token"])


def dev_headers(url: str, *roles: str, subject: str = "ui-test") -> dict[str, str]:
    return {"Authorization": f"Bearer {dev_token(url, *roles, subject=subject)}"}


def wait_for_preread(url: str, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + PREREAD_TIMEOUT_S
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = httpx.get(f"{url}/v1/preread/{job_id}", headers=headers, timeout=30).json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.25)
    raise AssertionError(f"pre-read {job_id} not finished in {PREREAD_TIMEOUT_S} s: {status}")


def stow(url: str, files: list[Path]) -> str:
    """Send ``files`` in one STOW-RS request (over HTTP, not the UI); answers the pre-read job's id."""
    body = multipart_body([f.read_bytes() for f in files])
    content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    stored = httpx.post(f"{url}/dicomweb/studies", content=body,
                        headers=dev_headers(url, "radiologist") | {"Content-Type": content_type}, timeout=60)
    assert stored.status_code == 200, stored.text
    return str(stored.headers["Location"].rsplit("/", 1)[-1])


def store_and_preread(url: str, files: list[Path]) -> dict[str, Any]:
    """Send ``files`` in one STOW-RS request (over HTTP, not the UI) and wait for the pre-read to finish."""
    status = wait_for_preread(url, stow(url, files), dev_headers(url, "radiologist"))
    assert status["state"] == "done", status
    return status


@pytest.fixture(scope="module")
def study(server: str, radiograph: Path) -> dict[str, str]:
    """The radiograph stored and pre-read: job, uid and its positive labels."""
    status = store_and_preread(server, [radiograph])
    job_id = status["id"]
    (outcome,) = status["result"]["outcomes"]
    positives = [f["label"] for f in outcome["summary"] if f["positive"]]
    assert len(positives) >= 2, positives  # the flow accepts one and rejects another
    return {"job_id": job_id, "uid": outcome["uid"], "positives": ",".join(positives)}


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True,
                                              args=["--disable-dev-shm-usage", "--disable-gpu"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error"
           and not message.text.startswith("Failed to load resource") else None)  # CSP violations land here
    yield tab
    context.close()
    assert errors == [], f"errors in the page: {errors}"


def tab_through(page: Any, limit: int = 150) -> list[dict[str, str]]:
    """Press Tab from the top of the page until focus comes round again: what the keyboard reaches, in order."""
    page.evaluate("() => { document.body.tabIndex = -1; document.body.focus(); }")
    reached: list[dict[str, str]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED)
        if focused is None or (reached and focused == reached[0]):
            break
        reached.append(focused)
    assert reached and reached[0]["name"] == "Skip to main content"
    return reached


def sign_in(page: Any, server: str, role: str = "radiologist", *, navigate: bool = True) -> None:
    """Dev sign-in as ``dev-<role>``; from the workspace's front page, or (``navigate=False``) the sign-in on screen."""
    if navigate:
        page.goto(f"{server}/ui/")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.get_by_label("Role").select_option(role)
    page.locator("#dev-signin").click()
    expect(page.locator("#whoami")).to_contain_text(f"dev-{role.replace('_', '-')}")


def sized_page(browser: Any, width: int, height: int) -> tuple[Any, Any, list[str]]:
    """A new context (empty cache) at ``width`` x ``height`` CSS px, its page, and the page's errors as they come
    (uncaught exceptions and console errors, a failed resource load aside)."""
    context = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    return context, page, errors
