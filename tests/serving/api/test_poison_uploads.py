"""Hostile uploads through the service: each poison file fails its own job with its reason; the worker goes on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.pipelines import isolation
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from tests.support.poison import j2k_endless, rle_panic
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

STOW = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", preread_saliency_grid=0, decode_timeout_s=3,
                        decode_workers=1)  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        yield test_client
    isolation.configure(isolation.IsolationLimits())


def _read(client: TestClient, path: Path) -> dict[str, object]:
    headers = bearer(client, Role.RADIOLOGIST)
    stored = client.post("/dicomweb/studies", content=multipart_body([path.read_bytes()]), headers=headers | STOW)
    assert stored.status_code == 200, stored.text  # the header is fine: the file is stored and its read queued
    return wait_for_job(client, stored.headers["location"], headers, timeout_s=120)


def test_poison_files_fail_their_own_jobs_and_later_studies_are_read(client: TestClient, tmp_path: Path) -> None:
    for build, code in ((rle_panic, "decoder_crashed"), (j2k_endless, "decoder_timeout")):
        status = _read(client, build(tmp_path / f"{code}.dcm"))
        assert status["state"] == "failed" and str(status["error"]).startswith(code) and status["attempts"] == 1
    good = _read(client, write_radiograph(tmp_path / "good.dcm", render(448, 77, 0)[0]))
    assert good["state"] == "done"
    ready = client.get("/readyz").json()
    assert ready["workers"] == {"configured": 1, "running": 1, "abandoned": 0} and ready["ready"] is True
    worklist = client.get("/v1/worklist?state=refused", headers=bearer(client, Role.RADIOLOGIST)).json()
    assert sorted(r for item in worklist["items"] for r in item["refused_reasons"]) == ["decoder_crashed",
                                                                                         "decoder_timeout"]
