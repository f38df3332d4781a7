"""The clinician's patient risk panel in a real browser against a real ``cds serve --dev``.

Sign in as a clinician, load the sample patient (three topic cards: kidney scored, cardiovascular and diabetes
not, with what is missing; whose panel it is named), answer a missing yes/no input and score again, then load a
Bundle file in which the patient has an active diabetes Condition (the cardiovascular topic is scored, with its band
and signed contributions; no score of new-onset diabetes), then a Bundle the server refuses (nothing of the
previous patient stays on screen); keyboard reach, accessible names and contrast (tests/ui/test_ml_dashboard.py
checks that other roles do not get the view).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from cds.services.risk import SAMPLE_AGE_DAYS, sample_bundle
from tests.ui.conftest import LOW_CONTRAST, sign_in, tab_through

pytestmark = [pytest.mark.ui, pytest.mark.browser, pytest.mark.slow]

DIABETES = {"resourceType": "Condition", "id": "t2dm", "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}  # fmt: skip


def re_words(*words: str) -> re.Pattern[str]:
    """A pattern matching text that holds every one of ``words``, in order."""
    return re.compile(".*".join(re.escape(w) for w in words))


@pytest.fixture
def diabetic_bundle(tmp_path: Path) -> Path:
    """The sample patient with an active type 2 diabetes Condition: enough for the Pooled Cohort Equations."""
    bundle = sample_bundle()
    bundle["entry"].append({"resource": DIABETES})
    path = tmp_path / "patient-with-diabetes.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    return path


@pytest.fixture
def refused_bundle(tmp_path: Path) -> Path:
    """A Bundle without a Patient: the panel refuses it (422 invalid_fhir)."""
    path = tmp_path / "not-a-patient.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": []}), encoding="utf-8")
    return path


def test_clinician_sees_each_topic_with_inputs_contributions_and_what_is_missing(
        page: Any, server: str, diabetic_bundle: Path, refused_bundle: Path, artifacts: Path) -> None:  # fmt: skip
    sign_in(page, server, "clinician")
    expect(page.get_by_role("heading", name="Patient risk")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link")).to_have_text(["Patient risk", "Monitoring", "Follow-up", "Referrals"])  # no more
    reached = tab_through(page)
    assert [f for f in reached if not f["name"]] == []  # every control the keyboard reaches has a name
    assert {"FHIR Bundle (JSON)", "Load the sample patient", "Sign out"} <= {f["name"] for f in reached}

    page.get_by_role("button", name="Load the sample patient").focus()
    page.keyboard.press("Enter")  # operable from the keyboard
    expect(page.locator("#panel-status")).to_contain_text("1 of 3 topics scored")
    cards = page.locator("article.topic")
    expect(cards).to_have_count(3)
    expect(cards.locator("h2")).to_have_text(["Cardiovascular", "Diabetes", "Kidney"])
    expect(page.locator("#panel-patient")).to_have_text("Patient/p1")
    expect(page.locator("#panel-patient-name")).to_have_text("王芳")  # whose panel it is, as the record names her
    expect(page.locator("#panel-identifiers")).to_have_text("urn:cds:sample-mrn|SAMPLE-0001")

    kidney = page.locator("#topic-kidney")
    expect(kidney).to_have_attribute("data-scored", "true")
    expect(kidney.locator("#score-kidney")).to_have_text("66.5 mL/min/1.73 m²")
    expect(kidney.locator("#band-kidney")).to_have_text("G2: mildly decreased; A category needs a urine ACR")
    expect(kidney.locator(".method-title")).to_have_text(
        "CKD-EPI 2021 creatinine eGFR (race-free) with KDIGO categories, version 2021")
    expect(kidney.locator(".method-source")).to_contain_text("Inker LA et al. N Engl J Med 2021")
    creatinine = kidney.locator('tr[data-field="creatinine"]')
    expect(creatinine.locator(".value")).to_have_text("88.42 µmol/L")  # SI units at a Chinese site (the default)
    newest = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=SAMPLE_AGE_DAYS)  # the sample is always recent
    expect(creatinine.locator(".date")).to_have_text(newest.isoformat())
    expect(creatinine.locator(".source")).to_have_text("Observation/cr")
    expect(creatinine.locator(".effect")).to_have_text("▼ ×0.652")  # a factor on eGFR below 1 lowers it
    expect(creatinine.get_by_role("img")).to_have_accessible_name(re_words("serum creatinine", "lowers it by 34.8 %"))
    expect(kidney.locator(".missing-none")).to_be_visible()

    cardio = page.locator("#topic-cardiovascular")
    expect(cardio).to_have_attribute("data-scored", "false")
    expect(cardio.locator(".badge.band")).to_have_text("Not scored")
    expect(cardio.locator(".missing li")).to_have_count(1)
    expect(cardio.locator('.missing li[data-field="diabetes"]')).to_contain_text("diabetes")
    expect(cardio.locator('tr[data-field="bp_treated"] .source')).to_have_text("MedicationRequest/amlodipine")
    diabetes = page.locator("#topic-diabetes")  # a Chinese site (the default): the Chinese Diabetes Risk Score
    expect(diabetes.locator(".method-title")).to_contain_text("Chinese Diabetes Risk Score")
    expect(diabetes.locator(".missing li")).to_have_count(3)
    expect(diabetes.locator('.missing li[data-field="waist_cm"]')).to_contain_text("waist circumference — waist_cm, in cm")
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "20-risk-sample-patient.png")
    for width, height in ((768, 1024), (390, 844)):  # tablets two cards a row, phones one: no sideways scroll
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"), width
        page.screenshot(path=artifacts / f"20-risk-sample-patient-{width}.png", full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    cardio.locator('.missing li[data-field="diabetes"]').get_by_label("No").check()  # asked, answered: no diabetes
    page.get_by_role("button", name="Score again with my answers").click()
    expect(page.locator("#panel-answered")).to_have_text("diabetes")
    expect(cardio).to_have_attribute("data-scored", "true")
    expect(cardio.locator('tr[data-field="diabetes"] .source')).to_have_text("answered by dev-clinician")
    expect(cardio.locator(".warnings")).to_contain_text("diabetes answered no by dev-clinician in the panel")
    page.screenshot(path=artifacts / "20b-risk-answered.png", full_page=True)

    page.get_by_label("FHIR Bundle (JSON)").set_input_files(str(diabetic_bundle))
    expect(page.locator("#panel-status")).to_contain_text("from patient-with-diabetes.json: 2 of 3 topics scored")
    expect(cardio).to_have_attribute("data-scored", "true")
    expect(cardio.locator("#score-cardiovascular")).to_have_text("5.3 %")
    expect(cardio.locator("#band-cardiovascular")).to_have_text("Borderline risk")
    expect(cardio.locator("#band-cardiovascular")).to_have_class(re_words("sev-mid"))
    expect(cardio.locator(".method-title")).to_contain_text("Pooled Cohort Equations")
    expect(cardio.locator('tr[data-field="diabetes"] .source')).to_have_text("Condition/t2dm")
    expect(cardio.locator('tr[data-field="diabetes"] .effect')).to_have_text("▲ +2.51 pp")
    expect(cardio.locator('tr[data-field="age"] .contribution')).to_contain_text("not separated")
    raising = cardio.locator(".signed-bar .fill.raises")
    assert raising.count() >= 3  # cholesterol, blood pressure, treatment, diabetes raise the risk
    widths = [raising.nth(i).evaluate("el => el.getBoundingClientRect().width") for i in range(raising.count())]
    assert max(widths) > 2 * min(widths) > 0  # bars are scaled to the contribution
    expect(cardio.locator(".missing-none")).to_be_visible()
    expect(page.locator("#band-diabetes")).to_have_text("Known diabetes: onset risk not scored")
    expect(page.locator("#known-diabetes")).to_contain_text("Condition/t2dm")
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "21-risk-bundle-file.png", full_page=True)

    page.get_by_label("FHIR Bundle (JSON)").set_input_files(str(refused_bundle))  # the server refuses this one
    expect(page.get_by_role("alert")).to_contain_text("could not be computed for not-a-patient.json")
    expect(page.locator("article.topic")).to_have_count(0)  # the previous patient's cards are gone
    expect(page.locator("#panel-patient-name")).to_have_count(0)
    assert "王芳" not in page.locator("main").inner_text()
    assert page.evaluate(LOW_CONTRAST) == []
    page.screenshot(path=artifacts / "22-risk-refused.png", full_page=True)
