"""The cardiologist's ECG view in a real browser: upload pydicom's real 12-lead ECG from the page, wait for the read,
see the twelve leads on the drawn grid, the rate and the rhythm; measure an interval with the calipers by drag and by
keyboard; accept the heart rate, correct the QRS, be refused an impossible value with its code; the history and
the audit trail hold the reviews. A generated ECG with inferior ST elevation raises the red STEMI banner and leads
the list. Contrast, keyboard reach and screenshots at 1280x800, 1920x1080 and 800x900.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import expect
from pydicom.data import get_testdata_file

from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.results.ecg import RHYTHM_TEXT
from cds.store.ecg_reviews import REVIEW_RHYTHMS
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in, tab_through
from training.data.ecg_signals import generate_ecg

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

READ_TIMEOUT_MS = 180_000
PYDICOM_ECG = Path(get_testdata_file("waveform_ecg.dcm", download=False))
PAPER, MINOR, MAJOR = (255, 250, 247), (242, 196, 196), (217, 119, 122)  # ecg_paper.js COLOURS
# How many pixels of the canvas are within a few levels of each colour, and how many are dark (the traces).
PIXELS = """(canvas, colours) => {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  const counts = colours.map(() => 0);
  let dark = 0;
  for (let i = 0; i < data.length; i += 4) {
    colours.forEach((c, k) => { if (Math.abs(data[i] - c[0]) <= 6 && Math.abs(data[i + 1] - c[1]) <= 6
      && Math.abs(data[i + 2] - c[2]) <= 6) counts[k] += 1; });
    if (data[i] < 80 && data[i + 1] < 80 && data[i + 2] < 80) dark += 1;
  }
  return {counts, dark, total: data.length / 4};
}"""


@pytest.fixture(scope="module")
def stemi_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated sinus-rhythm ECG with 0.3 mV ST elevation in II, III and aVF, in the documented CSV layout."""
    ecg = generate_ecg(np.random.default_rng([710_000, 1]), "sinus_rhythm", sampling_hz=500, duration_s=10,
                       st_mv={"II": 0.3, "III": 0.3, "aVF": 0.3})  # fmt: skip
    rows = ["# sampling_hz: 500", "# unit: uV", ",".join(STANDARD_LEADS)]
    rows += [",".join(f"{v * 1000:.0f}" for v in sample) for sample in ecg.signals.T]
    path = tmp_path_factory.mktemp("ui-ecg") / "inferior-st.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _upload(page: Any, path: Path, *, subject: str = "", sex: str = "", age: str = "") -> str:
    page.get_by_label("ECG file (DICOM, HL7 aECG XML or CSV)").set_input_files(str(path))
    if subject:
        page.get_by_label("Patient (optional)").fill(subject)
    if sex:
        page.get_by_label("Sex (for the ST and QTc limits)").select_option(sex)
    if age:
        page.get_by_label("Age in years (optional)").fill(age)
    page.get_by_role("button", name="Upload ECG").click()
    expect(page).to_have_url(re.compile(r"#/ecg/[0-9a-f-]{36}$"))
    return str(page.url.rsplit("/", 1)[-1])


def _wait_for_read(page: Any) -> None:
    expect(page.locator("#ecg-rhythm, #ecg-state.error")).to_be_visible(timeout=READ_TIMEOUT_MS)
    failed = page.locator("#ecg-state.error")
    if failed.count():
        pytest.fail(f"the ECG read did not finish: {failed.inner_text()}")
    expect(page.locator("#ecg-leads")).to_have_attribute("data-drawn", "true")
    expect(page.locator("#ecg-strip")).to_have_attribute("data-drawn", "true")


def _scale(page: Any) -> float:
    return float(page.locator("#ecg-strip").get_attribute("data-px-per-mm"))


def _no_page_overflow(page: Any) -> None:
    """Nothing but the rhythm strip's own scroller runs off the side of the window."""
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth + 1")


