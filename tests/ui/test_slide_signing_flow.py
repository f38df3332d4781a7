"""The pathologist signs a slide read in the web workspace, in Chromium against a real ``cds serve --dev``.

Signing before the AI finding has the pathologist's verdict is refused with the reason on screen; with the finding
accepted (with a comment) in the slide view, the impression (Chinese) and the name signed, the version shows as
final with the signed report to download, and signing again amends. A slide without tissue has no finding to
review and is signed on the impression alone. Checked at desktop, tablet and phone sizes (no sideways scrolling,
contrast).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.pipelines.pathology.slides import tumour_layout
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in
from training.data.he_slide import write_slide

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]
SIZES = {"desktop": (1280, 800), "tablet": (768, 1024), "phone": (390, 844)}
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"
SLIDE_SHOWN = "#slide-scalebar[data-px], #zoom-image[data-zoom='4']"  # the slide viewer, or without the bundle the zoom
READ_TIMEOUT_S = 180


def _read(server: str, slide: Path, headers: dict[str, str]) -> str:
    """Upload ``slide`` as the pathologist and wait for its read; the job's id."""
    queued = httpx.post(f"{server}/v1/pathology/jobs", params={"filename": slide.name}, content=slide.read_bytes(),
                        headers=headers | {"Content-Type": "application/octet-stream"}, timeout=60)  # fmt: skip
    assert queued.status_code == 202, queued.text
    location = f"{server}{queued.headers['Location']}"
    for _ in range(READ_TIMEOUT_S * 4):
        status = httpx.get(location, headers=headers, timeout=30).json()
        if status["state"] in ("done", "failed"):
            assert status["state"] == "done", status
            return str(status["id"])
        time.sleep(0.25)
    raise AssertionError(f"slide read not finished in {READ_TIMEOUT_S} s")


@pytest.fixture(scope="module")
def slides(server: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("ui-signed-slides")
    tumour = write_slide(folder / "tumour-slide.tif", 2048, 1536, seed=8, mpp=0.5, tile=256, factor=2,
                         layout=tumour_layout(2048, 1536))  # fmt: skip
    blank = write_slide(folder / "blank-slide.tif", 1024, 768, seed=6, mpp=0.5, tile=128, factor=2, blank=True)
    headers = dev_headers(server, "pathologist", subject="dev-pathologist")
    return {"tumour": _read(server, tumour.path, headers), "blank": _read(server, blank.path, headers)}


def _open(page: Any, server: str, job: str) -> None:
    page.goto(f"{server}/ui/#/pathology/{job}")
    expect(page.get_by_role("heading", name="Sign-off")).to_be_visible(timeout=60_000)


def test_a_pathologist_accepts_the_finding_signs_the_slide_and_amends(page: Any, server: str, slides: dict[str, str],
                                                                     artifacts: Path) -> None:  # fmt: skip
    sign_in(page, server, "pathologist")
    _open(page, server, slides["tumour"])
    expect(page.locator("#slide-call")).to_have_text("Tumour suspected")
    expect(page.locator(SLIDE_SHOWN)).to_have_count(1)  # the slide is on screen
    expect(page.locator("#signatures")).to_contain_text("Not signed yet")
    page.get_by_label("Impression").fill("浸润性癌。")
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator("#sign-error")).to_contain_text("give your verdict on every finding")
    page.screenshot(path=artifacts / "50-slide-sign-refused.png")

    row = page.locator('#findings-table tr[data-label="tumour"]')
    row.get_by_label("Comment on tumour").fill("癌巢明显")
    row.get_by_role("button", name="Accept tumour").click()
    expect(row.locator(".verdict")).to_have_attribute("data-verdict", "accepted")
    expect(row.locator(".verdict")).to_contain_text("Accepted by dev-pathologist")
    expect(row.locator(".verdict")).to_contain_text("癌巢明显")
    page.get_by_label("Impression").fill("浸润性导管癌，肿瘤面积约 20%。")
    page.get_by_label("Name on the report (optional)").fill("林医生")
    page.get_by_role("button", name="Sign report").click()
    first = page.locator('#signatures li[data-version="1"]')
    expect(first).to_have_attribute("data-status", "final")
    expect(first).to_contain_text("林医生")
    expect(first).to_contain_text("浸润性导管癌，肿瘤面积约 20%。")
    expect(page.get_by_role("button", name="Signed report (FHIR)")).to_be_visible()
    assert page.evaluate(LOW_CONTRAST) == []
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.get_by_role("heading", name="Sign-off").scroll_into_view_if_needed()
        assert page.evaluate(OVERFLOW) <= 0, name  # nothing wider than the screen
        page.screenshot(path=artifacts / f"51-slide-signed-{name}.png")
    page.screenshot(path=artifacts / "51-slide-signed-phone-page.png", full_page=True)  # the slide above the review
    page.set_viewport_size({"width": 1280, "height": 800})

    page.reload()  # the verdict and the signature are the server's, not the page's
    expect(page.locator(SLIDE_SHOWN)).to_have_count(1)
    expect(page.locator('#findings-table tr[data-label="tumour"] .verdict')).to_have_attribute("data-verdict",
                                                                                               "accepted")  # fmt: skip
    page.get_by_label("Impression").fill("浸润性导管癌（复核后）。")
    page.get_by_role("button", name="Amend and sign").click()
    expect(page.locator('#signatures li[data-version="2"]')).to_have_attribute("data-status", "amended")
    page.screenshot(path=artifacts / "52-slide-amended.png", full_page=True)

    reader = dev_headers(server, "pathologist", subject="dev-pathologist")
    base = f"{server}/v1/pathology/jobs/{slides['tumour']}"
    report = httpx.get(f"{base}/signed-diagnostic-report.json", headers=reader, timeout=30).json()
    assert report["status"] == "amended" and report["resultsInterpreter"][0]["display"] == "dev-pathologist"
    events = httpx.get(f"{server}/v1/audit/events?limit=1000", headers=dev_headers(server, "admin"), timeout=30).json()
    assert [e["agent"][0]["who"]["display"] for e in events if e["type"]["code"] == "pathology.report.sign"] == [
        "dev-pathologist", "dev-pathologist"]  # fmt: skip


