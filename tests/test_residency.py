"""Data residency (``CDS_ALLOWED_DESTINATIONS``): the matching rules, settings refused at load, and deliveries to a
destination outside the list refused before a byte is sent, never retried, and audited; allowed ones deliver."""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from cds.residency import AllowedDestinations, DestinationNotAllowedError, check
from cds.services import dicom_sender, hl7_sender
from cds.services.delivery import deliver_due
from cds.services.engine import Engine
from cds.serving.api.errors import status_for
from cds.serving.engine import build_engine
from cds.serving.triton.launcher import free_port
from cds.settings import Settings
from cds.store import outbox
from cds.store.audit import verify_chain
from cds.store.tables import AuditEventRow
from tests.support.mllp import MllpListener

RULES = AllowedDestinations.parse(["10.0.0.0/8", "::1", "pacs.example.com", "*.consortium.cn",
                                   "https://vna.example.com/dicom-web", "http://127.0.0.1:8042/orthanc/"])  # fmt: skip


@pytest.mark.parametrize(("destination", "allowed"), [
    ("10.1.2.3", True), ("11.0.0.1", False), ("::ffff:10.0.0.5", True), ("::1", True), ("[::1]", True),
    ("127.0.0.1", False), ("localhost", False), ("::2", False),
    ("pacs.example.com", True), ("PACS.Example.COM.", True), ("pacs.example.com.evil.net", False),
    ("evilpacs.example.com", False), ("example.com", False),
    ("his.consortium.cn", True), ("a.b.consortium.cn", True), ("consortium.cn", False), ("xconsortium.cn", False),
    ("consortium.cn.evil.net", False),
    ("https://pacs.example.com:8443/anything", True), ("http://10.9.9.9/hook", True), ("http://[::1]:9/x", True),
    ("https://vna.example.com/dicom-web", True), ("https://vna.example.com/dicom-web/studies", True),
    ("https://vna.example.com:443/dicom-web/studies", True), ("https://vna.example.com/dicom-webx", False),
    ("http://vna.example.com/dicom-web/studies", False), ("https://vna.example.com:8443/dicom-web", False),
    ("https://vna.example.com/other", False), ("https://vna.example.com/dicom-web/../admin", False),
    ("https://vna.example.com/dicom-web/%2e%2e/admin", False),
    ("https://vna.example.com@evil.net/dicom-web", False), ("https://pacs.example.com@evil.net/", False),
    ("https://evil.net\\@vna.example.com/dicom-web", False), ("https://vna.example.com.evil.net/dicom-web", False),
    ("http://127.0.0.1:8042/orthanc/studies", True), ("http://127.0.0.1:8042/orthanc", False),
    ("http://127.0.0.1:8043/orthanc/studies", False), ("ftp://pacs.example.com/", False), ("", False),
])  # fmt: skip
def test_matching_rules(destination: str, allowed: bool) -> None:
    assert RULES.permits(destination) is allowed


def test_host_names_are_never_resolved_to_match_a_range() -> None:
    assert not AllowedDestinations.parse(["127.0.0.0/8"]).permits("localhost")
    assert AllowedDestinations.parse(["localhost"]).permits("http://localhost:8080/hook")


@pytest.mark.parametrize("entry", ["10.0.0.5/8", "pacs example", "https://user@vna.example.com/", "ftp://x/",
                                   "*", "a..b", "10.0.0.0/33"])  # fmt: skip
def test_an_unreadable_entry_is_refused_at_load(entry: str) -> None:
    with pytest.raises(ValidationError, match="allowed destination"):
        Settings(allowed_destinations=[entry])


def test_configured_destinations_outside_the_list_are_refused_at_load() -> None:
    configured = {"alert_webhooks": ["https://ward.example.com/hook?token=s3cret"],
                  "dicom_destinations": [{"name": "pacs", "kind": "dimse", "host": "10.0.0.5", "port": 104,
                                          "ae_title": "PACS"},
                                         {"name": "cloud", "kind": "dicomweb", "url": "https://dicom.cloud.example"}],
                  "hl7_destinations": [{"name": "his", "host": "his.hospital.cn", "port": 2575}]}  # fmt: skip
    Settings(**configured)  # unset: today's destinations keep working
    Settings(**configured, allowed_destinations=["10.0.0.0/8", "*.hospital.cn", "https://ward.example.com/",
                                                 "dicom.cloud.example"])  # fmt: skip
    with pytest.raises(ValidationError) as refused:
        Settings(**configured, allowed_destinations=["10.0.0.0/8", "*.hospital.cn"])
    message = str(refused.value)
    assert "CDS_DICOM_DESTINATIONS 'cloud' (https://dicom.cloud.example)" in message
    assert "CDS_ALERT_WEBHOOKS (https://ward.example.com/hook)" in message and "s3cret" not in message
    assert "'pacs'" not in message and "'his'" not in message
    with pytest.raises(ValidationError, match="CDS_TRITON_URL"):
        Settings(backend="triton", triton_url="triton.cloud.example:8001", allowed_destinations=["10.0.0.0/8"])
    Settings(backend="triton", triton_url="[::1]:8001", allowed_destinations=["::1"])
    with pytest.raises(ValidationError, match="CDS_HL7_DESTINATIONS 'his'"):
        Settings(**configured, allowed_destinations=[])  # an empty list: nothing may leave


