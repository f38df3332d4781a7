"""The referral turnaround view (``#/referrals``), in Chromium against a real ``cds serve --dev`` of a clinic whose
hub is ``hub``: the clinic refers two reads (urgent and routine) over the API, the hub signs the urgent one; then the
hub and the clinic each see one route with 1 signed urgent and 1 open routine referral, the open one listed with its
question, age and a link to the study, and a third site sees none of it. Screenshots at 1280x800, 768x1024 and
390x844 (no sideways scroll on the phone)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LOW_CONTRAST, dev_token, serve, sign_in, store_and_preread
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]
SIZES = {"desktop": (1280, 800), "tablet": (768, 1024), "phone": (390, 844)}
QUESTION = "心影增大？请会诊。"
# Each route's heading and its rows' cells, in the order shown.
TABLE = """() => Array.from(document.querySelectorAll("#turnaround-table tbody")).map((group) => [
  group.querySelector("tr.route th").textContent,
  Array.from(group.querySelectorAll("tr[data-priority]")).map((row) => Array.from(row.cells).map((c) => c.textContent)),
])"""
# Nothing runs off the side: not the page, and not the turnaround table out of its frame.
FITS = """() => document.documentElement.scrollWidth <= window.innerWidth
  && Array.from(document.querySelectorAll(".table-wrap")).every((wrap) => wrap.scrollWidth <= wrap.clientWidth)"""
SIGNED_AND_OPEN = [["clinic-a → hub", [["STAT", "0", "0", "—", "—"], ["Urgent", "1", "0", "<0.1", "<0.1"],
                                       ["Routine", "0", "1", "—", "—"]]]]  # fmt: skip


@pytest.fixture(scope="module")
def clinic(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory, ct_model="", site="clinic-a", hub_site="hub")


@pytest.fixture(scope="module")
def referred(clinic: str, radiograph: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two clinic reads referred to the hub (urgent, routine); the hub has signed the urgent one."""
    pixels = render(256, 7, 0, findings={"Effusion"})[0]
    second = write_radiograph(tmp_path_factory.mktemp("turnaround") / "second.dcm", pixels, patient_id="SYNTH-UI-2")
    urgent, routine = (store_and_preread(clinic, [file]) for file in (radiograph, second))
    headers = {"Authorization": f"Bearer {dev_token(clinic, 'radiologist', subject='dr-clinic', site='clinic-a')}"}
    for status, priority, question in ((urgent, "urgent", "右侧胸腔积液？"), (routine, "routine", QUESTION)):
        answer = httpx.post(f"{clinic}/v1/referrals", json={"job_id": status["id"], "question": question,
                                                             "priority": priority}, headers=headers, timeout=30)  # fmt: skip
        assert answer.status_code == 201, answer.text
    hub = {"Authorization": f"Bearer {dev_token(clinic, 'radiologist', subject='dr-hub', site='hub')}"}
    base = f"{clinic}/v1/preread/{urgent['id']}/{urgent['result']['outcomes'][0]['uid']}"
    for finding in httpx.get(f"{base}/view", headers=hub, timeout=30).json()["findings"]:
        assert httpx.post(f"{base}/feedback", json={"label": finding["label"], "verdict": "accepted"}, headers=hub,
                          timeout=30).status_code == 201  # fmt: skip
    signed = httpx.post(f"{base}/signatures", json={"impression": "右侧少量胸腔积液。"}, headers=hub, timeout=30)
    assert signed.status_code == 201, signed.text
    return {"job_id": routine["id"], "uid": routine["result"]["outcomes"][0]["uid"]}


def _sign_in_with_token(page: Any, server: str, token: str, home: str) -> None:
    page.goto(f"{server}/ui/")
    page.get_by_text("Use a bearer token or API key instead").click()
    page.get_by_label("Token or key").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    expect(page.get_by_role("heading", name=home)).to_be_visible()


def _open_view(page: Any) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Referrals").click()
    expect(page.get_by_role("heading", name="Referrals", level=1)).to_be_visible()
    expect(page.locator("#turnaround-status")).to_contain_text("Updated")


def _open_item(page: Any, list_id: str, referred: dict[str, str]) -> None:
    """The one open referral: routine, clinic-a → hub, its question, minutes old, a link to the clinic's study."""
    item = page.locator(f"#{list_id} > li")
    expect(item).to_have_count(1)
    expect(item).to_have_attribute("data-job", referred["job_id"])
    expect(item.locator(".badge")).to_have_text("Routine")
    expect(item.locator(".route")).to_have_text("clinic-a → hub")
    expect(item.locator(".referral-question")).to_have_text(QUESTION)
    expect(item.locator(".age")).to_have_text("open for <0.1 h")
    link = item.get_by_role("link", name="Open study referred clinic-a → hub")
    expect(link).to_have_attribute("href", f"#/viewer/{referred['job_id']}/{referred['uid']}")


def test_the_hub_and_the_clinic_see_turnaround_and_open_referrals(page: Any, clinic: str, referred: dict[str, str],
                                                                  artifacts: Path) -> None:  # fmt: skip
    _sign_in_with_token(page, clinic, dev_token(clinic, "radiologist", subject="dr-hub", site="hub"), "Worklist")
    _open_view(page)
    assert page.evaluate(TABLE) == SIGNED_AND_OPEN
    _open_item(page, "referrals-in", referred)
    expect(page.locator("#referrals-out-empty")).to_have_text("No open referrals from hub.")
    assert page.evaluate(LOW_CONTRAST) == []
    for name, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate(FITS), name
        page.screenshot(path=artifacts / f"32-turnaround-hub-{name}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    page.locator("#referrals-in").get_by_role("link", name="Open study referred clinic-a → hub").click()
    expect(page.get_by_role("heading", name="Study viewer")).to_be_visible()  # the hub opens the clinic's study
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, clinic)  # the clinic's own radiologist: the same counts, the open referral going out
    _open_view(page)
    assert page.evaluate(TABLE) == SIGNED_AND_OPEN
    _open_item(page, "referrals-out", referred)
    expect(page.locator("#referrals-in-empty")).to_have_text("No open referrals to clinic-a.")
    assert page.evaluate(LOW_CONTRAST) == []
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate(FITS)
    page.screenshot(path=artifacts / "33-turnaround-clinic-phone.png", full_page=True)


def test_a_third_site_sees_none_of_it_and_the_ml_engineer_has_no_such_view(page: Any, clinic: str,
                                                                           referred: dict[str, str],
                                                                           artifacts: Path) -> None:  # fmt: skip
    token = dev_token(clinic, "clinician", subject="dr-b", site="clinic-b")
    _sign_in_with_token(page, clinic, token, "Patient risk")
    _open_view(page)
    expect(page.locator("#turnaround-empty")).to_have_text("No referrals to or from clinic-b yet.")
    expect(page.locator("#turnaround-table")).to_have_count(0)
    expect(page.locator("#referrals-in-empty")).to_have_text("No open referrals to clinic-b.")
    expect(page.locator("#referrals-out-empty")).to_have_text("No open referrals from clinic-b.")
    expect(page.locator(".referral-item")).to_have_count(0)
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "34-turnaround-other-site.png")
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, clinic, "ml_engineer")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Referrals")).to_have_count(0)
    page.goto(f"{clinic}/ui/#/referrals")
    expect(page.get_by_role("heading", name="Not available for your role")).to_be_visible()