def test_a_slide_without_tissue_is_signed_on_the_impression(page: Any, server: str, slides: dict[str, str],
                                                            artifacts: Path) -> None:  # fmt: skip
    sign_in(page, server, "pathologist")
    _open(page, server, slides["blank"])
    expect(page.locator("#no-findings")).to_have_text("No finding to review: nothing was scored.")
    expect(page.locator("#impression-help")).to_contain_text("There is no AI finding to review")
    page.get_by_label("Impression").fill("标本不满意：未见组织。")
    page.get_by_role("button", name="Sign report").click()
    expect(page.locator('#signatures li[data-version="1"]')).to_have_attribute("data-status", "final")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(OVERFLOW) <= 0
    page.get_by_role("heading", name="Sign-off").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "53-slide-no-tissue-signed-phone.png")


def test_a_stale_tab_cannot_overwrite_the_other_tabs_verdict_or_sign_over_it(page: Any, server: str,
                                                                            slides: dict[str, str],
                                                                            artifacts: Path) -> None:  # fmt: skip
    """Two tabs on one slide: what the second decides after the first saved is refused and it is asked to reload;
    after the reload it sees the first tab's verdict and may decide; then the first tab, now behind, may not sign."""
    first, second = page, page.context.new_page()
    for tab in (first, second):
        sign_in(tab, server, "pathologist")
        _open(tab, server, slides["tumour"])
    first.locator('#findings-table tr[data-label="tumour"]').get_by_role("button", name="Reject tumour").click()
    expect(first.locator('#findings-table tr[data-label="tumour"] .verdict')).to_have_attribute("data-verdict",
                                                                                               "rejected")  # fmt: skip
    row = second.locator('#findings-table tr[data-label="tumour"]')
    row.get_by_role("button", name="Accept tumour").click()
    expect(row.locator(".error")).to_contain_text("Another tab or reader changed the verdicts")
    expect(row.locator(".error")).to_have_attribute("data-code", "stale_verdicts")
    stored = httpx.get(f"{server}/v1/pathology/jobs/{slides['tumour']}/feedback",
                       headers=dev_headers(server, "pathologist"), timeout=30).json()  # fmt: skip
    assert stored[0]["verdict"] == "rejected"  # the first tab's stands; the second tab's was not kept
    assert second.evaluate(LOW_CONTRAST) == []
    second.screenshot(path=artifacts / "53-slide-stale-tab.png")
    row.get_by_role("button", name="Reload the read").click()
    row = second.locator('#findings-table tr[data-label="tumour"]')
    expect(row.locator(".verdict")).to_have_attribute("data-verdict", "rejected")  # the first tab's decision
    row.get_by_role("button", name="Accept tumour").click()
    expect(row.locator(".verdict")).to_have_attribute("data-verdict", "accepted")
    first.get_by_label("Impression").fill("浸润性癌。")
    first.get_by_role("button", name="Amend and sign").click()
    expect(first.locator("#sign-error")).to_contain_text("Not signed. Another tab or reader changed the verdicts")
    versions = httpx.get(f"{server}/v1/pathology/jobs/{slides['tumour']}/signatures",
                         headers=dev_headers(server, "pathologist"), timeout=30).json()  # fmt: skip
    assert [v["version"] for v in versions] == [1, 2]  # the two signatures of the test before; none from this tab
    second.close()


def test_an_ended_session_returns_to_the_read_with_the_impression_typed(page: Any, server: str,
                                                                       slides: dict[str, str]) -> None:  # fmt: skip
    """The session ends while the pathologist writes (a 401 on signing): after signing in again as the same user
    the workspace is back on the slide with the impression as typed; signing out on purpose forgets it."""
    sign_in(page, server, "pathologist")
    _open(page, server, slides["blank"])
    typed = "术后复查：未见肿瘤组织。\nNo tumour tissue seen."
    page.get_by_label("Impression").fill(typed)
    page.evaluate("""() => {  // the credential expires while they type
        const session = JSON.parse(sessionStorage.getItem("cds.session"));
        sessionStorage.setItem("cds.session", JSON.stringify({ ...session, secret: "expired" }));
    }""")
    page.get_by_role("button", name="Amend and sign").or_(page.get_by_role("button", name="Sign report")).click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    sign_in(page, server, "pathologist", navigate=False)
    expect(page.get_by_role("heading", name="Sign-off")).to_be_visible(timeout=60_000)
    assert page.url.endswith(f"#/pathology/{slides['blank']}")  # back on the read it was on
    expect(page.get_by_label("Impression")).to_have_value(typed)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, server, "pathologist")
    _open(page, server, slides["blank"])
    expect(page.get_by_label("Impression")).to_have_value("")  # signed out on purpose: the draft is gone
