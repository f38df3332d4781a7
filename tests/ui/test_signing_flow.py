"""The radiologist signs a pre-read in the web workspace, in Chromium against a real ``cds serve --dev``.

Signing before every finding has the reader's verdict is refused with the reason on screen; with the verdicts
given, the impression (Chinese) and the name signed, the version shows as final with the files to download, and
signing again amends. The sign-off panel is checked at three screen sizes (no sideways scrolling, contrast).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]
SIZES = {"desktop": (1280, 800), "tablet": (768, 1024), "phone": (390, 844)}
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def _open(page: Any, server: str, study: dict[str, str]) -> None:
    page.goto(f"{server}/ui/#/viewer/{study['job_id']}/{study['uid']}")
    expect(page.get_by_role("heading", name="Sign-off")).to_be_visible()


def test_a_radiologist_signs_after_reviewing_every_finding_and_amends(page: Any, server: str,
                                                                      study: dict[str, str], artifacts: Path) -> None:  # fmt: skip
    sign_in(page, server)
    _open(page, server, study)
    expect(page.locator("#signatures")).to_contain_text("Not signed yet")
    page.get_by_label("Impression").fill("右侧少量胸腔积液。")
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator("#sign-error")).to_contain_text("give your verdict on every finding")
    page.screenshot(path=artifacts / "20-sign-refused.png")

    base = f"{server}/v1/preread/{study['job_id']}/{study['uid']}"
    reader = dev_headers(server, "radiologist", subject="dev-radiologist")
    labels = [f["label"] for f in httpx.get(f"{base}/view", headers=reader, timeout=30).json()["findings"]]
    rejected = study["positives"].split(",")[0]
    for label in labels:
        verdict = "rejected" if label == rejected else "accepted"
        assert httpx.post(f"{base}/feedback", json={"label": label, "verdict": verdict}, headers=reader,
                          timeout=30).status_code == 201  # fmt: skip
    page.reload()
    expect(page.get_by_role("heading", name="Sign-off")).to_be_visible()
    page.get_by_label("Impression").fill("右侧少量胸腔积液，建议一周后复查。")
    page.get_by_label("Name on the report (optional)").fill("王立新")
    page.get_by_role("button", name="Sign report").click()
    first = page.locator('#signatures li[data-version="1"]')
    expect(first).to_have_attribute("data-status", "final")
    expect(first).to_contain_text("王立新")
    expect(first).to_contain_text("右侧少量胸腔积液，建议一周后复查。")
    expect(page.get_by_role("button", name="Signed report (DICOM SR)")).to_be_visible()
    assert page.evaluate(LOW_CONTRAST) == []
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.get_by_role("heading", name="Sign-off").scroll_into_view_if_needed()
        assert page.evaluate(OVERFLOW) <= 0, name  # nothing wider than the screen
        page.screenshot(path=artifacts / f"21-signed-{name}.png")
    page.set_viewport_size({"width": 1280, "height": 800})

    sr = pydicom.dcmread(io.BytesIO(httpx.get(f"{base}/signed-report-sr.dcm", headers=reader, timeout=30).content))
    assert (sr.CompletionFlag, sr.VerificationFlag) == ("COMPLETE", "VERIFIED")
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "王立新"

    page.get_by_label("Impression").fill("右侧少量胸腔积液（复核后）。")
    page.get_by_role("button", name="Amend and sign").click()
    expect(page.locator('#signatures li[data-version="2"]')).to_have_attribute("data-status", "amended")
    page.screenshot(path=artifacts / "22-amended.png")
    events = httpx.get(f"{server}/v1/audit/events?limit=1000", headers=dev_headers(server, "admin"), timeout=30).json()
    assert [e["agent"][0]["who"]["display"] for e in events if e["type"]["code"] == "imaging.report.sign"] == [
        "dev-radiologist", "dev-radiologist"]
