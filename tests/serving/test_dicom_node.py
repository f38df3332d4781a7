"""The DICOM node with a real pynetdicom SCU over loopback: C-ECHO, C-STORE of a two-image study over two
associations read once after it settles, a re-sent study not read again, a damaged instance refused in its own
C-STORE response, an unknown calling AE refused, and a study received before a restart settled after it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import select

from cds.serving.api.app import create_app
from cds.serving.triton.launcher import free_port
from cds.settings import Settings
from cds.store.tables import AuditEventRow, JobRow
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

SETTLE_S = 0.6


@pytest.fixture
def node(tmp_path: Path) -> Iterator[tuple[TestClient, int]]:
    port = free_port()
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", job_workers=0, dicom_port=port,
                        dicom_calling_aes=["MODALITY1"], dicom_settle_s=SETTLE_S)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client, port


@pytest.fixture
def study(tmp_path: Path) -> list[Path]:
    """Two radiographs of one study (a PA and a repeat), as a DX modality writes them."""
    study_uid = "1.2.826.0.1.3680043.10.1.1"
    return [write_radiograph(tmp_path / f"{index}.dcm", render(128, 2, index)[0], modality="DX", study_uid=study_uid)
            for index in range(2)]


def send(port: int, files: list[Path], calling: str = "MODALITY1") -> list[int] | None:
    """C-STORE each file in its own association's worth; the statuses, or ``None`` when the association failed."""
    ae = AE(ae_title=calling)
    ae.add_requested_context(Verification)
    for path in files:
        ae.add_requested_context(dcmread(path, stop_before_pixels=True).SOPClassUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="CDS")
    if not assoc.is_established:
        return None
    try:
        statuses = [int(assoc.send_c_store(dcmread(path)).Status) for path in files]
    finally:
        assoc.release()
    return statuses


def jobs(client: TestClient) -> list[JobRow]:
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        found = list(session.scalars(select(JobRow).where(JobRow.kind == "preread")))
        session.expunge_all()
    return found


def wait_for_jobs(client: TestClient, count: int) -> list[JobRow]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = jobs(client)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{count} pre-read job(s) not queued in 20 s: {len(jobs(client))}")


def test_a_study_sent_over_two_associations_is_read_once_after_it_settles(node, study) -> None:  # noqa: ANN001
    client, port = node
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title="CDS")
    assert assoc.is_established and int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()
    assert send(port, study[:1]) == [0x0000]
    assert send(port, study[1:]) == [0x0000]  # the same study, a second association, before it settles
    (job,) = wait_for_jobs(client, 1)
    assert '"sop_instance_uid"' in job.payload and job.payload.count("sop_instance_uid") == 2
    worklist = client.get("/v1/worklist", headers=_radiologist(client)).json()
    assert [item["study_uid"] for item in worklist["items"]] == ["1.2.826.0.1.3680043.10.1.1"]

    assert send(port, study) == [0x0000, 0x0000]  # the PACS sends the study again
    time.sleep(SETTLE_S * 4)
    assert len(jobs(client)) == 1  # nothing new: not read again
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        received = [e.detail for e in session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == "imaging.receive").order_by(AuditEventRow.seq))]  # fmt: skip
        actors = {e.actor for e in session.scalars(select(AuditEventRow).where(
            AuditEventRow.action == "imaging.receive"))}  # fmt: skip
    assert [('"stored":2' in d, '"already_stored":2' in d) for d in received] == [(True, False), (False, True)]
    assert actors == {"dicom:MODALITY1"}


def test_bad_instances_and_unknown_callers_are_refused(node, study, tmp_path: Path) -> None:  # noqa: ANN001
    client, port = node
    assert send(port, study[:1], calling="INTRUDER") is None  # association rejected
    damaged = dcmread(study[0])
    damaged.PixelData = damaged.PixelData[: len(damaged.PixelData) // 2]  # cut short, as a failed transfer leaves it
    damaged.SOPInstanceUID = "1.2.826.0.1.3680043.10.1.99"
    damaged.save_as(tmp_path / "damaged.dcm")
    assert send(port, [tmp_path / "damaged.dcm"]) == [0xC000]
    time.sleep(SETTLE_S * 4)
    assert jobs(client) == []  # nothing was kept, nothing is read


def test_a_study_received_before_a_restart_is_settled_after_it(tmp_path: Path, study) -> None:  # noqa: ANN001
    port = free_port()
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", job_workers=0, dicom_port=port,
                        dicom_calling_aes=["*"], dicom_settle_s=3600)  # fmt: skip
    with TestClient(create_app(settings)):
        assert send(port, study, calling="ANY-AE") == [0x0000, 0x0000]
    assert len(list((tmp_path / "data" / "dicom-incoming").glob("*/*.dcm"))) == 2  # waiting on disk
    with TestClient(create_app(settings.model_copy(update={"dicom_settle_s": 0.2}))) as client:
        (job,) = wait_for_jobs(client, 1)
        assert job.payload.count("sop_instance_uid") == 2


