"""Pathology over the API: slide upload → durable job → slide answer, FHIR report, heatmap; no tissue; bad input;
roles and patient scope; audit."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.audit import verify_chain
from cds.store.tables import AuditEventRow
from tests.pipelines.pathology.slides import tumour_layout
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.he_slide import write_slide


@pytest.fixture
def client(tmp_path: Path):  # noqa: ANN201
    with TestClient(create_app(Settings(dev_mode=True, data_dir=tmp_path / "data"))) as test_client:
        yield test_client


def _submit(client: TestClient, path: Path, headers: dict[str, str], **params: str):  # noqa: ANN202
    return client.post("/v1/pathology/jobs", params={"filename": path.name, **params}, content=path.read_bytes(),
                       headers=headers | {"Content-Type": "application/octet-stream"})  # fmt: skip





def test_slide_upload_gives_a_scored_read_out_with_report_and_heatmap(client: TestClient, tmp_path: Path) -> None:
    slide = write_slide(tmp_path / "slide.tif", 3072, 2048, seed=8, mpp=0.5, tile=256, factor=2,
                        layout=tumour_layout(3072, 2048))  # fmt: skip
    headers = bearer(client, Role.PATHOLOGIST)
    queued = _submit(client, slide.path, headers, subject="Patient/7")
    assert queued.status_code == 202, queued.text
    status = wait_for_job(client, queued.headers["Location"], headers)
    assert status["state"] == "done", status
    result = status["result"]
    assert result["status"] == "scored" and result["model"].startswith("pathology-demo:")
    assert result["finding"]["positive"] is True  # the generated slide holds a tumour
    assert set(result["outputs"]) == {"result.json", "diagnostic-report.json", "heatmap.png"}
    report = client.get(f"{queued.headers['Location']}/diagnostic-report.json", headers=headers)
    DiagnosticReport.model_validate(report.json())
    heatmap = client.get(f"{queued.headers['Location']}/heatmap.png", headers=headers)
    assert heatmap.status_code == 200 and heatmap.content[:8] == b"\x89PNG\r\n\x1a\n"
    other = client.get(queued.headers["Location"], headers=bearer(client, Role.PATHOLOGIST, patient="Patient/8"))
    assert other.status_code == 403 and other.json()["code"] == "patient_scope"
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
        reads = session.query(AuditEventRow).filter(AuditEventRow.action == "pathology.read").all()
    assert len(reads) == 1 and reads[0].input_sha256 == result["input_sha256"] and reads[0].subject == "Patient/7"


def test_blank_slide_is_a_no_tissue_result_and_bad_files_fail_with_their_reason(client: TestClient,
                                                                                 tmp_path: Path) -> None:  # fmt: skip
    headers = bearer(client, Role.PATHOLOGIST)
    blank = write_slide(tmp_path / "blank.tif", 1024, 768, seed=6, mpp=0.5, tile=128, factor=2, blank=True)
    location = _submit(client, blank.path, headers).headers["Location"]
    status = wait_for_job(client, location, headers)
    assert status["state"] == "done" and status["result"]["status"] == "no_tissue"
    scoped = client.get(location, headers=bearer(client, Role.PATHOLOGIST, patient="Patient/8"))
    assert scoped.status_code == 403  # a slide with no patient is no patient-scoped token's slide
    assert status["result"]["finding"] is None and "heatmap.png" not in status["result"]["outputs"]

    truncated = tmp_path / "cut.tif"
    truncated.write_bytes(blank.path.read_bytes()[: blank.path.stat().st_size // 2])
    failed = wait_for_job(client, _submit(client, truncated, headers).headers["Location"], headers)
    assert failed["state"] == "failed" and failed["attempts"] == 1 and "truncated" in failed["error"]

    wrong_type = client.post("/v1/pathology/jobs", params={"filename": "notes.txt"}, content=b"x", headers=headers)
    assert wrong_type.status_code == 422 and "filename" in str(wrong_type.json()["errors"])  # the schema names the types
    empty = client.post("/v1/pathology/jobs", params={"filename": "a.tif"}, content=b"", headers=headers)
    assert empty.status_code == 422 and empty.json()["code"] == "empty_input"
    radiologist = bearer(client, Role.RADIOLOGIST)
    assert _submit(client, blank.path, radiologist).status_code == 403
