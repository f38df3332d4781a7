"""The radiologist's flow in the web workspace, in a real browser against a real ``cds serve --dev``.

Sign in, upload a DICOM, watch the worklist row turn done, open the viewer, toggle the heatmap and change its
opacity, change window/level, accept one finding and reject another, reload and see the verdicts kept; keyboard
reach, accessible names and contrast of the viewer's controls; role-aware navigation. Every wait is on a
condition; screenshots (1280x800) go to ``$CDS_UI_ARTIFACTS``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LOW_CONTRAST, PREREAD_TIMEOUT_S, dev_headers, sign_in, tab_through

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

ANY = re.compile(r".+")


def _mean_grey(locator: Any) -> float:
    """The mean grey level of what the element shows on screen (the viewer draws on canvases, not an <img>)."""
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(locator.screenshot())).convert("L"), dtype=np.float32).mean())


def _shown(label: str) -> str:
    return label.replace("_", " ")  # how the workspace shows a label (the API keeps the original)


def _open_viewer(page: Any, server: str, study: dict[str, str]) -> None:
    page.goto(f"{server}/ui/#/viewer/{study['job_id']}/{study['uid']}")
    _wait_for_viewer(page)


def _wait_for_viewer(page: Any) -> None:
    expect(page.get_by_role("heading", name="Study viewer")).to_be_visible()
    expect(page.locator("#image")).to_have_attribute("data-window", ANY)  # the first picture is on screen
    expect(page.locator("#heatmap")).to_have_attribute("data-label", ANY)


def test_radiologist_uploads_reads_and_reviews_a_study(page: Any, server: str, radiograph: Path,
                                                       artifacts: Path) -> None:
    page.goto(f"{server}/ui/")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.screenshot(path=artifacts / "01-sign-in.png")
    page.get_by_label("Role").select_option("radiologist")
    page.locator("#dev-signin").click()
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Worklist")).to_be_visible()

    page.locator("#upload-input").set_input_files(str(radiograph))  # the STOW-RS body is built in the page
    status = page.locator("#upload-status")
    expect(status).to_contain_text("Stored 1 instance")
    job_id = status.get_attribute("data-job")
    assert job_id
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row.locator("td.state")).to_have_text("done", timeout=PREREAD_TIMEOUT_S * 1000)  # live update by polling
    expect(row).to_contain_text("SYNTH-UI-1")
    expect(row.locator("td.urgency")).to_contain_text("Urgent")  # an effusion: urgent; no pneumothorax: not critical
    expect(row.locator("td.urgency")).to_contain_text("Unread")
    expect(row.locator("td.findings")).to_contain_text("Urgent: Effusion")
    expect(row.locator("td.findings")).to_contain_text("positive")
    assert page.evaluate(LOW_CONTRAST) == []  # the urgency and read badges too
    page.screenshot(path=artifacts / "02-worklist-done.png")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=artifacts / "02-worklist-done-390.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    page.get_by_label("Modality").select_option("CT")  # filters run on the server
    expect(row).to_have_count(0)
    page.get_by_label("Modality").select_option("CR")
    expect(row).to_have_count(1)

    row.get_by_role("button", name="Open radiograph of SYNTH-UI-1").click()
    _wait_for_viewer(page)
    expect(page.locator("#nfdu")).to_contain_text("Not for diagnostic use")
    expect(page.locator("#fact-model")).to_have_text("chest-xray-demo 2.0.0")
    # whose film: the name from its header, sex, and the ID the worklist showed
    expect(page.locator("#fact-patient")).to_have_text("SYNTHETIC IMAGE (other)")  # no birth date in its header
    expect(page.locator("#fact-patientId")).to_have_text("SYNTH-UI-1")
    positives = page.locator("#findings-table tr.positive")
    assert positives.count() >= 2
    expect(positives.first.locator("td").first).to_contain_text(" vs ")  # probability against its threshold
    expect(page.locator("#main")).to_contain_text("Class activation map from the model's own forward pass")
    expect(page.locator("#heat-legend figcaption")).to_contain_text("Probability scale 0–1")  # not peak-normalised
    page.screenshot(path=artifacts / "03-viewer.png")

    stage = page.locator("#stage")
    with_overlay = stage.screenshot()
    toggle = page.get_by_role("checkbox", name="Show AI heatmap")
    expect(toggle).to_be_checked()
    toggle.uncheck()
    expect(page.locator("#heatmap")).to_be_hidden()
    assert stage.screenshot() != with_overlay  # the heatmap was really drawn over the image
    page.screenshot(path=artifacts / "04-overlay-off.png")
    toggle.check()
    expect(page.locator("#heatmap")).to_be_visible()
    opacity = page.get_by_role("slider", name="Heatmap opacity")
    opacity.focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")  # 50 % + 4 x 5 %
    expect(page.locator("#overlay-opacity-value")).to_have_text("70 %")
    assert page.locator("#heatmap").evaluate("el => getComputedStyle(el).opacity") == "0.7"

    before = _mean_grey(page.locator("#image"))
    page.get_by_role("spinbutton", name="Window width value").fill("800")
    page.get_by_role("spinbutton", name="Window width value").press("Enter")
    page.get_by_role("spinbutton", name="Window level value").fill("1500")
    page.get_by_role("spinbutton", name="Window level value").press("Enter")
    expect(page.locator("#image")).to_have_attribute("data-window", "800")
    expect(page.locator("#image")).to_have_attribute("data-level", "1500")
    after = _mean_grey(page.locator("#image"))
    assert abs(after - before) > 5, (before, after)  # the new window is on screen
    expect(page.locator("#image-caption")).to_contain_text("Window 800 · level 1500")
    page.screenshot(path=artifacts / "05-window-level-opacity.png")

    accepted = positives.nth(0).get_attribute("data-label")
    rejected = positives.nth(1).get_attribute("data-label")
    page.get_by_role("textbox", name=f"Comment on {_shown(accepted)}").fill("Agree: heart enlarged on PA view")
    page.get_by_role("button", name=f"Accept {_shown(accepted)}").click()
    page.get_by_role("button", name=f"Reject {_shown(rejected)}").click()
    accepted_row = page.locator(f'#findings-table tr[data-label="{accepted}"]')
    rejected_row = page.locator(f'#findings-table tr[data-label="{rejected}"]')
    expect(accepted_row.locator(".verdict")).to_have_attribute("data-verdict", "accepted")
    expect(accepted_row.locator(".verdict")).to_contain_text("Agree: heart enlarged on PA view")
    expect(rejected_row.locator(".verdict")).to_have_attribute("data-verdict", "rejected")
    expect(page.get_by_role("button", name=f"Accept {_shown(accepted)}")).to_have_attribute("aria-pressed", "true")
    page.screenshot(path=artifacts / "06-feedback.png")

    page.reload()  # the session survives in sessionStorage, the verdicts in the database
    _wait_for_viewer(page)
    expect(accepted_row.locator(".verdict")).to_have_attribute("data-verdict", "accepted")
    expect(accepted_row.locator(".verdict")).to_contain_text("Accepted by dev-radiologist")
    expect(accepted_row.locator(".verdict")).to_contain_text("Agree: heart enlarged on PA view")
    expect(rejected_row.locator(".verdict")).to_have_attribute("data-verdict", "rejected")
    page.screenshot(path=artifacts / "07-after-reload.png")

    uid = page.url.rsplit("/", 1)[-1]
    page.get_by_role("link", name="Back to worklist").first.click()
    expect(row.locator("td.urgency")).to_contain_text("Read by you")  # a verdict marks the study read
    admin = dev_headers(server, "admin")
    stored = httpx.get(f"{server}/v1/preread/{job_id}/{uid}/feedback", headers=admin, timeout=30).json()
    assert [(f["label"], f["verdict"], f["actor"]) for f in stored] == [
        (rejected, "rejected", "dev-radiologist"), (accepted, "accepted", "dev-radiologist")]
    events = httpx.get(f"{server}/v1/audit/events?limit=1000", headers=admin, timeout=30).json()
    reviews = [e for e in events if e["type"]["code"] == "imaging.feedback"]
    assert len(reviews) == 2 and all(e["agent"][0]["who"]["display"] == "dev-radiologist" for e in reviews)


def test_viewer_controls_are_reachable_by_keyboard_and_labelled(page: Any, server: str, study: dict[str, str],
                                                                artifacts: Path) -> None:
    sign_in(page, server)
    _open_viewer(page, server, study)
    reached = tab_through(page)
    unnamed = [f for f in reached if not f["name"]]
    assert unnamed == []  # every control the keyboard reaches has an accessible name
    ids = {f["id"] for f in reached}
    assert {"overlay-toggle", "overlay-finding", "overlay-opacity", "window", "window-value", "level",
            "level-value", "reset-window"} <= ids
    names = {f["name"] for f in reached}
    first = _shown(study["positives"].split(",")[0])
    assert {f"Accept {first}", f"Reject {first}", f"Comment on {first}", "Back to worklist", "Sign out"} <= names

    page.locator("#overlay-toggle").focus()
    page.keyboard.press("Space")  # operable from the keyboard, not only reachable
    expect(page.locator("#heatmap")).to_be_hidden()
    page.keyboard.press("Space")
    expect(page.locator("#heatmap")).to_be_visible()
    assert page.evaluate(LOW_CONTRAST) == []  # WCAG AA contrast for the text on screen
    page.screenshot(path=artifacts / "08-viewer-keyboard.png")


def test_navigation_follows_the_role(page: Any, server: str, study: dict[str, str], artifacts: Path) -> None:
    sign_in(page, server, "clinician")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Patient risk", exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Worklist")).to_have_count(0)
    page.goto(f"{server}/ui/#/worklist")
    expect(page.get_by_role("heading", name="Not available for your role")).to_be_visible()
    page.goto(f"{server}/ui/#/viewer/{study['job_id']}/{study['uid']}")
    expect(page.get_by_role("heading", name="Not available for your role")).to_be_visible()
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "09-clinician.png")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    assert page.evaluate("() => sessionStorage.getItem('cds.session')") is None


def test_a_rejected_credential_is_refused_with_a_message(page: Any, server: str) -> None:
    page.goto(f"{server}/ui/")
    page.get_by_text("Use a bearer token or API key instead").click()
    page.get_by_label("Token or key").fill("not-a-token")
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    expect(page.get_by_role("alert")).to_contain_text("did not accept")
    assert page.evaluate("() => sessionStorage.getItem('cds.session')") is None
