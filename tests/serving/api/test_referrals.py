"""Remote reading across sites: a clinic's radiograph pre-read is invisible to the hub until the clinic refers it;
then the hub's radiologist finds it in the worklist and QIDO, reads and signs it as the hub, the referral closes with
its turnaround, the clinic reads the signed report, and a third site sees nothing throughout."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=url, preread_saliency_grid=2,
                        ct_model="", site="hub", hub_site="hub")  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _worklist(client: TestClient, site: str) -> list[str]:
    answer = client.get("/v1/worklist", headers=bearer(client, Role.RADIOLOGIST, site=site))
    return [item["job_id"] for item in answer.json()["items"]]


def test_a_clinic_refers_a_study_the_hub_reads_and_signs_it(client: TestClient, tmp_path: Path) -> None:
    clinic = bearer(client, Role.RADIOLOGIST, subject="dr-clinic", site="clinic-a")
    cr = write_radiograph(tmp_path / "cr.dcm", render(256, 9, 0, findings={"Effusion"})[0], patient_id="CLINIC-A-9")
    content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    stored = client.post("/dicomweb/studies", content=multipart_body([cr.read_bytes()]),
                         headers=clinic | {"Content-Type": content_type})  # fmt: skip
    status = wait_for_job(client, stored.headers["Location"], clinic)
    assert status["state"] == "done", status
    job_id, outcome = status["id"], status["result"]["outcomes"][0]
    assert _worklist(client, "clinic-a") == [job_id] and _worklist(client, "hub") == []
    hub = bearer(client, Role.RADIOLOGIST, subject="dr-hub", site="hub")
    assert client.get(f"/v1/preread/{job_id}", headers=hub).status_code == 404  # not referred yet

    other = bearer(client, Role.RADIOLOGIST, subject="dr-b", site="clinic-b")
    stolen = client.post("/v1/referrals", json={"job_id": job_id}, headers=other)
    assert stolen.status_code == 404  # another site cannot refer what is not theirs
    referred = client.post("/v1/referrals", json={"job_id": job_id, "question": "右侧胸腔积液？", "priority": "urgent"},
                           headers=clinic)  # fmt: skip
    assert referred.status_code == 201, referred.text
    assert referred.json() | {"id": "", "created_at": ""} == {
        "id": "", "job_id": job_id, "study_uids": [outcome["study_uid"]], "from_site": "clinic-a", "to_site": "hub",
        "question": "右侧胸腔积液？", "priority": "urgent", "status": "open", "referred_by": "dr-clinic",
        "created_at": "", "signed_at": None, "signed_by": ""}  # fmt: skip
    again = client.post("/v1/referrals", json={"job_id": job_id, "priority": "urgent"}, headers=clinic)
    assert again.json()["id"] == referred.json()["id"]

    assert _worklist(client, "hub") == [job_id] and _worklist(client, "clinic-b") == []
    studies = client.get("/dicomweb/studies", headers=hub).json()
    assert [s["0020000D"]["Value"][0] for s in studies] == [outcome["study_uid"]]
    assert client.get("/dicomweb/studies", headers=other).json() == []
    inbox = client.get("/v1/referrals", headers=hub).json()
    assert [(r["job_id"], r["status"]) for r in inbox] == [(job_id, "open")]

    base = f"/v1/preread/{job_id}/{outcome['uid']}"
    for finding in client.get(f"{base}/view", headers=hub).json()["findings"]:
        assert client.post(f"{base}/feedback", json={"label": finding["label"], "verdict": "accepted"},
                           headers=hub).status_code == 201  # fmt: skip
    signed = client.post(f"{base}/signatures", json={"impression": "右侧少量胸腔积液。"}, headers=hub)
    assert signed.status_code == 201 and signed.json()["site"] == "hub"
    report = client.get(f"{base}/signed-diagnostic-report.json", headers=clinic).json()  # back at the clinic
    reader = next(r for r in report["contained"] if r["resourceType"] == "Practitioner")
    assert reader["identifier"] == [{"system": "urn:cds:site:hub:user", "value": "dr-hub"}]
    assert client.get(f"{base}/signed-diagnostic-report.json", headers=other).status_code == 404

    outbox: list[dict[str, Any]] = client.get("/v1/referrals?direction=out", headers=clinic).json()
    assert [(r["status"], r["signed_by"]) for r in outbox] == [("signed", "dr-hub")]
    (times,) = client.get("/v1/referrals/turnaround", headers=hub).json()
    assert (times["from_site"], times["to_site"], times["priority"], times["signed"], times["open"]) == (
        "clinic-a", "hub", "urgent", 1, 0)
    assert 0 <= times["median_hours"] == times["p90_hours"] < 1
    assert client.get("/v1/referrals/turnaround", headers=other).json() == []


def test_a_referral_needs_somewhere_to_go(tmp_path: Path) -> None:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", site="clinic-a")  # no CDS_HUB_SITE
    with TestClient(create_app(settings)) as client:
        from cds.store import jobs

        with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
            job_id = jobs.enqueue(session, kind="risk_file", payload={"method": "pce", "input": "/x/c.csv",
                                  "output": "/x/c.parquet"}, actor="t", role="clinician", site="clinic-a")  # fmt: skip
        headers = bearer(client, Role.CLINICIAN)
        nowhere = client.post("/v1/referrals", json={"job_id": job_id}, headers=headers)
        assert nowhere.status_code == 422 and nowhere.json()["code"] == "no_hub"
        itself = client.post("/v1/referrals", json={"job_id": job_id, "to_site": "clinic-a"}, headers=headers)
        assert itself.json()["code"] == "same_site"
        scoped = client.post("/v1/referrals", json={"job_id": job_id, "to_site": "hub"},
                             headers=bearer(client, Role.CLINICIAN, patient="Patient/1"))  # fmt: skip
        assert scoped.status_code == 403 and scoped.json()["code"] == "patient_scope"


def test_the_hubs_worklist_puts_open_referrals_first_the_most_urgent_first(client: TestClient) -> None:
    from tests.support.seeded_reads import seed_reads

    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        routine = seed_reads(session, state.settings.data_dir, patient="A-1", study="2.1", site="clinic-a")
        stat = seed_reads(session, state.settings.data_dir, patient="A-2", study="2.2", site="clinic-a")
        own = seed_reads(session, state.settings.data_dir, patient="H-1", study="2.3", site="hub")
    clinic = bearer(client, Role.RADIOLOGIST, site="clinic-a")
    for ids, priority in ((routine, "routine"), (stat, "stat")):
        assert client.post("/v1/referrals", json={"job_id": ids["preread"], "priority": priority},
                           headers=clinic).status_code == 201  # fmt: skip
    assert _worklist(client, "hub") == [stat["preread"], routine["preread"], own["preread"]]
    assert _worklist(client, "clinic-a") == [stat["preread"], routine["preread"]]  # their own order: newest first
