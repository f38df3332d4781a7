"""DICOMweb STOW-RS → durable pre-read job → findings, structures, FHIR, SR, SEG; refusals; roles; audit."""

from __future__ import annotations

from pathlib import Path

import highdicom as hd
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.audit import verify_chain
from cds.store.tables import AuditEventRow
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.ct_volumes import generate_case
from training.data.dicom_files import write_radiograph
from training.data.non_chest import render_non_chest
from training.data.stow_sample import BOUNDARY, multipart_body


def _multipart(parts: list[bytes], part_type: str = "application/dicom") -> tuple[bytes, dict[str, str]]:
    body = multipart_body(parts, part_type=part_type)
    return body, {"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}





@pytest.fixture
def settings(tmp_path: Path) -> Settings:  # SQLite; heatmaps off to keep the test short
    return Settings(dev_mode=True, data_dir=tmp_path / "data", preread_saliency_grid=0)


@pytest.fixture
def study(tmp_path: Path) -> list[bytes]:
    radiograph = write_radiograph(tmp_path / "cr.dcm", render(448, 31, 0)[0])
    ct = generate_case(31, 0).write_dicom(tmp_path / "ct")
    return [radiograph.read_bytes()] + [f.read_bytes() for f in ct] + [b"not dicom at all"]


def test_stow_queues_a_preread_whose_outputs_are_served_and_audited(client: TestClient, study: list[bytes]) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    body, content_type = _multipart(study)
    stored = client.post("/dicomweb/studies", content=body, headers=headers | content_type)
    assert stored.status_code == 202, stored.text
    document = stored.json()
    assert len(document["00081199"]["Value"]) == len(study) - 1  # every DICOM part stored
    (failure,) = document["00081198"]["Value"]
    assert failure["00081197"]["Value"] == [0xC000] and failure["00000902"]["Value"] == ["not_dicom"]
    status = wait_for_job(client, stored.headers["Location"], headers)
    assert status["state"] == "done", status
    outcomes = {o["kind"]: o for o in status["result"]["outcomes"]}
    assert set(outcomes) == {"radiograph", "ct"} and status["result"]["refusals"] == []
    assert len(outcomes["radiograph"]["summary"]) == 18 and outcomes["ct"]["model"] == "ct-organs-demo:1.0.0"
    assert "folder" not in outcomes["ct"]  # no server paths leave the service
    base = stored.headers["Location"]
    for outcome in outcomes.values():
        report = client.get(f"{base}/{outcome['uid']}/diagnostic-report.json", headers=headers)
        assert report.status_code == 200
        DiagnosticReport.model_validate(report.json())
        sr = client.get(f"{base}/{outcome['uid']}/report-sr.dcm", headers=headers)
        assert sr.status_code == 200 and sr.headers["content-type"] == "application/dicom"
    seg = client.get(f"{base}/{outcomes['ct']['uid']}/segmentation-seg.dcm", headers=headers)
    path = Path(client.app.state.cds.settings.data_dir) / "seg.dcm"  # type: ignore[attr-defined]
    path.write_bytes(seg.content)
    assert [s.SegmentLabel for s in hd.seg.segread(path).SegmentSequence][0] == "liver"
    missing = client.get(f"{base}/{outcomes['ct']['uid']}/../../cds.db", headers=headers)
    assert missing.status_code == 404
    assert client.get(f"{base}/{outcomes['ct']['uid']}/nope.dcm", headers=headers).json()["code"] == "file_not_found"
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
        actions = [(r.action, r.outcome, r.model) for r in session.query(AuditEventRow).all()]
    assert ("imaging.preread", "success", "ct-organs-demo:1.0.0") in actions
    assert ("imaging.preread", "success", "chest-xray-demo:2.0.0") in actions
    assert sum(a == "imaging.result.read" for a, _, _ in actions) >= 5


def test_stow_refusals_and_roles(client: TestClient, tmp_path: Path) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    junk, content_type = _multipart([b"junk", b""])
    refused = client.post("/dicomweb/studies", content=junk, headers=headers | content_type)
    assert refused.status_code == 409 and len(refused.json()["00081198"]["Value"]) == 2
    wrong = client.post("/dicomweb/studies", content=b"{}", headers=headers | {"Content-Type": "application/json"})
    assert wrong.status_code == 415 and wrong.json()["code"] == "unsupported_media_type"
    body, content_type = _multipart([b"x"], part_type="image/png")
    assert client.post("/dicomweb/studies", content=body, headers=headers | content_type).json()["code"] == \
        "unsupported_media_type"
    client.app.state.cds.settings.max_instance_bytes = 4096  # type: ignore[attr-defined]
    big, content_type = _multipart([b"x" * 5000])
    too_large = client.post("/dicomweb/studies", content=big, headers=headers | content_type)
    (failure,) = too_large.json()["00081198"]["Value"]
    assert too_large.status_code == 409 and failure["00000902"]["Value"] == ["instance_too_large"]
    assert failure["00081197"]["Value"] == [0xA700]
    client.app.state.cds.settings.max_instance_bytes = 64 * 1024 * 1024  # type: ignore[attr-defined]
    clinician = bearer(client, Role.CLINICIAN)
    assert client.post("/dicomweb/studies", content=junk, headers=clinician | content_type).status_code == 403
    # a non-chest image tagged as a chest radiograph: the job fails for good with the gate's reason
    ct_as_cr = write_radiograph(tmp_path / "x.dcm", render_non_chest("ct_abdomen", 448, 9, 0))
    body, content_type = _multipart([ct_as_cr.read_bytes()])
    stored = client.post("/dicomweb/studies", content=body, headers=headers | content_type)
    status = wait_for_job(client, stored.headers["Location"], headers)
    assert status["state"] == "failed" and "implausible" in status["error"] and status["attempts"] == 1
