"""Chronic-disease registries with dated examples: enrolment from real-shaped diagnoses, control against the
national basic public health service targets from clinic and home readings, follow-up due dates, the lists a family
doctor works from, and the card on chart open; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer
from tests.serving.api.test_cds_hooks import SERVICE, dev_token, hook_request

CHINA_ICD10 = "2.16.156.10011.2.3.3.11"  # ICD-10 clinical edition 2.0 (China), as national EHR standards name it


def hypertension(patient: str = "h1", *, verification: str = "confirmed") -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": patient, "birthDate": "1955-04"}},  # partial, 71 in 2026
        {"resource": {"resourceType": "Condition", "id": f"htn-{patient}", "subject": {"reference": f"Patient/{patient}"},
                      "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                     "code": "active"}]},
                      "verificationStatus": {"coding": [{
                          "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]},
                      "code": {"coding": [{"system": f"urn:oid:{CHINA_ICD10}", "code": "I10.x00x002",
                                           "display": "高血压病"}]},
                      "onsetDateTime": "2026-03-02"}}]}  # fmt: skip


def bp(id_: str, when: str, systolic: float, diastolic: float, *, clinic: bool, patient: str = "h1") -> dict:
    resource = {"resourceType": "Observation", "id": id_, "status": "final", "subject": {"reference": f"Patient/{patient}"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]}, "effectiveDateTime": when,
                "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                               "valueQuantity": {"value": systolic, "code": "mm[Hg]"}},
                              {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                               "valueQuantity": {"value": diastolic, "code": "mm[Hg]"}}]}  # fmt: skip
    if clinic:
        resource["encounter"] = {"reference": f"Encounter/visit-{id_}"}
        resource["performer"] = [{"reference": "Practitioner/dr-wang"}]
    else:
        resource["performer"] = [{"reference": f"Patient/{patient}"}]
        resource["device"] = {"display": "home BP monitor"}
    return {"resource": resource}


def test_hypertension_control_follow_up_and_lists_with_dated_readings(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    enrolled = client.post("/v1/registries/hypertension", json=hypertension(), headers=headers)
    assert enrolled.status_code == 201, enrolled.text
    entry = enrolled.json()["entry"]
    assert (entry["patient"], entry["enrolled_on"], entry["birth_date"], entry["site"]) == (
        "Patient/h1", "2026-03-02", "1955-04", "default")
    again = client.post("/v1/registries/hypertension", json=hypertension(), headers=headers)
    assert again.status_code == 200 and again.json()["new"] is False
    refuted = client.post("/v1/registries/hypertension", json=hypertension("h2", verification="refuted"),
                          headers=headers)  # fmt: skip
    assert refuted.status_code == 422 and refuted.json()["code"] == "not_this_condition"
    wrong = client.post("/v1/registries/diabetes", json=hypertension("h3"), headers=headers)
    assert wrong.status_code == 422 and wrong.json()["code"] == "not_this_condition"

    readings = [bp("v1", "2026-06-01T09:00:00+08:00", 148, 88, clinic=True),  # 71: below 150/90, controlled
                bp("v2", "2026-09-01T09:00:00+08:00", 156, 92, clinic=True),  # not controlled
                bp("v3", "2026-09-14T23:30:00Z", 158, 94, clinic=True),  # 07:30 on the 15th in Beijing: again
                *(bp(f"h{d}", f"2026-10-{d}T07:00:00+08:00", 140, 86, clinic=False) for d in (14, 16, 18)),
                bp("h-old", "2026-10-01T07:00:00+08:00", 120, 70, clinic=False)]  # outside the week  # fmt: skip
    stored = client.post("/v1/observations", headers=headers,
                         json={"resourceType": "Bundle", "type": "batch", "entry": readings})  # fmt: skip
    assert stored.status_code == 200 and stored.json()["stored"] == 14, stored.text

    status = client.get("/v1/registries/hypertension/status", headers=headers,
                        params={"patient": "Patient/h1", "as_of": "2026-10-19"}).json()  # fmt: skip
    assert status["age"] == 71 and status["last_follow_up"] == "2026-09-15" and status["follow_ups_past_year"] == 3
    assert status["controlled"] is False and status["uncontrolled_since"] == "2026-09-01"
    assert status["reason_code"] == "refer_consecutive" and status["referral_advised"] is True
    assert (status["due"], status["overdue_days"]) == ("2026-09-29", 20)  # 2 weeks after the 15th
    office, home = status["controls"]
    assert (office["value"], office["target"], office["controlled"]) == ([158.0, 94.0], "<150/90", False)
    assert (home["value"], home["target"], home["controlled"]) == ([140.0, 86.0], "<135/85", False)
    earlier = client.get("/v1/registries/hypertension/status", headers=headers,
                         params={"patient": "Patient/h1", "as_of": "2026-07-01"}).json()  # fmt: skip
    assert (earlier["reason_code"], earlier["due"], earlier["overdue_days"]) == ("quarterly", "2026-09-01", 0)
    assert earlier["controls"][1]["controlled"] is None  # no home readings that week

    client.post("/v1/registries/hypertension", json={"patient": "Patient/h9", "enrolled_on": "2026-10-01"},
                headers=headers).raise_for_status()  # a doctor's enrolment, never followed up
    listed = client.get("/v1/registries/hypertension", params={"as_of": "2026-10-19"}, headers=headers).json()
    assert [(s["entry"]["patient"], s["overdue_days"]) for s in listed] == [("Patient/h1", 20), ("Patient/h9", 18)]
    uncontrolled = client.get("/v1/registries/hypertension", params={"as_of": "2026-10-19", "only": "uncontrolled"},
                              headers=headers).json()  # fmt: skip
    assert [s["entry"]["patient"] for s in uncontrolled] == ["Patient/h1"]
    other = client.get("/v1/registries/hypertension", params={"site": "other-clinic"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (403, "other_site")  # a site reads its own registry only
    assert client.get("/v1/registries/diabetes/status", params={"patient": "Patient/h1"},
                      headers=headers).status_code == 404  # fmt: skip
    scoped = bearer(client, Role.CLINICIAN, patient="Patient/h9")
    assert [s["entry"]["patient"] for s in client.get("/v1/registries/hypertension", headers=scoped).json()] == [
        "Patient/h9"]
    assert client.post("/v1/registries/hypertension", json=hypertension(), headers=scoped).status_code == 403
    events = [e["type"]["code"] for e in client.get("/v1/audit/events?limit=1000",
                                                     headers=bearer(client, Role.ADMIN)).json()]  # fmt: skip
    assert events.count("registry.enrol") == 2 and "registry.read" in events

    # the card on chart open, dated today in the site's zone
    hook = hook_request(context={"userId": "Practitioner/9", "patientId": "h1"})
    hook["prefetch"]["patient"] = {"resourceType": "Patient", "id": "h1", "birthDate": "1955-04", "gender": "male"}
    cards = client.post(SERVICE, json=hook, headers=dev_token(client)).json()["cards"]
    (card,) = [c for c in cards if c["source"]["label"] == "cds follow-up"]
    today = dt.datetime.now(zoneinfo.ZoneInfo("Asia/Shanghai")).date()
    overdue = (today - dt.date(2026, 9, 29)).days
    months = (today - dt.date(2026, 9, 1)).days // 30  # this test runs after 2026-10-01
    assert card["summary"] == f"Hypertension follow-up overdue {overdue} days; BP above target since 2026-09-01 " \
                              f"({months} month{'' if months == 1 else 's'})"
    assert card["indicator"] == "critical" and "Referral to a higher-level hospital is advised" in card["detail"]
    chinese = client.post(SERVICE, json=hook, headers=dev_token(client) | {"Accept-Language": "zh-CN"}).json()
    (zh,) = [c for c in chinese["cards"] if c["source"]["label"] == "cds follow-up"]
    assert zh["summary"] == f"高血压随访已逾期{overdue}天；血压自2026-09-01起未达标（{months}个月）"
    assert "连续两次控制不满意" in zh["detail"]


def test_diabetes_fasting_glucose_and_hba1c(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN, site="clinic-7")
    enrolment = {"patient": "Patient/d1", "birth_date": "1970-02-11", "enrolled_on": "2026-01-05", "site": "clinic-7"}
    elsewhere = client.post("/v1/registries/diabetes", json=enrolment, headers=bearer(client, Role.CLINICIAN))
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (403, "other_site")  # not into another's registry
    client.post("/v1/registries/diabetes", json=enrolment, headers=headers).raise_for_status()

    def lab(id_: str, loinc: str, value: float, unit: str, when: str) -> dict:
        return {"resource": {"resourceType": "Observation", "id": id_, "status": "final",
                             "subject": {"reference": "Patient/d1"}, "effectiveDateTime": when,
                             "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                             "performer": [{"reference": "Organization/clinic-7"}],
                             "valueQuantity": {"value": value, "code": unit}}}  # fmt: skip

    labs = [lab("g1", "14771-0", 6.5, "mmol/L", "2026-02-01T08:00:00+08:00"),
            lab("a1", "4548-4", 7.4, "%", "2026-02-01T08:00:00+08:00")]  # fmt: skip
    client.post("/v1/observations", json={"resourceType": "Bundle", "type": "batch", "entry": labs},
                headers=headers).raise_for_status()  # fmt: skip
    (status,) = client.get("/v1/registries/diabetes", params={"site": "clinic-7", "as_of": "2026-03-01"},
                           headers=headers).json()  # fmt: skip
    glucose, hba1c = status["controls"]
    assert (glucose["value"], glucose["controlled"], glucose["target"]) == ([6.5], True, "<7")
    assert (hba1c["value"], hba1c["controlled"]) == ([7.4], False)  # the guideline's HbA1c target is <7 %
    assert (status["due"], status["overdue_days"], status["reason_code"]) == ("2026-05-01", 0, "quarterly")
    later = client.get("/v1/registries/diabetes/status", params={"patient": "Patient/d1", "as_of": "2026-09-01"},
                       headers=headers).json()  # fmt: skip
    assert later["overdue_days"] == 123 and later["controls"][1]["controlled"] is None  # HbA1c older than 6 months
    home = client.get("/v1/registries/diabetes/status", params={"patient": "Patient/d1"},
                      headers=bearer(client, Role.CLINICIAN))  # the deployment's own site: not its patient
    assert (home.status_code, home.json()["code"]) == (404, "not_enrolled")
    bad = client.post("/v1/registries/diabetes", json={"patient": "Patient/d2", "birth_date": "11/02/1970"},
                      headers=headers)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_date"


def test_home_blood_pressure_above_target_raises_a_routine_alert_then_an_urgent_one(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    client.post("/v1/registries/hypertension", json={"patient": "Patient/hb"}, headers=headers).raise_for_status()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def home(id_: str, days_ago: int, systolic: float, diastolic: float, patient: str = "hb") -> dict:
        when = (now - dt.timedelta(days=days_ago, minutes=5)).isoformat()
        return {"resourceType": "Bundle", "type": "batch",
                "entry": [bp(id_, when, systolic, diastolic, clinic=False, patient=patient)]}

    def post(bundle: dict) -> list[dict]:
        answer = client.post("/v1/observations", json=bundle, headers=headers)
        assert answer.status_code == 200, answer.text
        return answer.json()["alerts"]

    assert post(home("d2", 2, 140, 86)) == [] and post(home("d1", 1, 141, 84)) == []  # 2 days: too few to judge
    (opened,) = post(home("d0", 0, 139, 86))  # 3 days, mean 140/85.3: above 135/85
    assert (opened["level"], opened["rules"], opened["action"]) == ("routine", ["home_bp_above_target"], "opened")
    assert "home BP mean 140/85.3 mmHg over 3 days" in opened["text"]
    (again,) = post(home("d0b", 0, 138, 85))
    assert again["action"] == "deduplicated"
    (worse,) = post(home("d0c", 0, 182, 96))  # the specification refers this at once
    assert (worse["level"], worse["action"], worse["alert_id"]) == ("urgent", "escalated", opened["alert_id"])
    assert worse["rules"] == ["bp_refer_now", "home_bp_above_target"]
    (listed,) = client.get("/v1/alerts", params={"patient": "Patient/hb"}, headers=headers).json()
    result = client.get(f"/v1/results/{listed['result_id']}", headers=headers)
    assert result.status_code == 200, result.text  # the week's home readings, released and audited
    for days in (2, 1, 0):  # the same readings of a patient outside the registry raise nothing
        assert post(home(f"x{days}", days, 150, 95, patient="not-enrolled")) == []


def test_a_transaction_bundle_naming_its_patient_by_urn_or_absolute_url_enrols(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    bundle = hypertension("u1")
    bundle["type"] = "transaction"
    bundle["entry"][0]["fullUrl"] = "urn:uuid:7d2c3b9e-0f3a-4d1e-9b5e-2f4c6a8b1c01"
    bundle["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:7d2c3b9e-0f3a-4d1e-9b5e-2f4c6a8b1c01"}
    enrolled = client.post("/v1/registries/hypertension", json=bundle, headers=headers)
    assert enrolled.status_code == 201, enrolled.text
    assert (enrolled.json()["entry"]["patient"], enrolled.json()["entry"]["birth_date"]) == ("Patient/u1", "1955-04")
    condition = hypertension("u2")["entry"][1]["resource"]
    condition["subject"] = {"reference": "https://ehr.hospital.example/fhir/Patient/u2"}
    absolute = client.post("/v1/registries/hypertension", json=condition, headers=headers)
    assert absolute.status_code == 201 and absolute.json()["entry"]["patient"] == "Patient/u2"
    condition["subject"] = {"reference": "Group/ward-3"}
    assert client.post("/v1/registries/hypertension", json=condition, headers=headers).json()["code"] == \
        "missing_subject"
