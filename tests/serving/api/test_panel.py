"""The clinician's risk panel: every topic from one FHIR Bundle, inputs with units, dates and sources,
contributions, what is missing; stored, audited, scoped."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from cds.settings import REPO_ROOT
from tests.serving.api.conftest import bearer

BUNDLE = json.loads((REPO_ROOT / "samples" / "fhir-bundle-risk.json").read_text())


def test_panel_reports_each_topic_with_its_inputs_and_what_is_missing(client: TestClient) -> None:
    answer = client.post("/v1/risk/panel", json=BUNDLE, headers=bearer(client, Role.CLINICIAN))
    assert answer.status_code == 200, answer.text
    panel = answer.json()
    topics = {t["topic"]: t for t in panel["topics"]}
    assert set(topics) == {"cardiovascular", "diabetes", "kidney"} and panel["patient"] == "Patient/p1"
    assert panel["as_of"] == "2025-06-01"  # the newest reading used; the evaluation date is today
    assert panel["evaluated_on"] == dt.datetime.now(dt.UTC).date().isoformat()

    kidney = topics["kidney"]  # creatinine, age and sex are in the Bundle: scored
    assert kidney["method"] == "ckd_epi_2021" and kidney["method_version"] == "2021" and kidney["missing"] == []
    assert kidney["result"]["score"] > 0 and kidney["result_id"]
    inputs = {i["field"]: i for i in kidney["inputs"]}
    # a Chinese site (the default) reads laboratory values in SI units; the result keeps the equation's mg/dL
    assert inputs["creatinine"]["unit"] == "µmol/L" and inputs["creatinine"]["source"] == "Observation/cr"
    assert inputs["creatinine"]["value"] == pytest.approx(88.42 * kidney["result"]["inputs"]["creatinine"])
    assert inputs["creatinine"]["date"] == "2025-06-01" and inputs["age"]["source"] == "Patient/p1"
    assert all(i["contribution"] is not None for i in kidney["inputs"])

    cardiovascular = topics["cardiovascular"]  # treatment and diabetes status are not in a plain Bundle
    assert cardiovascular["result"] is None and cardiovascular["result_id"] is None
    assert {m["field"] for m in cardiovascular["missing"]} == {"bp_treated", "diabetes"}
    assert all(m["value"] is None and m["description"] for m in cardiovascular["missing"])

    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        from cds.store.tables import AuditEventRow, ResultRow

        stored = session.query(ResultRow).filter(ResultRow.subject == "Patient/p1").all()
        released = session.query(AuditEventRow).filter(AuditEventRow.action == "result.create").count()
    assert [r.method for r in stored] == ["ckd_epi_2021@2021"] and released == 1


def test_panel_refuses_bad_bundles_and_other_patients(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    no_patient = copy.deepcopy(BUNDLE)
    no_patient["entry"] = [e for e in no_patient["entry"] if e["resource"]["resourceType"] != "Patient"]
    refused = client.post("/v1/risk/panel", json=no_patient, headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_fhir"
    scoped = client.post("/v1/risk/panel", json=BUNDLE, headers=bearer(client, Role.CLINICIAN, patient="other"))
    assert scoped.status_code == 403 and scoped.json()["code"] == "patient_scope"
    assert client.post("/v1/risk/panel", json=BUNDLE, headers=bearer(client, Role.RADIOLOGIST)).status_code == 403


def _with_diabetes(system: str, code: str) -> dict:
    """The sample Bundle with an active diabetes Condition coded ``system|code``."""
    diabetic = copy.deepcopy(BUNDLE)
    diabetic["entry"].append({"resource": {
        "resourceType": "Condition", "id": "t2dm", "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                       "code": "active"}]},
        "code": {"coding": [{"system": system, "code": code}]}}})  # fmt: skip
    return diabetic


def test_the_panel_names_whose_it_is_and_takes_the_clinicians_yes_no_answers(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    panel = client.post("/v1/risk/panel", json=BUNDLE, headers=headers).json()
    assert (panel["patient_name"], panel["identifiers"]) == ("王芳", ["urn:cds:sample-mrn|SAMPLE-0001"])
    assert (panel["birth_date"], panel["gender"], panel["answered"]) == ("1970-03-15", "female", [])
    cardiovascular = next(t for t in panel["topics"] if t["topic"] == "cardiovascular")
    assert {m["field"]: m["kind"] for m in cardiovascular["missing"]} == {"bp_treated": "boolean",
                                                                          "diabetes": "boolean"}  # fmt: skip

    answered = client.post("/v1/risk/panel?answer=bp_treated:yes&answer=diabetes:no", json=BUNDLE,
                           headers=headers).json()  # fmt: skip
    cardiovascular = next(t for t in answered["topics"] if t["topic"] == "cardiovascular")
    assert answered["answered"] == ["bp_treated", "diabetes"] and cardiovascular["result"] is not None
    inputs = {i["field"]: i for i in cardiovascular["inputs"]}
    assert (inputs["diabetes"]["value"], inputs["bp_treated"]["value"]) == (False, True)
    assert inputs["diabetes"]["source"] == "answered by dr-test"
    assert any("diabetes answered no by dr-test in the panel" in w for w in cardiovascular["result"]["warnings"])

    for query, code in (("answer=diabetes:maybe", "invalid_answer"), ("answer=age:yes", "invalid_answer"),
                        ("answer=smoker", "invalid_answer")):
        refused = client.post(f"/v1/risk/panel?{query}", json=BUNDLE, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (422, code), query
    diabetic = _with_diabetes("http://hl7.org/fhir/sid/icd-10", "E11.9")
    conflict = client.post("/v1/risk/panel?answer=diabetes:no", json=diabetic, headers=headers)
    assert (conflict.status_code, conflict.json()["code"]) == (422, "answer_conflicts_record")  # never overridden


def test_a_patient_known_to_have_diabetes_gets_no_score_of_new_onset_diabetes(client: TestClient) -> None:
    diabetic = _with_diabetes("http://snomed.info/sct", "44054006")
    panel = client.post("/v1/risk/panel", json=diabetic, headers=bearer(client, Role.CLINICIAN)).json()
    diabetes = next(t for t in panel["topics"] if t["topic"] == "diabetes")
    assert (diabetes["not_scored"], diabetes["result"], diabetes["missing"]) == ("known_diabetes", None, [])
    assert diabetes["reason"] == "Condition/t2dm" and "already diagnosed" in diabetes["headline"]


def test_panel_speaks_the_requests_language_and_keeps_the_units_the_source_sent(client: TestClient) -> None:
    from cds.services.risk import sample_bundle  # cholesterol in mmol/L, creatinine in µmol/L, as a Chinese lab sends

    headers = bearer(client, Role.CLINICIAN)
    panels = {language: client.post("/v1/risk/panel", json=sample_bundle(),
                                    headers=headers | {"Accept-Language": language}).json()
              for language in ("zh-CN", "en")}  # fmt: skip
    for language, panel in panels.items():
        topics = {t["topic"]: t for t in panel["topics"]}
        inputs = {i["field"]: i for t in panel["topics"] for i in t["inputs"]}
        # shown as the laboratory reported them at a Chinese site, whatever the language: never mg/dL
        assert (inputs["total_cholesterol"]["unit"], inputs["total_cholesterol"]["value"]) == (
            "mmol/L", pytest.approx(5.508))
        assert (inputs["creatinine"]["unit"], inputs["creatinine"]["value"]) == ("µmol/L", pytest.approx(88.42))
        assert not any(i["unit"] == "mg/dL" for t in panel["topics"] for i in t["inputs"] + t["missing"])
        chinese = language == "zh-CN"
        assert (inputs["total_cholesterol"]["description"] == "总胆固醇") is chinese
        assert ("肾脏" in topics["kidney"]["headline"]) is chinese, topics["kidney"]["headline"]
