"""Pre-read results pushed to a PACS: a real pynetdicom storage SCP on loopback plays the PACS. A destination that
is down gets every result once it is back, each once; every attempt is audited; a pre-read of a stored study sends
its SR and captures into the source study."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient
from pynetdicom import AE, StoragePresentationContexts, evt
from sqlalchemy import select

from cds.services.delivery import deliver_due
from cds.services.dicom_sender import queue_results
from cds.serving.api.app import create_app
from cds.serving.engine import build_engine
from cds.serving.triton.launcher import free_port
from cds.settings import Settings
from cds.store.tables import AuditEventRow
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body


class Pacs:
    """A storage SCP that keeps what it receives (SOP Class, SOP Instance and Study UIDs)."""

    def __init__(self, port: int) -> None:
        self.port, self.received, self._server = port, [], None
        self._lock = threading.Lock()

    def _store(self, event: Any) -> int:
        dataset = event.dataset
        with self._lock:
            self.received.append((str(dataset.SOPClassUID), str(dataset.SOPInstanceUID), str(dataset.StudyInstanceUID)))
        return 0x0000

    def start(self) -> Pacs:
        ae = AE(ae_title="PACS")
        ae.supported_contexts = StoragePresentationContexts
        self._server = ae.start_server(("127.0.0.1", self.port), block=False,
                                       evt_handlers=[(evt.EVT_C_STORE, self._store)])  # fmt: skip
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()


def destination(port: int) -> dict[str, Any]:
    return {"name": "pacs", "kind": "dimse", "host": "127.0.0.1", "port": port, "ae_title": "PACS"}


@pytest.fixture
def pacs_port() -> int:
    return free_port()


def test_a_pacs_that_is_down_gets_each_result_once_it_is_back(tmp_path: Path, pacs_port: int) -> None:
    engine = build_engine(Settings(data_dir=tmp_path / "data", dicom_destinations=[destination(pacs_port)]))
    engine.database.migrate()
    files = [write_radiograph(tmp_path / f"r{i}.dcm", render(64, 4, i)[0]) for i in range(2)]
    start = dt.datetime.now(dt.UTC)
    with engine.database.session() as session:
        assert queue_results(session, engine.settings, files, study_uid="1.2.3", now=start) == 2
    assert deliver_due(engine, now=start) == (0, 2)  # nobody listening
    pacs = Pacs(pacs_port).start()
    try:
        assert deliver_due(engine, now=start + dt.timedelta(seconds=0.5)) == (0, 0)  # backing off: not yet
        assert deliver_due(engine, now=start + dt.timedelta(minutes=1)) == (2, 0)
        assert deliver_due(engine, now=start + dt.timedelta(minutes=10)) == (0, 0)  # nothing sent twice
    finally:
        pacs.stop()
    assert sorted(sop for _, sop, _ in pacs.received) == sorted(
        pydicom.dcmread(f).SOPInstanceUID for f in files)
    with engine.database.session() as session:
        outcomes = [e.outcome for e in session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == "imaging.send").order_by(AuditEventRow.seq))]  # fmt: skip
    assert outcomes == ["error", "error", "success", "success"]
    engine.close()


@pytest.fixture
def service(tmp_path: Path, pacs_port: int) -> Iterator[TestClient]:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "svc", preread_saliency_grid=2, ct_model="",
                        outbox_interval_s=0.2, dicom_destinations=[destination(pacs_port)])  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_pre_read_sends_its_dicom_results_into_the_source_study(service: TestClient, pacs_port: int,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    pacs = Pacs(pacs_port).start()
    try:
        study = write_radiograph(tmp_path / "chest.dcm", render(256, 5, 0, findings={"Effusion"})[0])
        token = service.post("/v1/dev/token", json={"roles": ["radiologist"]}).json()["access_token"]
        stored = service.post("/dicomweb/studies", content=multipart_body([study.read_bytes()]), headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})  # fmt: skip
        assert stored.status_code == 200, stored.text
        job = stored.headers["Location"]
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and service.get(job, headers={"Authorization": f"Bearer {token}"}
                                                          ).json()["state"] not in ("done", "failed"):  # fmt: skip
            time.sleep(0.3)
        results = service.get(f"/dicomweb/studies?StudyInstanceUID={_study_uid(study)}",
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        assert results.status_code == 200
        sent = []
        while time.monotonic() < deadline and len(sent) < 2:
            time.sleep(0.3)
            sent = list(pacs.received)
    finally:
        pacs.stop()
    assert len(sent) >= 2 and {s for _, _, s in sent} == {_study_uid(study)}  # into the source study
    sr = "1.2.840.10008.5.1.4.1.1.88"  # the structured report classes
    assert any(cls.startswith(sr) for cls, _, _ in sent)
    assert len({sop for _, sop, _ in sent}) == len(sent)  # each once


def _study_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
