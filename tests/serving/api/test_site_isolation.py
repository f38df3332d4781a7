"""Site isolation, by introspection of every route: another site's jobs (pre-reads, slide and ECG reads, cohort
jobs), stored studies and what it keeps per patient (risk results, observations, alerts, registry entries, shared
results) are invisible to a caller of this site, even under the same patient reference. Item routes answer 404 as for
an unknown job, study, result or alert (job refusals audited as ``other_site``), list routes leave them out, and no
answer carries any of their identifiers; the other site's own caller sees them, and each site's administrator reads
only their site's audit events."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer
from tests.serving.api.test_route_guards import _roles, _routes
from tests.support.seeded_reads import seed_reads, seed_records

OTHER_SITE = "clinic-b"
PATIENT = "P-B-7781"
SEARCHES = {("GET", "/dicomweb/studies/{study}/series"),
            ("GET", "/dicomweb/studies/{study}/series/{series}/instances")}  # QIDO: an empty answer, not 404
ITEMS = ("{job_id}", "{study}", "{result_id}", "{alert_id}", "{shared_id}")
PATIENT_QUERY = {("GET", "/v1/observations"), ("GET", "/v1/monitoring/scores"),
                 ("GET", "/v1/registries/{condition}/status")}
UPLOADS = {("POST", "/dicomweb/studies"), ("POST", "/v1/pathology/jobs"), ("POST", "/v1/ecg/jobs"),
           ("POST", "/v1/risk/cohort")}  # they store new data for the caller's own site  # fmt: skip


@pytest.fixture
def elsewhere(client: TestClient) -> dict[str, str]:
    """Another site's study, pre-read, slide read, ECG read, cohort job, result, alert, observation, registry entry and
    shared result."""
    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        ids = seed_reads(session, state.settings.data_dir, patient=PATIENT, study="1.8", site=OTHER_SITE)
        return ids | seed_records(session, patient=PATIENT, site=OTHER_SITE)


def _url(path: str, ids: dict[str, str]) -> str:
    job = ids["pathology"] if path.startswith("/v1/pathology") else ids["ecg"] if path.startswith("/v1/ecg") \
        else ids["cohort"] if path.startswith("/v1/jobs") else ids["preread"]
    values = {"study": "1.8", "series": "1.8.2", "sop": "1.8.1", "uid": "1.8.1", "name": "result.json",
              "job_id": job, "score": "pce", "service_id": "cds-risk", "condition": "hypertension",
              "numbers": "1", "tag": "7FE00010", "result_id": ids["result"], "alert_id": ids["alert"],
              "shared_id": ids["shared"]}  # fmt: skip
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "lesion-demo"), path)


def test_no_route_shows_another_sites_jobs_or_studies(client: TestClient, elsewhere: dict[str, str]) -> None:
    hidden = [PATIENT, "1.8.1", f"Observation/hr-{PATIENT}", *elsewhere.values()]
    refused = 0
    for index, (method, path, route) in enumerate(_routes(client)):
        roles = _roles(route)
        if roles is None or (method, path) in UPLOADS:
            continue
        url = _url(path, elsewhere) + (f"?patient=Patient/{PATIENT}" if (method, path) in PATIENT_QUERY else "")
        answer = client.request(method, url, json={} if method == "POST" else None,
                                headers=bearer(client, sorted(roles)[0], subject=f"home{index}"))  # fmt: skip
        leaked = [value for value in hidden if value in answer.text and value not in url]  # echoing the URL is not
        assert leaked == [], (method, path, answer.status_code, leaked)
        if any(item in path for item in ITEMS) and (method, path) not in SEARCHES:
            assert answer.status_code == 404, (method, path, answer.text)
            refused += 1
        if (method, path) in PATIENT_QUERY and path.startswith("/v1/registries"):
            assert answer.status_code == 404, (method, path, answer.text)  # not enrolled here
        elif (method, path) in PATIENT_QUERY:
            assert answer.json() == [], (method, path, answer.text)  # the same reference, none of its records
    assert refused >= 28
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    others = [e for e in events if e["type"]["code"] == "access.denied"
              and json.loads(e["outcomeDesc"]).get("reason") == "other_site"]  # fmt: skip
    assert len(others) >= 10  # job routes audit the refusal; study routes answer from the index as unknown


def test_the_other_sites_own_callers_see_their_data(client: TestClient, elsewhere: dict[str, str]) -> None:
    theirs = {"site": OTHER_SITE}
    assert client.get(f"/v1/preread/{elsewhere['preread']}", headers=bearer(client, Role.RADIOLOGIST, **theirs)
                      ).status_code == 200  # fmt: skip
    assert client.get(f"/v1/ecg/jobs/{elsewhere['ecg']}", headers=bearer(client, Role.CARDIOLOGIST, **theirs)
                      ).status_code == 200  # fmt: skip
    listed = client.get("/v1/pathology/jobs", headers=bearer(client, Role.ADMIN, **theirs)).json()  # everyone's
    assert [j["id"] for j in listed["items"]] == [elsewhere["pathology"]]
    worklist = client.get("/v1/worklist", headers=bearer(client, Role.RADIOLOGIST, **theirs)).json()
    assert [i["job_id"] for i in worklist["items"]] == [elsewhere["preread"]]
    studies = client.get("/dicomweb/studies", headers=bearer(client, Role.RADIOLOGIST, **theirs)).json()
    assert [s["0020000D"]["Value"][0] for s in studies] == ["1.8"]
    clinician = bearer(client, Role.CLINICIAN, **theirs)
    assert client.get(f"/v1/results/{elsewhere['result']}", headers=clinician).status_code == 200
    assert [a["id"] for a in client.get("/v1/alerts", headers=clinician).json()] == [elsewhere["alert"]]
    observed = client.get(f"/v1/observations?patient=Patient/{PATIENT}", headers=clinician).json()
    assert [o["source"] for o in observed] == [f"Observation/hr-{PATIENT}"]
    registry = client.get("/v1/registries/hypertension", headers=clinician).json()
    assert [s["entry"]["patient"] for s in registry] == [f"Patient/{PATIENT}"]
    shared = client.get("/v1/consortium/shared-results", headers=bearer(client, Role.RADIOLOGIST, **theirs)).json()
    assert [r["id"] for r in shared] == [elsewhere["shared"]]
    me = client.get("/v1/me", headers=bearer(client, Role.RADIOLOGIST, **theirs)).json()
    assert me["site"] == OTHER_SITE
    assert client.get("/v1/me", headers=bearer(client, Role.RADIOLOGIST)).json()["site"] == "default"


def test_each_sites_administrator_reads_their_sites_audit_events(client: TestClient,
                                                                 elsewhere: dict[str, str]) -> None:  # fmt: skip
    theirs, home = bearer(client, Role.CLINICIAN, site=OTHER_SITE), bearer(client, Role.CLINICIAN)
    assert client.get(f"/v1/results/{elsewhere['result']}", headers=theirs).status_code == 200
    assert client.get(f"/v1/results/{elsewhere['result']}", headers=home).status_code == 404

    def reads(site: str | None) -> list[dict]:
        admin = bearer(client, Role.ADMIN, **({"site": site} if site else {}))
        events = client.get("/v1/audit/events?limit=1000", headers=admin).json()
        return [e for e in events if e["type"]["code"] == "result.read"]

    (read,) = reads(OTHER_SITE)  # the clinic's read of its own result, marked with its site
    assert read["source"]["site"] == OTHER_SITE and read["entity"][0]["what"]["display"].endswith(elsewhere["result"])
    assert reads(None) == []  # the deployment's administrators see their site's events, not the clinic's
    created = [e for e in client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN, site=OTHER_SITE)
                                     ).json() if e["type"]["code"] == "result.create"]  # fmt: skip
    assert len(created) == 1 and created[0]["source"]["site"] == OTHER_SITE
    assert client.get("/v1/audit/verify", headers=bearer(client, Role.ADMIN)).json()["ok"] is True
