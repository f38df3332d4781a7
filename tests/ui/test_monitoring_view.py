"""The clinician's monitoring view in a real browser against a real ``cds serve --dev``.

Three bedside monitors send observations over HTTP: one patient deteriorates to an emergency (an urgent alert that
escalates), one is urgent, one is calm. The list shows them most urgent first; one patient's trends plot the scores
and vital signs on one time axis with the alert marked where it opened and where it escalated; the clinician
acknowledges it and the list follows. Charts keep their proportions at every screen size; keyboard reach,
accessible names and contrast are checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.serving.api.test_monitoring_board import for_patient
from tests.serving.api.test_observations import scored_set, vital
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in, tab_through

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

SCREENS = {"desktop": (1280, 800), "full-hd": (1920, 1080), "portrait": (1080, 1920), "phone": (390, 844)}


@pytest.fixture(scope="module")
def monitored(server: str) -> dict[str, str]:
    """Three monitored patients; answers the emergency patient's alert id."""
    headers = dev_headers(server, "clinician", subject="monitor-feed")

    def post(bundle: dict) -> dict:
        answer = httpx.post(f"{server}/v1/observations", json=bundle, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.json()

    post(for_patient(scored_set("a", 150, rr=18, pulse=80), "Patient/ui-calm"))  # NEWS2 0
    post(for_patient(scored_set("a", 100, rr=25, pulse=112), "Patient/ui-urgent"))  # 5: urgent
    post(for_patient(scored_set("a", 120, rr=20, pulse=95), "Patient/ui-sick"))  # 1
    opened = post(for_patient(scored_set("b", 80, rr=25, pulse=112), "Patient/ui-sick"))  # 5: urgent alert
    worse = for_patient(scored_set("c", 40, rr=26, pulse=135), "Patient/ui-sick")
    worse["entry"].append(vital("ui-sick-t", "8310-5", 39.5, "Cel", minutes_ago=39, patient="Patient/ui-sick"))
    worse["entry"].append(vital("ui-sick-g", "15074-8", 11.2, "mmol/L", minutes_ago=45, patient="Patient/ui-sick"))
    escalated = post(worse)  # 3 + 3 + 2 = 8: emergency
    assert escalated["alerts"][0]["action"] == "escalated"
    assert escalated["alerts"][0]["alert_id"] == opened["alerts"][0]["alert_id"]
    return {"alert": opened["alerts"][0]["alert_id"]}


def test_clinician_sees_patients_by_urgency_their_trends_and_acknowledges(
        page: Any, server: str, monitored: dict[str, str], artifacts: Path) -> None:  # fmt: skip
    sign_in(page, server, "clinician")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Monitoring").click()
    expect(page.get_by_role("heading", name="Monitoring", exact=True)).to_be_visible()
    rows = page.locator("#monitoring-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.locator("th")).to_have_text(["Patient/ui-sick", "Patient/ui-urgent", "Patient/ui-calm"])
    expect(rows.locator("td:first-child")).to_have_text(["Emergency", "Urgent", "None open"])
    expect(rows.nth(0).locator(".news2")).to_contain_text("8")
    expect(page.locator("#board-summary")).to_have_text("3 patients monitored: 1 emergency, 1 urgent")
    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []
    assert {"Seen in", "Trends of Patient/ui-sick", "Sign out"} <= {f["name"] for f in reached}
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "50-monitoring-list.png", full_page=True)

    page.get_by_role("link", name="Trends of Patient/ui-sick").click()
    expect(page.get_by_role("heading", name="Patient/ui-sick", level=1)).to_be_visible()
    expect(page.locator("#trend-status")).to_contain_text("1 open alert")
    shown = page.locator("figure.trend h2")
    expect(shown).to_have_text(["Early-warning scores", "Heart and respiratory rate", "Blood pressure",
                                "Oxygen saturation", "Temperature", "Glucose"])  # no weight was sent
    scores = page.locator("#trend-scores")
    expect(scores).to_have_attribute("data-points", "6")  # NEWS2 and qSOFA after each of 3 sets
    expect(scores.locator("line.marker")).to_have_count(2)  # opened as urgent, escalated to emergency
    expect(scores.locator("line.marker-urgent")).to_have_count(1)
    expect(scores.locator("line.marker-emergency")).to_have_count(1)
    expect(page.locator("#chart-scores")).to_have_accessible_name(
        "Early-warning scores over time Latest: NEWS2 8, qSOFA 1; 2 alert marks.")
    glucose = page.locator("#trend-glucose")
    glucose.locator("summary").click()
    expect(glucose.locator("tbody td.numbers")).to_have_text(["11.2"])  # mmol/L as sent, not mg/dL
    # the markers sit in time order: the urgent alert before its escalation
    urgent_x = float(scores.locator("line.marker-urgent").get_attribute("x1"))
    emergency_x = float(scores.locator("line.marker-emergency").get_attribute("x1"))
    assert urgent_x < emergency_x
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "51-monitoring-patient.png", full_page=True)

    alert = page.locator(f'#patient-alerts tr[data-alert="{monitored["alert"]}"]')
    expect(alert).to_have_attribute("data-state", "open")
    alert.get_by_role("button", name="Acknowledge").click()
    expect(alert).to_have_attribute("data-state", "acknowledged")
    expect(alert).to_contain_text("Acknowledged by dev-clinician")
    expect(page.locator("#trend-status")).to_contain_text("0 open alerts")
    page.get_by_role("link", name="All monitored patients").click()
    expect(page.locator("#monitoring-table tbody tr th")).to_have_text(
        ["Patient/ui-urgent", "Patient/ui-sick", "Patient/ui-calm"])  # the acknowledged one no longer leads
    events = httpx.get(f"{server}/v1/audit/events?limit=1000", headers=dev_headers(server, "admin"), timeout=30).json()
    acknowledged = [e for e in events if e["type"]["code"] == "alert.acknowledge"]
    assert [e["agent"][0]["who"]["display"] for e in acknowledged] == ["dev-clinician"]


@pytest.mark.parametrize("screen", sorted(SCREENS))
def test_trend_charts_keep_their_proportions_and_fit_the_screen(
        page: Any, server: str, monitored: dict[str, str], artifacts: Path, screen: str) -> None:  # fmt: skip
    width, height = SCREENS[screen]
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, server, "clinician")
    page.goto(f"{server}/ui/#/monitoring/{'Patient%2Fui-urgent'}")
    expect(page.locator("figure.trend")).to_have_count(5)
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll("svg.timeseries")).map((s) => {
        const r = s.getBoundingClientRect(); const v = s.viewBox.baseVal;
        return {ratio: r.width / r.height, intended: v.width / v.height, right: r.right}; })""")
    for box in boxes:
        assert box["ratio"] == pytest.approx(box["intended"], rel=0.02)  # never stretched
        assert box["right"] <= width  # within the screen
    wider = page.evaluate("""(width) => Array.from(document.querySelectorAll("body *"))
        .filter((e) => e.getBoundingClientRect().right > width + 1 && !e.closest(".table-scroll, .table-wrap"))
        .map((e) => `${e.tagName}#${e.id}.${e.className.baseVal ?? e.className}`)""", width)
    assert wider == []  # nothing runs off the screen sideways (tables scroll inside their own box)
    page.screenshot(path=artifacts / f"52-monitoring-{screen}.png", full_page=True)
