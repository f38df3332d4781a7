"""Refused uploads are audited with their machine-readable reason and no identifier in clear.

STOW-RS parts refused (unreadable, over the per-part cap), slides and ECGs refused (too large by Content-Length or
while streaming, a file type not read, empty), a cohort file of the wrong media type.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.audit import verify_chain
from tests.serving.api.conftest import bearer
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

STOW = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}
LIMIT = 1_000_000  # the body cap of this test's service; one STOW-RS part may take 150 kB


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", job_workers=0, max_upload_bytes=LIMIT,
                        max_instance_bytes=150_000)  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _refusals(client: TestClient) -> list[dict[str, Any]]:
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    return [e for e in events if e["type"]["code"] == "upload.refused"]


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(event["outcomeDesc"]))


def test_refused_stow_parts_are_audited_by_reason(client: TestClient, tmp_path: Path) -> None:
    good = write_radiograph(tmp_path / "good.dcm", render(256, 3, 0)[0], patient_id="SYNTH-REFUSED").read_bytes()
    big = write_radiograph(tmp_path / "big.dcm", render(448, 4, 0)[0], patient_id="SYNTH-REFUSED").read_bytes()
    assert len(big) > 150_000 > len(good)
    body = multipart_body([good, b"this is not DICOM at all", big])
    answer = client.post("/dicomweb/studies", content=body, headers=bearer(client, Role.RADIOLOGIST,
                                                                           subject="dr-upload") | STOW)
    assert answer.status_code == 202, answer.text  # one stored, two refused
    refused = [item["00081197"]["Value"][0] for item in answer.json()["00081198"]["Value"]]  # FailureReason
    assert len(refused) == 2
    events = _refusals(client)
    reasons = sorted(_detail(e)["reason"] for e in events)
    assert len(reasons) == 2 and "instance_too_large" in reasons  # and the unreadable part's own reason
    for event in events:
        detail = _detail(event)
        assert detail["upload"] == "dicom" and detail["stored"] == 1 and detail["reason"]
        assert event["outcome"] == "4" and event["agent"][0]["who"]["display"] == "dr-upload"
        assert event["entity"][0]["what"]["display"] == "POST /dicomweb/studies"
    assert "SYNTH-REFUSED" not in json.dumps(events)  # no patient identifier


@pytest.mark.parametrize(("path", "role", "kind"), [
    ("/v1/pathology/jobs?filename=slide.tiff", Role.PATHOLOGIST, "slide"),
    ("/v1/ecg/jobs?filename=ecg.csv", Role.CARDIOLOGIST, "ecg"),
])  # fmt: skip
def test_refused_slide_and_ecg_uploads_are_audited(client: TestClient, path: str, role: Role, kind: str) -> None:
    headers = bearer(client, role, subject=f"dr-{kind}") | {"Content-Type": "application/octet-stream"}
    too_large = client.post(path, content=b"x" * (LIMIT + 1), headers=headers)  # by Content-Length
    assert too_large.status_code == 413 and too_large.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        yield from (b"y" * 65536 for _ in range(LIMIT // 65536 + 2))

    streamed = client.post(path, content=chunks(), headers=headers)  # chunked: found while streaming
    assert streamed.status_code == 413
    empty = client.post(path, content=b"", headers=headers)
    assert empty.status_code == 422 and empty.json()["code"] == "empty_input"
    wrong_type = client.post(path.replace(path.rsplit(".", 1)[1], "exe"), content=b"MZ", headers=headers)
    assert wrong_type.status_code == 422 and wrong_type.json()["code"] == "invalid_request"
    events = _refusals(client)
    assert [_detail(e)["reason"] for e in events] == ["payload_too_large", "payload_too_large", "empty_input",
                                                      "invalid_request"]
    assert {_detail(e)["upload"] for e in events} == {kind}
    assert {e["agent"][0]["who"]["display"] for e in events} == {f"dr-{kind}"}
    assert _detail(events[-1])["fields"] == ["query.filename"]
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok


def test_a_cohort_file_of_the_wrong_type_is_audited(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN, subject="dr-cohort") | {"Content-Type": "application/json"}
    answer = client.post("/v1/risk/framingham/jobs", content=b"{}", headers=headers)
    assert answer.status_code == 415, answer.text
    (event,) = _refusals(client)
    assert _detail(event) == {"upload": "cohort", "reason": answer.json()["code"]}
    assert event["entity"][0]["what"]["display"] == "POST /v1/risk/{score}/jobs"


def test_an_anonymous_oversized_upload_is_audited_as_anonymous(client: TestClient) -> None:
    answer = client.post("/v1/ecg/jobs?filename=a.csv", content=b"z" * (LIMIT + 1))
    assert answer.status_code == 413  # refused before authentication
    (event,) = _refusals(client)
    assert event["agent"][0]["who"]["display"] == "anonymous" and _detail(event)["reason"] == "payload_too_large"