def test_cardiologist_reads_measures_and_reviews_a_real_ecg(page: Any, server: str, artifacts: Path) -> None:
    sign_in(page, server, "cardiologist")
    expect(page.get_by_role("heading", name="ECG reads", exact=True)).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(["ECG", "Referrals"])
    expect(page.locator("#ecgs-updated")).to_contain_text("updated")
    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []
    assert {"ecg-file", "ecg-subject", "ecg-sex", "ecg-age", "ecg-upload"} <= {f["id"] for f in reached}
    assert page.evaluate(LOW_CONTRAST) == []
    job = _upload(page, PYDICOM_ECG, subject="Patient/ecg-ui-1")
    _wait_for_read(page)
    headers = dev_headers(server, "cardiologist", subject="dev-cardiologist")
    result = httpx.get(f"{server}/v1/ecg/jobs/{job}", headers=headers, timeout=30).json()["result"]
    rate = result["measurements"]["heart_rate_bpm"]
    expect(page.locator("#ecg-rate")).to_have_text(f"{int(rate + 0.5)} bpm")  # as Math.round
    expect(page.locator("#ecg-rhythm")).to_have_text(RHYTHM_TEXT[result["rhythm"]["label"]])
    expect(page.locator("#nfdu")).to_contain_text("Not for diagnostic use.")
    expect(page.locator("#ecg-critical")).to_have_count(0)
    expect(page.locator("#ecg-patient")).to_have_text("Patient/ecg-ui-1")  # whose ECG it is

    labels = page.locator("#ecg-leads-paper .lead-label")
    expect(labels).to_have_count(12)
    assert sorted(labels.all_text_contents()) == sorted(STANDARD_LEADS)
    expect(page.locator("#ecg-leads")).to_have_attribute("data-layout", "3x4")
    expect(page.locator("#ecg-scale")).to_contain_text(re.compile(r"25 mm/s · 10 mm/mV · 1 mm = [\d.]+ px"))
    drawn = page.locator("#ecg-leads").evaluate(PIXELS, [PAPER, MINOR, MAJOR])
    paper, minor, major = drawn["counts"]
    assert paper > 0.3 * drawn["total"] and minor > 0.05 * drawn["total"] and major > 0.03 * drawn["total"], drawn
    assert drawn["dark"] > 2000, drawn  # twelve traces and the calibration pulses
    strip = page.locator("#ecg-strip").evaluate(PIXELS, [PAPER, MINOR, MAJOR])
    assert strip["counts"][2] > 0.03 * strip["total"] and strip["dark"] > 500, strip
    page.screenshot(path=artifacts / "50-ecg-read-1280.png", full_page=True)

    # Calipers: drag 20 mm (800 ms) from the strip's 1-s mark; the answer may be off by one pixel's worth of time.
    ppm = _scale(page)
    x0 = float(page.locator("#ecg-strip").get_attribute("data-x0"))
    overlay = page.locator("#ecg-calipers")
    overlay.scroll_into_view_if_needed()
    box = overlay.bounding_box()
    start_x = round(box["x"] + x0 + 25 * ppm)
    end_x = round(start_x + 20 * ppm)
    y = round(box["y"] + box["height"] / 2)
    page.mouse.move(start_x, y)
    page.mouse.down()
    page.mouse.move((start_x + end_x) / 2, y, steps=3)
    page.mouse.move(end_x, y, steps=3)
    page.mouse.up()
    readout = page.locator("#caliper-readout")
    expect(readout).to_contain_text(" ms · implies ")
    expected_ms = (end_x - start_x) / (25 * ppm) * 1000
    one_px_ms = 1000 / (25 * ppm)
    measured = float(readout.get_attribute("data-ms"))
    assert abs(measured - expected_ms) <= one_px_ms + 0.5, (measured, expected_ms, one_px_ms)
    assert abs(measured - 800) <= 2 * one_px_ms
    implied = re.search(r"implies (\d+) bpm", readout.inner_text())
    assert implied and abs(int(implied.group(1)) - 60000 / measured) <= 0.51, readout.inner_text()
    assert abs(float(page.locator("#caliper-start").input_value()) - 1000) <= one_px_ms + 1
    page.screenshot(path=artifacts / "51-ecg-calipers.png")

    page.get_by_label("Caliper start (ms)").fill("1000")  # the keyboard way: two numbers, then the arrow keys
    page.get_by_label("Caliper end (ms)").fill("1600")
    expect(readout).to_have_text("Interval 600 ms · implies 100 bpm")
    page.locator("#ecg-strip-paper").focus()
    page.keyboard.press("ArrowRight")
    expect(readout).to_have_text("Interval 640 ms · implies 94 bpm")
    page.keyboard.press("Shift+ArrowLeft")
    expect(readout).to_have_text("Interval 680 ms · implies 88 bpm")
    expect(page.get_by_label("Caliper start (ms)")).to_have_value("960")

    # Reviews: accept the rate, correct the QRS, be refused an impossible QRS with its code.
    options = page.locator("#correct-rhythm option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options == list(REVIEW_RHYTHMS)
    page.get_by_label("Comment sent with the next review (optional)").fill("Rate checked with calipers")
    page.get_by_role("button", name="Accept Heart rate", exact=True).click()
    expect(page.locator("#review-heart_rate_bpm")).to_have_attribute("data-verdict", "accepted")
    expect(page.locator("#review-heart_rate_bpm")).to_contain_text("Accepted · dev-cardiologist")
    page.get_by_label("Corrected QRS duration (ms)").fill("96")
    page.get_by_role("button", name="Save correction of QRS duration").click()
    expect(page.locator("#review-qrs_ms")).to_have_text("Corrected to 96 ms · dev-cardiologist")
    page.get_by_label("Corrected QRS duration (ms)").fill("5000")
    page.get_by_role("button", name="Save correction of QRS duration").click()
    error = page.locator("#review-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("invalid_value")
    expect(error).to_have_attribute("data-code", "invalid_value")
    expect(page.locator("#review-qrs_ms")).to_have_text("Corrected to 96 ms · dev-cardiologist")  # unchanged
    history = page.locator("#review-history tbody tr")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_have_attribute("data-item", "qrs_ms")
    expect(history.nth(0)).to_contain_text("96 ms")
    expect(history.nth(1)).to_have_attribute("data-item", "heart_rate_bpm")
    expect(history.nth(1)).to_contain_text("Rate checked with calipers")
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "52-ecg-reviewed.png", full_page=True)

    reached = tab_through(page, limit=250)
    assert [f for f in reached if not f["name"]] == []
    ids, names = {f["id"] for f in reached}, {f["name"] for f in reached}
    assert {"ecg-strip-paper", "caliper-start", "caliper-end", "correct-qrs_ms", "correct-rhythm"} <= ids
    assert {"Accept Heart rate", "Back to ECG reads", "Printout (PDF)", "FHIR DiagnosticReport"} <= names
    with page.expect_download() as download:
        page.get_by_role("button", name="Printout (PNG)").click()
    assert download.value.suggested_filename == "ecg-12-lead.png"

    admin = dev_headers(server, "admin")
    stored = httpx.get(f"{server}/v1/ecg/jobs/{job}/reviews", headers=admin, timeout=30).json()
    assert [(r["item"], r["verdict"], r["value"], r["actor"]) for r in stored] == [
        ("qrs_ms", "corrected", "96", "dev-cardiologist"),
        ("heart_rate_bpm", "accepted", f"{rate:g}", "dev-cardiologist"),
    ]
    events = httpx.get(f"{server}/v1/audit/events?limit=1000", headers=admin, timeout=30).json()
    reviews = [e for e in events if e["type"]["code"] == "ecg.review"]
    assert len(reviews) == 2 and all(e["agent"][0]["who"]["display"] == "dev-cardiologist" for e in reviews)

    # Other window sizes: the grid is redrawn at a scale that fits, the page itself never scrolls sideways.
    for size, name in (({"width": 1920, "height": 1080}, "53-ecg-read-1920.png"),
                       ({"width": 800, "height": 900}, "54-ecg-read-800.png")):
        before = page.locator("#ecg-leads").get_attribute("data-px-per-mm")
        page.set_viewport_size(size)
        expect(page.locator("#ecg-leads")).not_to_have_attribute("data-px-per-mm", before)
        assert _scale(page) >= 4
        _no_page_overflow(page)
        page.locator("h1").scroll_into_view_if_needed()
        page.screenshot(path=artifacts / name, full_page=True)
    expect(page.locator("#ecg-leads")).to_have_attribute("data-layout", "6x2")
    assert page.evaluate(LOW_CONTRAST) == []


def test_st_elevation_shows_the_critical_banner_and_leads_the_list(page: Any, server: str, stemi_csv: Path,
                                                                   artifacts: Path) -> None:
    sign_in(page, server, "cardiologist")
    job = _upload(page, stemi_csv, sex="male", age="60")
    _wait_for_read(page)
    banner = page.locator("#ecg-critical")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    expect(banner.locator(".critical-title")).to_contain_text("Possible STEMI — urgent review")
    leads = banner.locator(".critical-leads").inner_text()
    named = set(re.findall(r"\b(?:II|III|aVF)\b", leads))
    assert len(named) >= 2 and "leads" in leads, leads
    expect(page.locator('#ecg-flags li[data-code="possible_stemi"]')).to_contain_text("ST elevation")
    expect(page.locator("#ecg-st .st-flagged")).not_to_have_count(0)
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "55-ecg-stemi.png")

    page.get_by_role("button", name="Reject flag Possible STEMI — urgent review").click()
    expect(page.locator("#review-possible_stemi")).to_have_attribute("data-verdict", "rejected")

    page.get_by_label("Impression").fill("下壁导联ST段抬高，考虑早期复极，建议复查。")
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator("#sign-error")).to_contain_text("rhythm")  # the rhythm is not reviewed yet
    reader = dev_headers(server, "cardiologist", subject="dev-cardiologist")
    flags = httpx.get(f"{server}/v1/ecg/jobs/{job}", headers=reader, timeout=30).json()["result"]["flags"]
    for item in ["rhythm", *(f["code"] for f in flags if f["code"] != "possible_stemi")]:
        assert httpx.post(f"{server}/v1/ecg/jobs/{job}/reviews", json={"item": item, "verdict": "accepted"},
                          headers=reader, timeout=30).status_code == 201  # fmt: skip
    page.reload()
    _wait_for_read(page)
    page.get_by_label("Impression").fill("下壁导联ST段抬高，考虑早期复极，建议复查。")
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator('#signatures li[data-version="1"]')).to_have_attribute("data-status", "final")
    expect(page.get_by_role("button", name="Signed report (FHIR)")).to_be_visible()
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "57-ecg-signed.png")

    page.get_by_role("link", name="Back to ECG reads").click()
    first = page.locator("#ecgs-table tbody tr").first
    expect(first).to_have_attribute("data-job", job)
    expect(first).to_have_class(re.compile("critical"))
    expect(first).to_contain_text("Critical")
    expect(first.locator(".flags")).to_contain_text("Possible STEMI")
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "56-ecg-list.png")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, "radiologist")
    page.goto(f"{server}/ui/#/ecg/{job}")
    expect(page.get_by_role("heading", name="Not available for your role")).to_be_visible()
