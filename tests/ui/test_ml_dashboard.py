"""The ML engineer's dashboard in a real browser, after real activity: a chest radiograph pre-read, a reader's
accept and reject, and a non-chest image the plausibility gate refused. Also: each role sees only its views.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from cds.models.registry import ModelRegistry
from cds.settings import REPO_ROOT
from cds.store.dashboard import read_card_headlines
from tests.ui.conftest import LOW_CONTRAST, dev_headers, sign_in, stow, tab_through, wait_for_preread
from training.data.dicom_files import write_radiograph
from training.data.non_chest import render_non_chest

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

NAV = {  # what each role's navigation offers
    "radiologist": ["Worklist", "Referrals"], "pathologist": ["Pathology", "Referrals"],
    "cardiologist": ["ECG", "Referrals"], "clinician": ["Patient risk", "Monitoring", "Follow-up", "Referrals"],
    "ml_engineer": ["Models"],
    "admin": ["Worklist", "Pathology", "ECG", "Patient risk", "Monitoring", "Follow-up", "Referrals", "Models"],
}  # fmt: skip
VIEWS = {  # route: (navigation link, heading)
    "worklist": ("Worklist", "Worklist"), "pathology": ("Pathology", "Pathology"), "ecg": ("ECG", "ECG reads"),
    "risk": ("Patient risk", "Patient risk"), "monitoring": ("Monitoring", "Monitoring"),
    "follow-up": ("Follow-up", "Follow-up"), "referrals": ("Referrals", "Referrals"),
    "models": ("Models", "Model dashboard"),
}  # fmt: skip


def _feedback(server: str, study: dict[str, str], label: str, verdict: str) -> None:
    answer = httpx.post(f"{server}/v1/preread/{study['job_id']}/{study['uid']}/feedback",
                        json={"label": label, "verdict": verdict}, timeout=30,
                        headers=dev_headers(server, "radiologist", subject="dr-reader"))  # fmt: skip
    assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def activity(server: str, study: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One finding accepted and one rejected; one non-chest image refused by the gate (its job fails)."""
    accepted, rejected = study["positives"].split(",")[:2]
    _feedback(server, study, accepted, "accepted")
    _feedback(server, study, rejected, "rejected")
    not_chest = write_radiograph(tmp_path_factory.mktemp("ui-refused") / "abdomen.dcm",
                                 render_non_chest("ct_abdomen", 256, 9, 0), patient_id="SYNTH-UI-2")
    status = wait_for_preread(server, stow(server, [not_chest]), dev_headers(server, "radiologist"))
    assert status["state"] == "failed" and status["error"].startswith("implausible_image"), status
    return {"accepted": accepted, "rejected": rejected}


def test_ml_engineer_sees_models_inference_refusals_and_agreement(page: Any, server: str, study: dict[str, str],
                                                                  activity: dict[str, str], artifacts: Path) -> None:
    sign_in(page, server, "ml_engineer")
    expect(page.get_by_role("heading", name="Model dashboard")).to_be_visible()
    registered = httpx.get(f"{server}/v1/models", headers=dev_headers(server, "ml_engineer"), timeout=30).json()
    models = page.locator("#models-table tbody tr")
    expect(models).to_have_count(len(registered))
    chest = page.locator('#models-table tr[data-model="chest-xray-demo:2.0.0"]')
    expect(chest).to_contain_text("radiograph pre-read")
    card = ModelRegistry.from_directory(REPO_ROOT / "registry").get("chest-xray-demo", "2.0.0").model_card
    expect(chest.locator(".card-metrics li")).to_have_text(  # what the card says, split by split
        [f"{h.split}: {h.metric} {h.value:.4f} (n = {h.n} {h.unit})" for h in read_card_headlines(card)])
    expect(page.locator('#models-table tr[data-model="ct-organs-demo:1.0.0"] .card-metrics')).to_contain_text(
        "test: mean Dice 0.7885 (n = 16 volumes)")
    expect(chest.locator(".badge.caveat")).to_have_text("Not for diagnostic use")

    for model in ("chest-xray-demo:2.0.0", "chest-xray-plausibility:2.0.0"):  # the pre-reads ran on both
        row = page.locator(f'#engine-table tr[data-model="{model}"]')
        assert int(row.locator(".calls").inner_text()) >= 1 and int(row.locator(".items").inner_text()) >= 1
        expect(row.locator("td").nth(3)).to_have_text(re.compile(r"^\d+\.\d$"))  # p50 ms, bucket-interpolated
    expect(page.locator("#engine-heading + p")).to_contain_text("interpolated within the buckets")

    expect(page.locator("#agreement-overall")).to_contain_text("50 % of 2 reviewed findings accepted")
    expect(page.locator('#agreement-models tr[data-model="chest-xray-demo:2.0.0"] .rate')).to_have_text("50 %")
    expect(page.locator(f'#agreement-labels tr[data-label="{activity["accepted"]}"] .rate')).to_have_text("100 %")
    expect(page.locator(f'#agreement-labels tr[data-label="{activity["rejected"]}"] .rate')).to_have_text("0 %")

    chart = page.locator("#refusals-chart")
    expect(chart).to_have_attribute("role", "img")
    expect(chart.locator('rect[data-series="image refused: implausible_image"]')).to_have_count(1)
    expect(chart.locator('rect[data-series="preread job failed: implausible_image"]')).to_have_count(1)
    expect(page.locator("#refusals-summary")).to_contain_text("2 refusals over 14 days")
    expect(page.locator("#refusals-chart desc")).to_contain_text("image refused: implausible_image 1")
    page.screenshot(path=artifacts / "30-dashboard.png")
    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []  # every control the keyboard reaches has a name
    assert {"Models", "Refresh", "Refusals as a table", "Sign out"} <= {f["name"] for f in reached}
    page.locator("details.as-table summary").focus()
    page.keyboard.press("Enter")  # the table alternative of the chart opens from the keyboard
    expect(page.locator("#refusals-table tbody tr")).to_have_count(2)
    expect(page.locator("#refusals-table")).to_contain_text("implausible_image")
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "31-dashboard-full.png", full_page=True)

    _feedback(server, study, activity["rejected"], "accepted")  # a changed mind: the newest verdict counts
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#agreement-overall")).to_contain_text("100 % of 2 reviewed findings accepted")
    events = httpx.get(f"{server}/v1/audit/events?limit=1000", headers=dev_headers(server, "admin"), timeout=30).json()
    reads = [e for e in events if e["type"]["code"] == "dashboard.read"]
    assert len(reads) == 2 and {e["agent"][0]["who"]["display"] for e in reads} == {"dev-ml-engineer"}


@pytest.mark.parametrize("role", sorted(NAV))
def test_each_role_sees_only_its_views(page: Any, server: str, role: str) -> None:
    sign_in(page, server, role)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link")).to_have_text(NAV[role])
    for view, (link, heading) in VIEWS.items():
        page.goto(f"{server}/ui/#/{view}")
        shown = heading if link in NAV[role] else "Not available for your role"
        expect(page.get_by_role("heading", level=1)).to_have_text(shown)
    answer = httpx.get(f"{server}/v1/dashboard", headers=dev_headers(server, role), timeout=30)
    assert answer.status_code == (200 if "Models" in NAV[role] else 403)  # the server refuses too, not only the page
