"""Every route, found by introspection, called with a token scoped to another patient than the data it reaches:
item routes answer 403 ``patient_scope`` and audit it, list routes leave the other patient out, and the few routes
that hold no patient data are named here. A new route is taken to return patient data until it is listed."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer
from tests.serving.api.test_route_guards import _roles, _routes
from tests.support.seeded_reads import seed_reads, seed_records

PATIENT, OTHER = "P-A", "Patient/SOMEONE-ELSE"
NO_PATIENT_DATA = {("GET", "/v1/models"), ("GET", "/v1/models/{name}"), ("GET", "/v1/me"), ("GET", "/v1/risk"),
                   ("GET", "/v1/risk/panel/sample"), ("GET", "/v1/dashboard"), ("GET", "/v1/audit/verify"),
                   ("GET", "/v1/dicom-dictionary")}
FILTERED = {("GET", "/v1/worklist"), ("GET", "/v1/pathology/jobs"), ("GET", "/v1/ecg/jobs"), ("GET", "/dicomweb/studies"),
            ("GET", "/v1/alerts"), ("GET", "/v1/consortium/shared-results"),
            ("GET", "/v1/monitoring/patients"), ("GET", "/v1/registries/{condition}"),
            ("GET", "/dicomweb/studies/{study}/series"),
            ("GET", "/dicomweb/studies/{study}/series/{series}/instances")}  # fmt: skip
PATIENT_QUERY = {("GET", "/v1/observations"), ("GET", "/v1/monitoring/scores"),
                 ("GET", "/v1/registries/{condition}/status")}
UPLOADS = {("POST", "/dicomweb/studies"),  # stored under the patient the file names; reads of it are checked
           ("POST", "/v1/consortium/shared-results")}  # the patient is the signed Bundle's, checked before it is kept
BUNDLE = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
    "resourceType": "Patient", "id": PATIENT, "gender": "male", "birthDate": "1960-01-01"}}]}  # fmt: skip


@pytest.fixture
def seeded(client: TestClient) -> dict[str, str]:
    """One patient's study, pre-read, slide read, ECG read, risk result and a cohort job, written into the store."""
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        ids = seed_reads(session, client.app.state.cds.settings.data_dir, patient=PATIENT, study="1.9")  # type: ignore[attr-defined]
        ids |= seed_records(session, patient=PATIENT)
    return ids


def _url(path: str, ids: dict[str, str]) -> str:
    job = ids["pathology"] if path.startswith("/v1/pathology") else ids["ecg"] if path.startswith("/v1/ecg") \
        else ids["cohort"] if path.startswith("/v1/jobs") else ids["preread"]
    values = {"study": "1.9", "series": "1.9.2", "sop": "1.9.1", "uid": "1.9.1", "name": "result.json",
              "job_id": job, "result_id": ids["result"], "score": "pce", "service_id": "cds-risk",
              "alert_id": ids["alert"], "condition": "hypertension", "numbers": "1", "tag": "7FE00010",
              "shared_id": ids["shared"]}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "lesion-demo"), path)


def _body(method: str, path: str) -> dict[str, Any] | None:
    if method != "POST":
        return None
    if path.endswith("/feedback"):
        return {"label": "Mass", "verdict": "accepted"}
    if path.endswith("/reviews"):
        return {"item": "heart_rate_bpm", "verdict": "accepted"}
    if path in ("/v1/risk/{score}/fhir", "/v1/risk/panel"):
        return BUNDLE
    if path == "/v1/registries/{condition}":
        return {"patient": f"Patient/{PATIENT}"}
    if path == "/v1/observations":
        return {"resourceType": "Observation", "id": "hr", "status": "final", "subject": {"reference": f"Patient/{PATIENT}"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                "effectiveDateTime": "2026-01-01T08:00:00Z", "valueQuantity": {"value": 70, "code": "/min"}}
    return {"inputs": {"age": 55}, "subject": f"Patient/{PATIENT}"}


def test_every_route_keeps_other_patients_data_from_a_scoped_token(client: TestClient,
                                                                   seeded: dict[str, str]) -> None:
    refused = 0
    for index, (method, path, route) in enumerate(_routes(client)):
        roles = _roles(route)
        if roles is None or (method, path) in NO_PATIENT_DATA | UPLOADS:
            continue
        upload = {"/v1/pathology/jobs": "?filename=s.tif&subject=Patient/P-A",
                  "/v1/ecg/jobs": "?filename=e.csv&subject=Patient/P-A"}
        url = _url(path, seeded) + (upload.get(path, "") if method == "POST" else "")
        url += f"?patient=Patient/{PATIENT}" if (method, path) in PATIENT_QUERY else ""
        answer = client.request(method, url, json=_body(method, path),
                                headers=bearer(client, sorted(roles)[0], patient=OTHER, subject=f"scoped{index}"))
        if (method, path) in FILTERED:
            assert answer.status_code == 200, (method, path, answer.text)
            assert PATIENT not in answer.text and seeded["pathology"] not in answer.text, (method, path)
            assert seeded["ecg"] not in answer.text, (method, path)
            continue
        assert answer.status_code == 403 and answer.json()["code"] == "patient_scope", (method, path, answer.text)
        events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
        mine = [e for e in events if e["agent"][0]["who"]["display"] == f"scoped{index}"]
        assert [(e["type"]["code"], json.loads(e["outcomeDesc"]).get("reason")) for e in mine] == [
            ("access.denied", "patient_scope")], (method, path)
        refused += 1
    assert refused >= 20


def test_the_patient_itself_reads_its_own_data(client: TestClient, seeded: dict[str, str]) -> None:
    own = {"patient": f"Patient/{PATIENT}"}
    assert client.get(f"/v1/preread/{seeded['preread']}", headers=bearer(client, Role.RADIOLOGIST, **own)
                      ).status_code == 200  # fmt: skip
    assert client.get(f"/v1/pathology/jobs/{seeded['pathology']}", headers=bearer(client, Role.PATHOLOGIST, **own)
                      ).status_code == 200  # fmt: skip
    assert client.get(f"/v1/ecg/jobs/{seeded['ecg']}", headers=bearer(client, Role.CARDIOLOGIST, **own)
                      ).status_code == 200  # fmt: skip
    assert client.get(f"/v1/results/{seeded['result']}", headers=bearer(client, Role.CLINICIAN, **own)
                      ).status_code == 200  # fmt: skip
    worklist = client.get("/v1/worklist", headers=bearer(client, Role.RADIOLOGIST, **own)).json()
    assert [i["study_uid"] for i in worklist["items"]] == ["1.9"]
    unscoped = client.get(f"/v1/jobs/{seeded['cohort']}", headers=bearer(client, Role.CLINICIAN)).json()
    assert unscoped["kind"] == "risk_file" and unscoped["created_at"] < dt.datetime.now().isoformat()
