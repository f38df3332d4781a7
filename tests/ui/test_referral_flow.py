"""Remote reading in the web workspace, in Chromium against a real ``cds serve --dev`` of a clinic whose hub is
``hub``: the clinic's radiologist refers a pre-read from the viewer with a question and a priority; the hub's
radiologist (a token for site ``hub``) finds it in the worklist with the question, the route and the priority, and a
third site's reader does not. Screenshots at 1280x800."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import LOW_CONTRAST, dev_token, serve, sign_in, store_and_preread

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def clinic(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve(tmp_path_factory, ct_model="", site="clinic-a", hub_site="hub")


def _sign_in_with_token(page: Any, server: str, token: str) -> None:
    page.goto(f"{server}/ui/")
    page.get_by_text("Use a bearer token or API key instead").click()
    page.get_by_label("Token or key").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).last.click()
    expect(page.get_by_role("heading", name="Worklist")).to_be_visible()


def test_a_clinic_refers_a_study_and_the_hub_finds_it_in_its_worklist(page: Any, clinic: str, radiograph: Path,
                                                                      artifacts: Path) -> None:  # fmt: skip
    status = store_and_preread(clinic, [radiograph])
    job_id, uid = status["id"], status["result"]["outcomes"][0]["uid"]
    sign_in(page, clinic)
    page.goto(f"{clinic}/ui/#/viewer/{job_id}/{uid}")
    expect(page.get_by_role("heading", name="Remote reading")).to_be_visible()
    page.get_by_label("Clinical question for the hub").fill("心影增大？请会诊。")
    page.get_by_label("Priority").select_option("urgent")
    page.get_by_role("button", name="Refer to hub").click()
    expect(page.locator("#referral-status")).to_contain_text("Referred to hub (urgent)")
    page.screenshot(path=artifacts / "30-referred.png")
    page.get_by_role("button", name="Sign out").click()

    _sign_in_with_token(page, clinic, dev_token(clinic, "radiologist", subject="dr-hub", site="hub"))
    row = page.locator(f'tr[data-job="{job_id}"]')
    expect(row.locator(".referral")).to_have_attribute("data-priority", "urgent")
    expect(row.locator(".referral")).to_contain_text("clinic-a → hub")
    expect(row.locator(".referral-question")).to_have_text("心影增大？请会诊。")
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "31-hub-worklist.png")
    row.get_by_role("button", name="Open radiograph of SYNTH-UI-1").click()  # the hub opens the clinic's study
    expect(page.get_by_role("heading", name="Study viewer")).to_be_visible()
    expect(page.get_by_role("heading", name="Sign-off")).to_be_visible()
    expect(page.get_by_role("heading", name="Remote reading")).to_have_count(0)  # the hub refers to no one
    page.get_by_role("button", name="Sign out").click()

    _sign_in_with_token(page, clinic, dev_token(clinic, "radiologist", subject="dr-b", site="clinic-b"))
    expect(page.locator("#worklist-table")).to_contain_text("No studies match these filters.")
    expect(page.locator(f'tr[data-job="{job_id}"]')).to_have_count(0)