def test_check_passes_everything_while_unset_and_raises_the_reason_when_set() -> None:
    check(Settings(), "https://anywhere.example/")
    with pytest.raises(DestinationNotAllowedError) as refused:
        check(Settings(allowed_destinations=["10.0.0.0/8"]), "127.0.0.1", name="HL7 destination 'his'")
    assert refused.value.code == "destination_not_allowed" and "HL7 destination 'his' (127.0.0.1)" in str(refused.value)
    assert status_for(refused.value) == 403  # a request that asked for it is told it is forbidden, not a 500


class Listener:
    """A bare TCP listener on loopback that only counts the connections made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    bare = Listener()
    yield bare
    bare.sock.close()


def _engine(tmp_path: Path, port: int, **settings: object) -> Engine:
    engine = build_engine(Settings(data_dir=tmp_path / "data", **settings, dicom_destinations=[  # type: ignore[arg-type]
        {"name": "pacs", "kind": "dimse", "host": "127.0.0.1", "port": port, "ae_title": "PACS"},
        {"name": "vna", "kind": "dicomweb", "url": f"http://127.0.0.1:{port}/dicom-web"}],
        hl7_destinations=[{"name": "his", "host": "127.0.0.1", "port": port}]))  # fmt: skip
    engine.database.migrate()
    return engine


def _queue_everything(engine: Engine, tmp_path: Path, port: int, now: dt.datetime) -> None:
    result = tmp_path / "sr.dcm"
    result.write_bytes(b"not read: refused before the file is opened")
    with engine.database.session() as session:
        outbox.enqueue(session, destinations=["dicom:pacs", "dicom:vna"], topic=dicom_sender.TOPIC, now=now,
                       about="ImagingStudy/1.2.826.0.1.5", payload={"file": str(result), "study_uid": "1.2.826.0.1.5"})
        outbox.enqueue(session, destinations=["hl7:his"], topic=hl7_sender.TOPIC, now=now,
                       payload={"message": "MSH|^~\\&|CDS", "control_id": "c1", "study_uid": "1.2.826.0.1.5"})
        # queued while an earlier configuration allowed it
        outbox.enqueue(session, destinations=[f"http://127.0.0.1:{port}/hook?key=s3cret"], topic="alert", now=now,
                       payload={"resourceType": "Communication", "subject": {"reference": "Patient/P-0042"}})
    # fmt: skip


def test_a_destination_outside_the_list_gets_nothing_is_not_retried_and_is_audited(
        tmp_path: Path, listener: Listener) -> None:  # fmt: skip
    engine = _engine(tmp_path, listener.port, allowed_destinations=["127.0.0.1"])
    try:
        engine.settings = engine.settings.model_copy(update={"allowed_destinations": ["10.0.0.0/8"]})  # tightened
        start = dt.datetime.now(dt.UTC)
        _queue_everything(engine, tmp_path, listener.port, start)
        assert deliver_due(engine, now=start) == (0, 4)
        assert listener.connections() == 0  # not one byte: no connection was even opened
        assert deliver_due(engine, now=start + dt.timedelta(days=365)) == (0, 0)  # never retried
        assert listener.connections() == 0
        with engine.database.session() as session:
            waiting = outbox.pending(session)
            assert [(m.last_error, m.attempts) for m in waiting] == [("destination_not_allowed", 1)] * 4
            events = list(session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq)))
            assert verify_chain(session).ok
    finally:
        engine.close()
    assert [(e.action, e.outcome) for e in events] == [("data.egress.refused", "refused")] * 4
    details = [json.loads(e.detail) for e in events]
    assert {(d["topic"], d["destination"], d["address"], d["reason"]) for d in details} == {
        ("alert", f"http://127.0.0.1:{listener.port}/hook", f"http://127.0.0.1:{listener.port}/hook",
         "destination_not_allowed"),
        ("dicom", "dicom:pacs", "127.0.0.1", "destination_not_allowed"),
        ("dicom", "dicom:vna", f"http://127.0.0.1:{listener.port}/dicom-web", "destination_not_allowed"),
        ("hl7", "hl7:his", "127.0.0.1", "destination_not_allowed")}  # fmt: skip
    written = " ".join(f"{e.resource} {e.subject} {e.detail}" for e in events)
    assert "1.2.826.0.1.5" not in written and "P-0042" not in written and "s3cret" not in written
    assert all(e.resource.startswith("Outbox/") and not e.subject for e in events)


def test_an_allowed_destination_still_delivers(tmp_path: Path) -> None:
    port = free_port()
    engine = build_engine(Settings(data_dir=tmp_path / "data", allowed_destinations=["10.0.0.0/8", "127.0.0.1"],
                                   hl7_destinations=[{"name": "his", "host": "127.0.0.1", "port": port}]))  # fmt: skip
    engine.database.migrate()
    his = MllpListener(port).start()
    try:
        start = dt.datetime.now(dt.UTC)
        message = "MSH|^~\\&|CDS|s|HIS|h|20261206||ORU^R01^ORU_R01|c1|P|2.5.1\r"
        with engine.database.session() as session:
            outbox.enqueue(session, destinations=["hl7:his"], topic=hl7_sender.TOPIC, now=start,
                           payload={"message": message, "control_id": "c1", "study_uid": "1.2.3"})  # fmt: skip
        assert deliver_due(engine, now=start) == (1, 0)
    finally:
        his.stop()
        engine.close()
    assert len(his.messages) == 1
