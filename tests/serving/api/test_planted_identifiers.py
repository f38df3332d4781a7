"""Identifiers planted in DICOM headers, FHIR resources and query strings never reach stdout, stderr, the logs, the
metrics or the audit trail's details, whatever the libraries warn about on the way."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pydicom
import pytest
from fastapi.testclient import TestClient
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

PLANTED = "ZZPLANTED"


def _planted_study(tmp_path: Path) -> bytes:
    ds = pydicom.dcmread(write_radiograph(tmp_path / "cr.dcm", render(448, 5, 0)[0]))
    ds.PatientName, ds.PatientID = f"{PLANTED}^PATIENT", f"{PLANTED}-ID"
    ds.StudyDescription, ds.ReferringPhysicianName = f"{PLANTED} study", f"{PLANTED}^DOCTOR"
    value = f"{PLANTED}7 ".encode()  # not an IS: pydicom warns with the value when it reads it
    ds[0x00200011] = RawDataElement(Tag(0x00200011), "IS", len(value), value, 0, False, True)
    buffer = io.BytesIO()
    ds.save_as(buffer)
    return buffer.getvalue()


def test_planted_identifiers_stay_out_of_output_logs_metrics_and_audit_details(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.DEBUG)
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", preread_saliency_grid=0, decode_workers=1)
    with TestClient(create_app(settings)) as client:
        headers = bearer(client, Role.RADIOLOGIST, Role.CLINICIAN, Role.ADMIN)
        body = multipart_body([_planted_study(tmp_path), f"{PLANTED} not dicom".encode()])
        stored = client.post("/dicomweb/studies", content=body, headers=headers | {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})  # fmt: skip
        assert stored.status_code == 202
        assert wait_for_job(client, stored.headers["location"], headers)["state"] == "done"
        assert client.get(f"/dicomweb/studies?PatientID={PLANTED}*&{PLANTED}KEY=1", headers=headers).status_code == 200
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "Patient", "id": f"{PLANTED}-FHIR", "name": [{"family": PLANTED}], "gender": "female",
            "birthDate": "1970-01-01"}}]}  # fmt: skip
        assert client.post("/v1/risk/panel", json=bundle, headers=headers).status_code == 200
        assert client.get(f"/v1/results/{PLANTED}", headers=headers).status_code == 404
        metrics = client.get("/metrics").text
        with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
            from sqlalchemy import select

            from cds.store.tables import AuditEventRow

            details = " ".join(session.scalars(select(AuditEventRow.detail)))
    captured = capfd.readouterr()
    logs = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))  # the test's client
    for where, text in (("stdout", captured.out), ("stderr", captured.err), ("logs", logs),
                        ("metrics", metrics), ("audit details", details)):
        assert PLANTED not in text, f"{where} holds a planted identifier"
    assert "message withheld" in logs  # the library did warn, and what it said was withheld
