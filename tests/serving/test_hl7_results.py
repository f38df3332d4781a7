"""Pre-reads to the HIS as HL7 v2.5.1 ORU^R01 over MLLP: the message's content and validity, and delivery through
the outbox to a listener that is down, comes back, or refuses."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import hl7
import pytest

from cds.interop.hl7_oru import oru_r01
from cds.results.classification import Finding
from cds.results.jobs import PrereadOutcome
from cds.results.segmentation import StructureVolume
from cds.services.delivery import deliver_due
from cds.services.hl7_sender import TOPIC
from cds.serving.engine import build_engine
from cds.serving.triton.launcher import free_port
from cds.settings import Settings
from cds.store import outbox
from tests.support.mllp import MllpListener

SENT = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)


def radiograph(**changes: object) -> PrereadOutcome:
    fields = {"kind": "radiograph", "study_uid": "1.2.826.0.1.5", "series_uid": "1.2.826.0.1.5.1",
              "uid": "1.2.826.0.1.5.1.1", "model": "chest-xray-demo:1.0.0", "input_sha256": "0" * 64,
              "summary": (Finding(label="Effusion", probability=0.87, threshold=0.5, positive=True),
                          Finding(label="Mass", probability=0.12, threshold=0.4, positive=False))}  # fmt: skip
    return PrereadOutcome.model_validate(fields | changes)


def test_the_oru_carries_patient_study_findings_and_preliminary_status() -> None:
    text, control_id = oru_r01(radiograph(), patient_id="MRN|0042", assigning_authority="urn:oid:1.2.156.1",
                               patient_name="王^小明=ワン^シャオミン", accession="A2026-77", job_id="3f2a-91",
                               site="tertiary-hub", sent=SENT)  # fmt: skip
    message = hl7.parse(text)
    assert str(message.segment("MSH")[9]) == "ORU^R01^ORU_R01" and str(message.segment("MSH")[10]) == control_id
    assert str(message.segment("MSH")[18]) == "UNICODE UTF-8" and str(message.segment("MSH")[4]) == "tertiary-hub"
    pid = message.segment("PID")
    assert str(pid[3]) == "MRN 0042^^^&urn:oid:1.2.156.1&URI^MR"  # the delimiter in the ID cannot break the field
    assert str(pid[5]) == "王^小明"  # the alphabetic group of the DICOM name, Chinese characters kept
    assert str(message.segment("OBR")[2]) == "A2026-77" and str(message.segment("OBR")[25]) == "P"
    rows = [(str(o[3][0][0]), str(o[5]), str(o[7]), str(o[8]), str(o[11]), str(o[17][0][0])) for o in
            message.segments("OBX")]  # fmt: skip
    assert rows == [("Effusion", "0.8700", "<0.5000", "A", "P", "chest-xray-demo:1.0.0"),
                    ("Mass", "0.1200", "<0.4000", "N", "P", "chest-xray-demo:1.0.0")]
    assert "preliminary" in str(message.segment("NTE")[3])
    ct = radiograph(kind="ct", summary=(StructureVolume(label="liver", voxels=1000, volume_ml=1523.25),))
    (obx,) = hl7.parse(oru_r01(ct, patient_id="P", assigning_authority="x", patient_name="", accession="",
                               job_id="j", site="s", sent=SENT)[0]).segments("OBX")  # fmt: skip
    assert (str(obx[5]), str(obx[6]), str(obx[8])) == ("1523.2", "mL", "")


@pytest.fixture
def engine_and_port(tmp_path: Path):  # noqa: ANN201
    port = free_port()
    engine = build_engine(Settings(data_dir=tmp_path / "data", hl7_destinations=[
        {"name": "his", "host": "127.0.0.1", "port": port}]))  # fmt: skip
    engine.database.migrate()
    yield engine, port
    engine.close()


def _queue(engine, text: str, control_id: str, now: dt.datetime) -> None:  # noqa: ANN001
    with engine.database.session() as session:
        outbox.enqueue(session, destinations=[f"{TOPIC}:his"], topic=TOPIC, now=now,
                       payload={"message": text, "control_id": control_id, "study_uid": "1.2.826.0.1.5"})  # fmt: skip


def test_a_his_that_is_down_gets_the_message_once_it_is_back(engine_and_port) -> None:  # noqa: ANN001
    engine, port = engine_and_port
    text, control_id = oru_r01(radiograph(), patient_id="P1", assigning_authority="x", patient_name="",
                               accession="", job_id="j", site="s", sent=SENT)  # fmt: skip
    start = dt.datetime.now(dt.UTC)
    _queue(engine, text, control_id, start)
    assert deliver_due(engine, now=start) == (0, 1)
    his = MllpListener(port).start()
    try:
        assert deliver_due(engine, now=start + dt.timedelta(minutes=1)) == (1, 0)
        assert deliver_due(engine, now=start + dt.timedelta(minutes=10)) == (0, 0)
    finally:
        his.stop()
    assert [hl7.parse(m).segment("MSH")[10][0] for m in his.messages] == [control_id]  # once, as built


def test_a_refusing_his_leaves_the_message_with_its_reason(engine_and_port) -> None:  # noqa: ANN001
    engine, port = engine_and_port
    text, control_id = oru_r01(radiograph(), patient_id="P1", assigning_authority="x", patient_name="",
                               accession="", job_id="j", site="s", sent=SENT)  # fmt: skip
    start = dt.datetime.now(dt.UTC)
    _queue(engine, text, control_id, start)
    his = MllpListener(port, ack_code="AE").start()
    try:
        assert deliver_due(engine, now=start) == (0, 1)
    finally:
        his.stop()
    with engine.database.session() as session:
        (waiting,) = outbox.pending(session)
    assert waiting.last_error == "ack_ae" and len(his.messages) == 1


def test_each_sites_pre_reads_go_only_to_the_his_interfaces_serving_it(tmp_path: Path) -> None:
    from sqlalchemy import select

    from cds.services.hl7_sender import queue_oru
    from cds.store.tables import OutboxRow

    engine = build_engine(Settings(data_dir=tmp_path / "data", site="hub", hl7_destinations=[
        {"name": "hub-his", "host": "127.0.0.1", "port": 2575},
        {"name": "clinic-a-his", "host": "127.0.0.1", "port": 2576, "sites": ["clinic-a"]}]))  # fmt: skip
    engine.database.migrate()
    try:
        with engine.database.session() as session:
            counts = {site: queue_oru(session, engine.settings, radiograph(study_uid=f"1.2.826.0.1.{n}"),
                                      job_id=f"job-{n}", site=site, now=SENT)
                      for n, site in enumerate(("clinic-a", "hub", "", "clinic-b"))}  # fmt: skip
        with engine.database.session() as session:
            queued = {(row.about, row.destination) for row in session.scalars(select(OutboxRow))}
        assert counts == {"clinic-a": 1, "hub": 1, "": 1, "clinic-b": 0}
        assert queued == {("ImagingStudy/1.2.826.0.1.0", f"{TOPIC}:clinic-a-his"),
                          ("ImagingStudy/1.2.826.0.1.1", f"{TOPIC}:hub-his"),
                          ("ImagingStudy/1.2.826.0.1.2", f"{TOPIC}:hub-his")}  # clinic-b's HIS: none configured
    finally:
        engine.close()
