"""The round trip with a real PACS (Orthanc): Orthanc C-STOREs a radiograph study into cds, cds reads it once the
study settles, and the AI results come back into the source study in Orthanc by C-STORE, where Orthanc's own
DICOMweb API shows them; once a radiologist signs, the verified report follows into the same study. In a
consortium, the hub's signed report of a clinic's referred study goes back into the clinic's Orthanc, and a second
clinic's Orthanc (and the hub's own PACS) gets nothing of it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pydicom
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.serving.triton.launcher import free_port
from cds.settings import Settings
from cds.store.tables import OutboxRow
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from tests.support.orthanc import orthanc
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body


def test_orthanc_sends_a_study_and_gets_the_ai_results_back_in_it(tmp_path: Path) -> None:
    cds_port = free_port()
    with orthanc(tmp_path / "orthanc", modalities={"cds": ("CDS", "127.0.0.1", cds_port)}) as pacs:
        settings = Settings(dev_mode=True, data_dir=tmp_path / "cds", preread_saliency_grid=2, ct_model="",
                            outbox_interval_s=0.2, dicom_port=cds_port, dicom_calling_aes=[pacs.ae_title],
                            dicom_settle_s=0.5, dicom_destinations=[{
                                "name": "orthanc", "kind": "dimse", "host": "127.0.0.1", "port": pacs.dicom_port,
                                "ae_title": pacs.ae_title}])  # fmt: skip
        with TestClient(create_app(settings)) as client:
            study = write_radiograph(tmp_path / "chest.dcm", render(256, 6, 0, findings={"Effusion"})[0])
            study_uid = str(pydicom.dcmread(study, stop_before_pixels=True).StudyInstanceUID)
            uploaded = httpx.post(f"{pacs.url}/instances", content=study.read_bytes(), timeout=30)
            assert uploaded.status_code == 200, uploaded.text
            sent = httpx.post(f"{pacs.url}/modalities/cds/store", timeout=60,
                              json={"Resources": [uploaded.json()["ParentStudy"]], "Synchronous": True})  # fmt: skip
            assert sent.status_code == 200, sent.text  # Orthanc's C-STORE into cds succeeded
            modalities: set[str] = set()
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and "SR" not in modalities:
                time.sleep(0.5)
                series = httpx.get(f"{pacs.url}/dicom-web/studies/{study_uid}/series", timeout=10)
                modalities = {s["00080060"]["Value"][0] for s in series.json()} if series.status_code == 200 else set()
            assert {"CR", "SR"} <= modalities  # the AI's structured report sits in the source study, beside the image

            # a radiologist reviews every finding and signs: the verified report follows into the same study
            reader = bearer(client, Role.RADIOLOGIST, subject="dr-li")
            (item,) = client.get("/v1/worklist", headers=reader).json()["items"]
            base = f"/v1/preread/{item['job_id']}/{item['outcomes'][0]['uid']}"
            for finding in client.get(f"{base}/view", headers=reader).json()["findings"]:
                assert client.post(f"{base}/feedback", json={"label": finding["label"], "verdict": "accepted"},
                                   headers=reader).status_code == 201  # fmt: skip
            signed = client.post(f"{base}/signatures", json={"impression": "少量胸腔积液。"}, headers=reader)
            assert signed.status_code == 201, signed.text
            verified = _verified_srs(pacs.url, study_uid, deadline=time.monotonic() + 60)
    assert verified == [(signed.json()["sr_sop_instance_uid"], "COMPLETE", "dr-li")]


def test_a_clinics_referred_study_signed_at_the_hub_goes_back_to_the_clinics_orthanc_only(tmp_path: Path) -> None:
    with orthanc(tmp_path / "clinic-a", modalities={}) as clinic_a, orthanc(tmp_path / "clinic-b", modalities={}) as b:
        settings = Settings(dev_mode=True, data_dir=tmp_path / "hub", preread_saliency_grid=2, ct_model="",
                            outbox_interval_s=0.2, site="hub", hub_site="hub", dicom_destinations=[
                                {"name": "clinic-a", "kind": "dimse", "host": "127.0.0.1", "port": clinic_a.dicom_port,
                                 "ae_title": clinic_a.ae_title, "sites": ["clinic-a"]},
                                {"name": "clinic-b", "kind": "dicomweb", "url": f"{b.url}/dicom-web",
                                 "sites": ["clinic-b"]},
                                {"name": "hub", "kind": "dimse", "host": "127.0.0.1", "port": free_port(),
                                 "ae_title": "HUBPACS"}])  # the hub's own PACS (nobody listens: nothing may go)  # fmt: skip
        with TestClient(create_app(settings)) as client:
            study = write_radiograph(tmp_path / "chest.dcm", render(256, 8, 0, findings={"Effusion"})[0],
                                     patient_id="CLINIC-A-8")  # fmt: skip
            study_uid = str(pydicom.dcmread(study, stop_before_pixels=True).StudyInstanceUID)
            assert httpx.post(f"{clinic_a.url}/instances", content=study.read_bytes(), timeout=30).status_code == 200
            clinic = bearer(client, Role.RADIOLOGIST, subject="dr-clinic", site="clinic-a")
            stored = client.post("/dicomweb/studies", content=multipart_body([study.read_bytes()]), headers=clinic | {
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})  # fmt: skip
            status = wait_for_job(client, stored.headers["Location"], clinic)
            assert status["state"] == "done", status
            job_id, outcome = status["id"], status["result"]["outcomes"][0]
            assert client.post("/v1/referrals", json={"job_id": job_id, "priority": "urgent"},
                               headers=clinic).status_code == 201  # fmt: skip

            reader = bearer(client, Role.RADIOLOGIST, subject="dr-hub", site="hub")
            base = f"/v1/preread/{job_id}/{outcome['uid']}"
            for finding in client.get(f"{base}/view", headers=reader).json()["findings"]:
                assert client.post(f"{base}/feedback", json={"label": finding["label"], "verdict": "accepted"},
                                   headers=reader).status_code == 201  # fmt: skip
            signed = client.post(f"{base}/signatures", json={"impression": "右侧少量胸腔积液。"}, headers=reader)
            assert signed.status_code == 201, signed.text
            verified = _verified_srs(clinic_a.url, study_uid, deadline=time.monotonic() + 60)
            with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
                routes = set(session.scalars(select(OutboxRow.destination).where(OutboxRow.topic == "dicom")))
            held_by_b = httpx.get(f"{b.url}/instances", timeout=10).json()
    assert verified == [(signed.json()["sr_sop_instance_uid"], "COMPLETE", "dr-hub")]  # in the clinic's own study
    assert routes == {"dicom:clinic-a"}  # the AI's results and the signed report: nothing queued for B or the hub
    assert held_by_b == []


def _verified_srs(url: str, study_uid: str, *, deadline: float) -> list[tuple[str, str, str]]:
    """The VERIFIED SRs Orthanc holds in the study: SOP Instance UID, completion, verifying observer."""
    found: list[tuple[str, str, str]] = []
    while time.monotonic() < deadline and not found:
        time.sleep(0.5)
        studies = httpx.post(f"{url}/tools/find", json={"Level": "Instance", "Query": {
            "StudyInstanceUID": study_uid, "Modality": "SR"}, "Expand": False}, timeout=10).json()  # fmt: skip
        for instance in studies:
            tags = httpx.get(f"{url}/instances/{instance}/simplified-tags", timeout=10).json()
            if tags.get("VerificationFlag") == "VERIFIED":
                observer = tags["VerifyingObserverSequence"][0]["VerifyingObserverName"]
                found.append((tags["SOPInstanceUID"], tags["CompletionFlag"], observer))
    return found


def test_cds_fetches_a_study_from_orthanc_over_dicomweb(tmp_path: Path) -> None:
    from cds.errors import NotFoundError
    from cds.services.dicomweb_fetch import fetch_study
    from cds.serving.engine import build_engine
    from cds.store.audit import Actor

    with orthanc(tmp_path / "orthanc", modalities={}) as pacs:
        study = write_radiograph(tmp_path / "prior.dcm", render(256, 7, 0)[0], patient_id="PRIOR-1")
        assert httpx.post(f"{pacs.url}/instances", content=study.read_bytes(), timeout=30).status_code == 200
        study_uid = str(pydicom.dcmread(study, stop_before_pixels=True).StudyInstanceUID)
        engine = build_engine(Settings(data_dir=tmp_path / "cds"))
        engine.database.migrate()
        try:
            actor = Actor("dr-li", "radiologist")
            receipt = fetch_study(engine, f"{pacs.url}/dicom-web", study_uid, actor=actor)
            assert len(receipt.stored) == 1 and receipt.refused == [] and receipt.job_id is not None
            assert receipt.stored[0].sop_instance_uid == str(pydicom.dcmread(study).SOPInstanceUID)
            again = fetch_study(engine, f"{pacs.url}/dicom-web", study_uid, actor=actor)
            assert again.stored == [] and again.job_id is None  # held already: not read twice
            with pytest.raises(NotFoundError):
                fetch_study(engine, f"{pacs.url}/dicom-web", "1.2.3.4.5.6.7.8.9", actor=actor)
        finally:
            engine.close()
