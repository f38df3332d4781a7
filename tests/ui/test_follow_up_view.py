"""The family doctor's follow-up lists in a real browser against a real ``cds serve --dev``.

Two hypertension patients enrolled over HTTP: one, aged 71, not controlled at two clinic follow-ups in September
(referral advised, overdue since 29 September); one enrolled by hand and never followed up. The list puts the most
overdue first, writes the targets and the referral advice, filters to the uncontrolled, and switches registry;
keyboard reach, accessible names and contrast are checked.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.serving.api.test_registries import bp, hypertension
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in, tab_through

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def registry(server: str) -> None:
    headers = dev_headers(server, "clinician", subject="dr-li")
    for body in (hypertension(), {"patient": "Patient/new-1", "enrolled_on": "2026-11-20"}):
        httpx.post(f"{server}/v1/registries/hypertension", json=body, headers=headers, timeout=30).raise_for_status()
    visits = {"resourceType": "Bundle", "type": "batch", "entry": [
        bp("v2", "2026-09-01T09:00:00+08:00", 156, 92, clinic=True),
        bp("v3", "2026-09-15T09:00:00+08:00", 158, 94, clinic=True)]}  # fmt: skip
    httpx.post(f"{server}/v1/observations", json=visits, headers=headers, timeout=30).raise_for_status()


def test_family_doctor_sees_the_most_overdue_first_with_targets_and_referral(
        page: Any, server: str, registry: None, artifacts: Path) -> None:  # fmt: skip
    sign_in(page, server, "clinician")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Follow-up").click()
    expect(page.get_by_role("heading", name="Follow-up", exact=True)).to_be_visible()
    rows = page.locator("#follow-up-table tbody tr")
    expect(rows.locator("th")).to_have_text(["Patient/h1", "Patient/new-1"])
    today = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()
    first = rows.nth(0)
    expect(first).to_contain_text(f"overdue {(today - dt.date(2026, 9, 29)).days} d")
    expect(first.locator("td").nth(1)).to_contain_text("158/94 mmHg")  # the last clinic follow-up
    expect(first.locator("td").nth(1)).to_contain_text("above <150/90")  # aged 71: the target from 65
    expect(first.locator("td.reason")).to_contain_text("Refer: not controlled at two consecutive follow-ups")
    expect(rows.nth(1).locator("td.reason")).to_have_text("no follow-up since enrolment")
    expect(page.locator("#follow-up-status")).to_contain_text("2 patients: 2 overdue, 1 to refer")
    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []
    assert {"Registry", "Show", "Sign out"} <= {f["name"] for f in reached}
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "60-follow-up.png", full_page=True)

    page.get_by_label("Show").select_option("uncontrolled")
    expect(rows.locator("th")).to_have_text(["Patient/h1"])
    page.get_by_label("Registry").select_option("diabetes")
    expect(rows).to_have_text(["No patient in this list."])
    expect(page.locator("#follow-up-table thead th")).to_have_text(
        ["Patient", "Age", "Fasting glucose", "HbA1c", "Last follow-up", "Next due", "Why"])