def test_the_port_needs_its_callers_named() -> None:
    with pytest.raises(ValueError, match="CDS_DICOM_CALLING_AES"):
        Settings(dicom_port=11112)


def _radiologist(client: TestClient) -> dict[str, str]:
    token = client.post("/v1/dev/token", json={"roles": ["radiologist"]}).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_an_instance_arriving_while_its_study_is_stored_waits_for_the_next_round(
        tmp_path: Path, study: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    from cds.services import dicom_receiver
    from cds.serving.engine import build_engine

    engine = build_engine(Settings(data_dir=tmp_path / "data"))
    engine.database.migrate()
    receiver = dicom_receiver.StudyReceiver(engine, settle_s=1)
    assert receiver.receive(study[0].read_bytes(), "CT01").reason is None
    store = dicom_receiver.accept_instances

    def meanwhile(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        assert receiver.receive(study[1].read_bytes(), "CT01").reason is None  # the next image comes in now
        return store(*args, **kwargs)

    monkeypatch.setattr(dicom_receiver, "accept_instances", meanwhile)
    (first,) = receiver.settle(now=time.time() + 5)
    monkeypatch.undo()
    assert first.stored == 1 and first.job_id is not None
    assert len(list(receiver.incoming.glob("*/*.dcm"))) == 1  # kept, not swept away with the first
    (second,) = receiver.settle(now=time.time() + 5)
    assert second.stored == 1 and second.job_id not in (None, first.job_id)
    engine.close()


def test_a_member_sites_pacs_sends_for_its_site(tmp_path: Path, study: list[Path]) -> None:
    """A clinic's PACS C-STOREs into the hub's node: the study, its read and the audit belong to the clinic, whose
    readers see it and the hub's do not; a modality not mapped sends for the deployment's own site."""
    port = free_port()
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", job_workers=0, dicom_port=port, site="hub",
                        dicom_calling_aes=["CLINIC_A_PACS", "MODALITY1"], dicom_settle_s=SETTLE_S,
                        dicom_calling_sites={"CLINIC_A_PACS": "clinic-a"})  # fmt: skip
    with TestClient(create_app(settings)) as client:
        assert send(port, study, calling="CLINIC_A_PACS") == [0x0000, 0x0000]
        (job,) = wait_for_jobs(client, 1)
        assert job.site == "clinic-a"

        def studies(site: str) -> list[str]:
            token = client.post("/v1/dev/token", json={"roles": ["radiologist"], "site": site}).json()
            answer = client.get("/dicomweb/studies", headers={"Authorization": f"Bearer {token['access_token']}"})
            return [s["0020000D"]["Value"][0] for s in answer.json()]

        assert studies("clinic-a") == ["1.2.826.0.1.3680043.10.1.1"] and studies("hub") == []
        with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
            (received,) = session.scalars(select(AuditEventRow).where(AuditEventRow.action == "imaging.receive"))
            assert received.site == "clinic-a"
        other = write_radiograph(tmp_path / "other.dcm", render(128, 2, 9)[0], modality="DX", study_uid="1.2.826.0.1.3680043.10.1.2")
        assert send(port, [other]) == [0x0000]
        assert sorted(j.site for j in wait_for_jobs(client, 2)) == ["clinic-a", "hub"]


def test_calling_sites_are_checked_when_the_settings_load() -> None:
    with pytest.raises(ValueError, match="names AE titles CDS_DICOM_CALLING_AES refuses"):
        Settings(dicom_port=11112, dicom_calling_aes=["CT01"], dicom_calling_sites={"PACS_B": "clinic-b"})
    with pytest.raises(ValueError, match="by their codes"):
        Settings(dicom_port=11112, dicom_calling_aes=["*"], dicom_calling_sites={"PACS_B": "clinic b"})
