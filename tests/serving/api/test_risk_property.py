"""A property over generated records: every FHIR-valid Bundle gets an answer from every risk route, never a 500, and
CDS Hooks always answers with one card per topic, whatever the values, units, codes, dates and subjects.

The generator draws what real records bring: partial and future dates, date-times with zones, SI and conventional
units and units nothing converts, impossible values, components, statuses, local and standard code systems (ICD-10
editions, SNOMED CT, LOINC, local codes), other patients' resources, Procedures and medications. A drawn Bundle that
``fhir.resources`` refuses is not FHIR-valid and is skipped (the routes refuse it with 422, tested elsewhere).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cds.interop.clinical_codes import OBSERVATION_CODES, SMOKING_STATUS
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.serving.api.test_cds_hooks import SERVICE

pytestmark = pytest.mark.slow
UNITS = ("mg/dL", "mmol/L", "umol/L", "µmol/L", "mm[Hg]", "mmHg", "kPa", "%", "mmol/mol", "kg/m2", "cm", "[in_i]",
         "mg/g", "mg/mmol", "mL/min/{1.73_m2}", "g/L", "", "furlongs")  # fmt: skip
SYSTEMS = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm", "urn:oid:2.16.156.10011.2.3.3.11",
           "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-pcs", "urn:local:codes")  # fmt: skip
CODES = ("E11.900x001", "E119", "E10", "I21.9", "I25.2", "G45.4", "I70.21", "Z95.5", "44054006", "22298006", "X",
         "e11.9", "I63")  # fmt: skip
LOINCS = (*OBSERVATION_CODES, SMOKING_STATUS, "85354-9", "1234-5")
SUBJECTS = ("Patient/p", "Patient/other", "Group/ward", None, "urn:uuid:c0ffee00-0000-4000-8000-000000000001")

years = st.integers(1900, 2040).map(str)
dates = st.one_of(years, st.tuples(years, st.integers(1, 12)).map(lambda t: f"{t[0]}-{t[1]:02d}"),
                  st.dates().map(lambda d: d.isoformat()),
                  st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%S+08:00")))  # fmt: skip
values = st.one_of(st.floats(-1e6, 1e7, allow_nan=False, allow_infinity=False), st.integers(-10, 400))


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}], "text": "测试"}


@st.composite
def observation(draw: st.DrawFn, index: int) -> dict[str, Any]:
    loinc = draw(st.sampled_from(LOINCS))
    resource: dict[str, Any] = {"resourceType": "Observation", "id": f"o{index}",
                                "status": draw(st.sampled_from(("final", "amended", "entered-in-error"))),
                                "code": _coding("http://loinc.org", loinc)}  # fmt: skip
    if (subject := draw(st.sampled_from(SUBJECTS))) is not None:
        resource["subject"] = {"reference": subject}
    if draw(st.booleans()):
        resource["effectiveDateTime"] = draw(dates)
    if loinc == SMOKING_STATUS:
        resource["valueCodeableConcept"] = _coding("http://snomed.info/sct", draw(st.sampled_from(
            ("449868002", "8517006", "266919005", "0"))))
    elif loinc == "85354-9":
        resource["component"] = [{"code": _coding("http://loinc.org", code),
                                   "valueQuantity": {"value": draw(values), "code": draw(st.sampled_from(UNITS))}}
                                  for code in ("8480-6", "8462-4")]  # fmt: skip
    else:
        resource["valueQuantity"] = {"value": draw(values), "unit": draw(st.sampled_from(UNITS))}
    return resource


@st.composite
def condition(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(("Condition", "Procedure")))
    resource: dict[str, Any] = {"resourceType": kind, "id": f"c{index}",
                                "code": _coding(draw(st.sampled_from(SYSTEMS)), draw(st.sampled_from(CODES)))}
    if (subject := draw(st.sampled_from(SUBJECTS))) is not None or kind == "Procedure":
        resource["subject"] = {"reference": subject or "Patient/p"}
    if kind == "Procedure":
        resource["status"] = draw(st.sampled_from(("completed", "in-progress", "not-done")))
    elif draw(st.booleans()):
        resource["clinicalStatus"] = _coding("http://terminology.hl7.org/CodeSystem/condition-clinical",
                                             draw(st.sampled_from(("active", "resolved", "inactive"))))
    return resource


@st.composite
def bundle(draw: st.DrawFn) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "p"}
    if draw(st.booleans()):
        patient["gender"] = draw(st.sampled_from(("female", "male", "other", "unknown")))
    if draw(st.booleans()):
        patient["birthDate"] = draw(st.one_of(years, st.dates(min_value=__import__("datetime").date(1890, 1, 1))
                                              .map(lambda d: d.isoformat())))  # fmt: skip
    resources = [patient]
    resources += [draw(observation(i)) for i in range(draw(st.integers(0, 12)))]
    resources += [draw(condition(i)) for i in range(draw(st.integers(0, 3)))]
    if draw(st.booleans()):
        answers = st.sampled_from(({"valueBoolean": True}, {"valueString": "是"}, {"valueInteger": 3},
                                   {"valueCoding": {"system": "http://loinc.org", "code": "LA32-8"}},
                                   {"valueCoding": {"system": "urn:cds:codesystem:findrisc-family-history",
                                                    "code": "first_degree"}}))  # fmt: skip
        links = st.sampled_from(("physically_active", "daily_vegetables", "bp_treated", "high_glucose_history",
                                 "family_history", "other"))  # fmt: skip
        resources.append({"resourceType": "QuestionnaireResponse", "id": "q",
                          "status": draw(st.sampled_from(("completed", "in-progress", "amended"))),
                          "questionnaire": "urn:cds:questionnaire:findrisc|2003", "subject": {"reference": "Patient/p"},
                          "item": [{"linkId": draw(links), "answer": [draw(answers)] * draw(st.integers(1, 2))}
                                   for _ in range(draw(st.integers(0, 6)))]})  # fmt: skip
    if draw(st.booleans()):
        resources.append({"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
                          "subject": {"reference": "Patient/p"},
                          "medicationCodeableConcept": _coding("http://www.whocc.no/atc",
                                                               draw(st.sampled_from(("C08CA01", "C10AA05", "A10BA02"))))})
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def _fhir_valid(document: dict[str, Any]) -> bool:
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(document)
    except Exception:  # noqa: BLE001 - whatever fhir.resources refuses is not FHIR-valid
        return False
    return True


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root: Path = tmp_path_factory.mktemp("property")
    with TestClient(create_app(Settings(dev_mode=True, data_dir=root, job_workers=0))) as client:
        yield client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(document=bundle())
def test_every_fhir_valid_bundle_is_answered_and_cds_hooks_always_gives_every_card(service: TestClient,
                                                                                   document: dict) -> None:
    assume(_fhir_valid(document))
    token = service.app.state.cds.authenticator.mint_dev_token("dr-prop", [Role.CLINICIAN])
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/v1/risk/panel", "/v1/risk/pce/fhir", "/v1/risk/ckd_epi_2021/fhir?as_of=2026-12-01"):
        answer = service.post(path, json=document, headers=headers)
        assert answer.status_code < 500, (path, answer.text)
        assert answer.status_code in (200, 422), (path, answer.text)
        if answer.status_code == 422:
            assert answer.json()["code"], answer.text  # a machine-readable reason
    panel = service.post("/v1/risk/panel", json=document, headers=headers)
    assert panel.status_code == 200, panel.text  # FHIR-valid with one Patient: the panel always answers
    assert {t["topic"] for t in panel.json()["topics"]} == {"cardiovascular", "diabetes", "kidney"}
    entries = document["entry"]
    hook = {"hook": "patient-view", "hookInstance": "5c1b7e0a-0000-4000-8000-00000000abcd",
            "context": {"userId": "Practitioner/1", "patientId": "p"},
            "prefetch": {"patient": entries[0]["resource"],
                         "observations": {"resourceType": "Bundle", "type": "searchset", "entry": [
                             e for e in entries if e["resource"]["resourceType"] == "Observation"]},
                         "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": [
                             e for e in entries if e["resource"]["resourceType"] in ("Condition", "Procedure")]},
                         "medications": {"resourceType": "Bundle", "type": "searchset", "entry": [
                             e for e in entries if e["resource"]["resourceType"] == "MedicationRequest"]},
                         "questionnaires": {"resourceType": "Bundle", "type": "searchset", "entry": [
                             e for e in entries if e["resource"]["resourceType"] == "QuestionnaireResponse"]}}}  # fmt: skip
    hook_token = service.app.state.cds.dev_hook_client.mint("http://testserver" + SERVICE)
    answer = service.post(SERVICE, json=hook, headers={"Authorization": f"Bearer {hook_token}"})
    assert answer.status_code == 200, answer.text
    cards = answer.json()["cards"]
    assert len(cards) == 3 and all(len(c["summary"]) <= 140 for c in cards)
