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

import hl7
import pydicom
import pytest
from fastapi.testclient import TestClient
from pynetdicom import AE, AllStoragePresentationContexts, evt
from sqlalchemy import func, select

from cds.services.delivery import deliver_due
from cds.services.dicom_sender import queue_results
from cds.serving.api.app import create_app
from cds.serving.engine import build_engine
from cds.serving.triton.launcher import free_port
from cds.settings import Settings
from cds.store import outbox
from cds.store.tables import AuditEventRow, OutboxRow
from tests.support.mllp import MllpListener
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

    def start(self, only: str | None = None) -> Pacs:
        """Listen; ``only``: accept this one SOP class, as a PACS that takes no other."""
        ae = AE(ae_title="PACS")
        if only:
            ae.add_supported_context(only)
        else:
            ae.supported_contexts = AllStoragePresentationContexts
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
        assert queue_results(session, engine.settings, files, study_uid="1.2.3", site="", now=start) == ["pacs"]
    assert deliver_due(engine, now=start) == (0, 1)  # nobody listening: the second waits, not tried in vain
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
    assert outcomes == ["error", "success", "success"]
    engine.close()


def test_a_result_the_pacs_does_not_take_does_not_hold_back_the_others(tmp_path: Path, pacs_port: int) -> None:
    engine = build_engine(Settings(data_dir=tmp_path / "data", dicom_destinations=[destination(pacs_port)]))
    engine.database.migrate()
    refused = write_radiograph(tmp_path / "dx.dcm", render(64, 4, 0)[0], modality="DX")  # a class it lacks
    taken = write_radiograph(tmp_path / "cr.dcm", render(64, 4, 1)[0], modality="CR")
    start = dt.datetime.now(dt.UTC)
    with engine.database.session() as session:
        queue_results(session, engine.settings, [refused, taken], study_uid="1.2.3", site="", now=start)
    pacs = Pacs(pacs_port).start(only="1.2.840.10008.5.1.4.1.1.1")  # Computed Radiography Image Storage only
    try:
        assert deliver_due(engine, now=start) == (1, 1)  # the CR went, though the DX before it was refused
    finally:
        pacs.stop()
    assert [sop for _, sop, _ in pacs.received] == [pydicom.dcmread(taken).SOPInstanceUID]
    with engine.database.session() as session:
        (waiting,) = outbox.pending(session)
    assert waiting.last_error == "no_accepted_context"  # kept, and said why, for someone to act on
    engine.close()


@pytest.fixture
def his() -> Iterator[MllpListener]:
    listener = MllpListener(free_port()).start()
    yield listener
    listener.stop()


@pytest.fixture
def service(tmp_path: Path, pacs_port: int, his: MllpListener) -> Iterator[TestClient]:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "svc", preread_saliency_grid=2, ct_model="",
                        outbox_interval_s=0.2, dicom_destinations=[destination(pacs_port)],
                        hl7_destinations=[{"name": "his", "host": "127.0.0.1", "port": his.port}])  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def test_a_pre_read_sends_its_dicom_results_into_the_source_study_and_an_oru_to_the_his(
        service: TestClient, pacs_port: int, his: MllpListener, tmp_path: Path) -> None:  # fmt: skip
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
        database = service.app.state.cds.database  # type: ignore[attr-defined]
        while time.monotonic() < deadline:  # until every queued result is delivered
            time.sleep(0.3)
            with database.session() as session:
                queued = session.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.topic == "dicom"))
                waiting = len(outbox.pending(session))
            if queued and not waiting:
                break
        sent = list(pacs.received)
        (item,) = service.get("/v1/worklist", headers={"Authorization": f"Bearer {token}"}).json()["items"]
    finally:
        pacs.stop()
    assert len(sent) == queued and {s for _, _, s in sent} == {_study_uid(study)}  # all, into the source study
    sr = "1.2.840.10008.5.1.4.1.1.88"  # the structured report classes
    assert any(cls.startswith(sr) for cls, _, _ in sent)
    assert len({sop for _, sop, _ in sent}) == len(sent)  # each once
    assert item["delivery"] == {"delivered": len(sent) + 1, "waiting": 0, "last_error": ""}  # + the ORU
    (oru,) = [hl7.parse(m) for m in his.messages]  # one radiograph, one message
    assert str(oru.segment("PID")[3][0][0]) == "SYNTH-0"  # the study's patient
    findings = {str(o[3][0][0]): str(o[8]) for o in oru.segments("OBX")}
    assert findings["Effusion"] in ("A", "N") and len(findings) >= 5 and set(findings.values()) <= {"A", "N"}


def _study_uid(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)
