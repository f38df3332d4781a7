"""Realistic records through the service: per-card isolation in CDS Hooks and the panel, partial birth dates,
established ASCVD, units stated in JSON, and the public page a card links to."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.interop.test_fhir_records import condition, obs, record
from tests.serving.api.conftest import bearer
from tests.serving.api.test_cds_hooks import SERVICE, dev_token, hook_request

MI = condition("mi", "urn:oid:2.16.156.10011.2.3.3.11", "I21.900", status="resolved", text="急性心肌梗死")


def _hook_for(doc: dict) -> dict:
    entries = copy.deepcopy(doc["entry"])
    for entry in entries[1:]:  # a FHIR server's search answer names the patient by its id
        entry["resource"]["subject"] = {"reference": "Patient/zhang-san"}
    request = hook_request(context={"userId": "Practitioner/9", "patientId": "zhang-san"})
    prefetch = request["prefetch"]
    prefetch["patient"] = entries[0]["resource"]
    prefetch["observations"]["entry"] = [e for e in entries[1:] if e["resource"]["resourceType"] == "Observation"]
    prefetch["conditions"]["entry"] = [e for e in entries[1:] if e["resource"]["resourceType"] == "Condition"]
    for entry in prefetch["medications"]["entry"]:
        entry["resource"]["subject"] = {"reference": "Patient/zhang-san"}
    return request


def _cards(client: TestClient, doc: dict) -> dict[str, dict]:
    response = client.post(SERVICE, json=_hook_for(doc), headers=dev_token(client))
    assert response.status_code == 200, response.text
    return {card["summary"].split(" ")[0].rstrip(":"): card for card in response.json()["cards"]}


def test_an_impossible_blood_pressure_costs_only_the_cards_that_need_it(client: TestClient) -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"))
    doc["entry"][3] = obs("sbp1", "8480-6", 1480, "mm[Hg]", "2026-10-08T09:10:00+08:00")  # a typing slip
    cards = _cards(client, doc)
    assert set(cards) == {"Cardiovascular", "Diabetes", "Kidney"}
    assert cards["Cardiovascular"]["summary"].startswith("Cardiovascular risk not calculated: systolic_bp is impossible")
    assert cards["Kidney"]["summary"].startswith("Kidney: ") and "mL/min/1.73 m²" in cards["Kidney"]["summary"]


def test_prior_myocardial_infarction_gets_a_secondary_prevention_card(client: TestClient) -> None:
    cards = _cards(client, record(obs("cr", "14682-9", 97, "umol/L"), MI))
    card = cards["Cardiovascular"]
    assert card["summary"] == ("Cardiovascular: very high risk (established ASCVD); primary-prevention equations do "
                               "not apply")
    assert card["indicator"] == "warning" and "Condition/mi" in card["detail"] and "I21.900" in card["detail"]
    assert "%" not in card["summary"]
    refused = client.post("/v1/risk/pce/fhir?bp_treated=true&diabetes=false", json=record(MI),
                          headers=bearer(client, Role.CLINICIAN))  # fmt: skip
    assert refused.status_code == 422 and refused.json()["code"] == "established_ascvd"


@pytest.mark.parametrize("birth", ["1966", "1966-04"])
def test_a_partial_birth_date_answers_everywhere_with_the_age_stated_as_approximate(client: TestClient,
                                                                                     birth: str) -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"), birth=birth)
    headers = bearer(client, Role.CLINICIAN)
    panel = client.post("/v1/risk/panel?as_of=2026-11-20", json=doc, headers=headers)
    assert panel.status_code == 200, panel.text
    kidney = next(t for t in panel.json()["topics"] if t["topic"] == "kidney")
    assert kidney["result"]["inputs"]["age"] == 60
    if birth == "1966":  # born 1966: 59 or 60 on 2026-11-20
        assert any("age is approximate" in w and "59-60" in w for w in kidney["result"]["warnings"])
    fhir = client.post("/v1/risk/ckd_epi_2021/fhir?as_of=2026-11-20", json=doc, headers=headers)
    assert fhir.status_code == 200, fhir.text
    assert _cards(client, doc)["Kidney"]["summary"].startswith("Kidney: ")


def test_the_panel_says_why_each_topic_is_not_scored(client: TestClient) -> None:
    fpg = obs("fpg", "14771-0", 8.0, "mmol/L", "2026-10-08")
    answer = client.post("/v1/risk/panel?as_of=2026-11-20", json=record(fpg), headers=bearer(client, Role.CLINICIAN))
    cardiovascular = next(t for t in answer.json()["topics"] if t["topic"] == "cardiovascular")
    assert cardiovascular["not_scored"] == "missing_fields" and "diabetes unconfirmed" in cardiovascular["reason"]
    secondary = client.post("/v1/risk/panel", json=record(MI), headers=bearer(client, Role.CLINICIAN)).json()
    topic = next(t for t in secondary["topics"] if t["topic"] == "cardiovascular")
    assert topic["not_scored"] == "established_ascvd" and topic["method"] == "secondary_prevention"
    assert topic["result"] is None and "Condition/mi" in topic["reason"]


def test_json_inputs_may_state_their_unit_and_a_bare_value_in_the_other_unit_gets_a_hint(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    inputs = {"age": 55, "sex": "female", "race": "white", "total_cholesterol": 213, "hdl_cholesterol": 50,
              "systolic_bp": 120, "bp_treated": False, "smoker": False, "diabetes": False}  # fmt: skip
    plain = client.post("/v1/risk/pce", json={"inputs": inputs}, headers=headers).json()["result"]
    stated = copy.deepcopy(inputs) | {"total_cholesterol": {"value": 5.508, "unit": "mmol/L"},
                                      "systolic_bp": {"value": 16.0, "unit": "kPa"}}  # fmt: skip
    answer = client.post("/v1/risk/pce", json={"inputs": stated}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["score"] == pytest.approx(plain["score"], abs=2e-4)
    bare = client.post("/v1/risk/pce", json={"inputs": inputs | {"total_cholesterol": 5.5}}, headers=headers)
    assert bare.status_code == 422 and bare.json()["code"] == "impossible_value"
    assert "looks like mmol/L" in bare.json()["detail"] and '"unit": "mmol/L"' in bare.json()["detail"]
    wrong = client.post("/v1/risk/pce", json={"inputs": inputs | {"sex": {"value": 1, "unit": "mmol/L"}}},
                        headers=headers)  # fmt: skip
    assert wrong.status_code == 422 and wrong.json()["code"] == "unsupported_unit"


def test_a_cards_source_page_opens_without_a_token_and_holds_no_patient_data(client: TestClient) -> None:
    cards = _cards(client, record(obs("cr", "14682-9", 97, "umol/L")))
    url = cards["Kidney"]["source"]["url"]
    assert url.endswith("/about/risk/ckd_epi_2021")
    page = client.get(url.removeprefix("http://testserver"))
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "CKD-EPI" in page.text and "mL/min/1.73 m²" in page.text or "µmol/L" in page.text or "mg/dL" in page.text
    assert "张三" not in page.text and "zhang-san" not in page.text
    assert client.get("/about/risk/nonexistent").status_code == 404


def test_a_us_equation_at_a_chinese_site_never_raises_a_critical_card_and_says_why(client: TestClient) -> None:
    assert client.app.state.cds.engine.settings.risk_population == "china"  # the default
    doc = record(obs("cr", "14682-9", 97, "umol/L"), condition("dm", "urn:oid:2.16.156.10011.2.3.3.11", "E11.900"),
                 birth="1951-02-01")  # 75, diabetic, SBP 150: PREVENT's high band  # fmt: skip
    smoker = obs("smk", "72166-2", 0, "1")
    del smoker["resource"]["valueQuantity"]
    smoker["resource"]["valueCodeableConcept"] = {"coding": [{"system": "http://snomed.info/sct", "code": "77176002"}]}
    doc["entry"].append(smoker)
    cards = _cards(client, doc)
    cardiovascular = cards["Cardiovascular"]
    assert "prevent_cvd" in cardiovascular["source"]["label"] and "(high" in cardiovascular["summary"]
    assert cardiovascular["indicator"] == "warning"  # "high" is critical only from an equation for this population
    assert "used outside its derivation population" in cardiovascular["detail"]


@pytest.mark.parametrize(("accept", "chinese"), [("zh-CN,zh;q=0.9,en;q=0.8", True), ("en-GB,en;q=0.9", False),
                                                 ("fr-FR, zh;q=0.5, en;q=0.4", True), (None, False)])
def test_cards_follow_accept_language_over_the_site_default(client: TestClient, accept: str | None,
                                                            chinese: bool) -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"), MI)
    headers = dev_token(client) | ({"Accept-Language": accept} if accept else {})
    response = client.post(SERVICE, json=_hook_for(doc), headers=headers)  # this site's default: English
    summaries = [card["summary"] for card in response.json()["cards"]]
    if chinese:
        assert any(s.startswith("肾脏：") for s in summaries) and any("很高危" in s for s in summaries)
        assert any(s.startswith("糖尿病风险未计算：缺少") for s in summaries)
        assert all("仅供临床参考" in card["detail"] for card in response.json()["cards"])
    else:
        assert any(s.startswith("Kidney: ") for s in summaries) and not any("肾脏" in s for s in summaries)


def test_a_chinese_site_answers_in_chinese_by_default_and_a_us_site_in_english(tmp_path: Path) -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"))
    for population, first in (("china", "肾脏："), ("us", "Kidney: ")):
        settings = Settings(dev_mode=True, data_dir=tmp_path / population, risk_population=population)
        with TestClient(create_app(settings)) as site:
            response = site.post(SERVICE, json=_hook_for(doc), headers=dev_token(site))
            assert any(c["summary"].startswith(first) for c in response.json()["cards"]), population


def test_the_panel_gives_each_topic_a_headline_in_the_requested_language(client: TestClient) -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"), MI)
    headers = bearer(client, Role.CLINICIAN)
    english = client.post("/v1/risk/panel", json=doc, headers=headers).json()["topics"]
    chinese = client.post("/v1/risk/panel", json=doc, headers=headers | {"Accept-Language": "zh-CN"}).json()["topics"]
    assert {t["topic"]: t["headline"].split(":")[0] for t in english}["kidney"] == "Kidney"
    assert {t["topic"]: t["headline"] for t in chinese}["cardiovascular"].startswith("心血管：很高危")


def _panel_inputs(client: TestClient, doc: dict) -> dict[str, dict]:
    topics = client.post("/v1/risk/panel", json=doc, headers=bearer(client, Role.CLINICIAN)).json()["topics"]
    return {i["field"]: i for t in topics for i in t["inputs"]}


def test_labs_are_shown_in_the_units_they_arrived_in_at_any_site(tmp_path: Path) -> None:
    doc = record(obs("cr", "2160-0", 1.1, "mg/dL"))  # total cholesterol 5.6 mmol/L, from record()
    for population in ("china", "us"):
        settings = Settings(dev_mode=True, data_dir=tmp_path / population, risk_population=population)
        with TestClient(create_app(settings)) as site:
            inputs = _panel_inputs(site, doc)
        assert (inputs["total_cholesterol"]["unit"], inputs["total_cholesterol"]["value"]) == (
            "mmol/L", pytest.approx(5.6)), population  # a US site no longer shows 217 mg/dL
        assert (inputs["creatinine"]["unit"], inputs["creatinine"]["value"]) == (
            "mg/dL", pytest.approx(1.1)), population  # a Chinese site no longer shows 97 µmol/L


def test_readings_in_mixed_units_are_shown_in_the_sites_unit(client: TestClient) -> None:
    # record()'s 5.6 mmol/L and the same in mg/dL the same day: they agree; shown in the site's unit (China: mmol/L).
    shown = _panel_inputs(client, record(obs("tc-b", "2093-3", 216.5, "mg/dL")))["total_cholesterol"]
    assert (shown["unit"], shown["value"]) == ("mmol/L", pytest.approx(5.6, rel=1e-3))
