"""Delivery of outbox messages with retries and backoff (see :mod:`cds.store.outbox`).

Alerts go to subscribers' REST hooks, POSTed as ``application/fhir+json`` with the message id in
``X-Cds-Message-Id`` (a 2xx answer delivers it); DICOM results to PACS and archives
(:mod:`cds.services.dicom_sender`); HL7 v2 results to the HIS (:mod:`cds.services.hl7_sender`), every attempt of
these two audited. A failed attempt (an error status, a refused connection, a timeout) leaves the message for a
later one. A destination outside ``CDS_ALLOWED_DESTINATIONS`` (:mod:`cds.residency`) is refused before a byte
is sent: the message keeps ``destination_not_allowed``, is never tried again, and the refusal is audited
(``data.egress.refused``, naming the destination, not the patient). A :class:`Deliverer` thread runs
:func:`deliver_due` every second while the service runs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import NamedTuple

import httpx

from cds import residency
from cds.periodic import Periodic
from cds.services import dicom_sender, hl7_sender
from cds.services.engine import Engine
from cds.store import outbox
from cds.store.audit import Actor, AuditAction, AuditOutcome, record_event

log = logging.getLogger(__name__)
SENDER = Actor("cds-outbox", "system")
ALERT = "alert"
RESULT_TOPICS = (dicom_sender.TOPIC, hl7_sender.TOPIC)
TIMEOUT_S = 10.0


class DeliveryReport(NamedTuple):
    """What one round did."""

    delivered: int
    failed: int


def deliver_due(engine: Engine, *, now: dt.datetime | None = None,
                client: httpx.Client | None = None) -> DeliveryReport:  # fmt: skip
    """Send every message due by ``now`` once; record each outcome."""
    now = now or dt.datetime.now(dt.UTC)
    with engine.database.session() as session:
        due = [(row.id, row.destination, row.topic, row.payload) for row in outbox.claim_due(session, now)]
    if not due:
        return DeliveryReport(0, 0)
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_S)
    done = failed = 0
    down: set[str] = set()  # destinations that failed this round: their other messages wait for the claim to lapse
    batched: dict[str, str] | None = None  # C-STORE results: one association per PACS, sent after the alerts
    try:
        for message_id, destination, topic, payload in sorted(due, key=lambda m: m[2] != ALERT):  # alerts first
            if destination in down:
                continue
            if batched is None and topic == dicom_sender.TOPIC:
                batched = _send_c_store_batches(engine, due)
            if batched is not None and message_id in batched:
                error = batched[message_id]
                unreachable = bool(error) and dicom_sender.destination_down(error)
            else:
                error, unreachable = _send(engine, http, topic, destination, message_id, payload)
            if unreachable:
                down.add(destination)
            with engine.database.session() as session:
                if error == residency.REASON:  # never sent, never retried
                    outbox.refused(session, message_id, error)
                    failed += 1
                    record_event(session, AuditAction.DATA_EGRESS_REFUSED, SENDER, f"Outbox/{message_id}",
                                 outcome=AuditOutcome.REFUSED, detail={
                                     "destination": residency.redacted(destination), "topic": topic,
                                     "address": residency.redacted(_address(engine, topic, destination)),
                                     "reason": error})  # fmt: skip
                    continue
                if error:
                    outbox.failed(session, message_id, now, error)
                    failed += 1
                else:
                    outbox.delivered(session, message_id, now)
                    done += 1
                if topic in RESULT_TOPICS:  # every attempt to send a result out of the hospital's AI is audited
                    study = json.loads(payload).get("study_uid", "")
                    record_event(session, AuditAction.IMAGING_SEND, SENDER, f"ImagingStudy/{study or 'unknown'}",
                                 outcome=AuditOutcome.ERROR if error else AuditOutcome.SUCCESS,
                                 detail={"destination": destination, "error": error})  # fmt: skip
    finally:
        if own:
            http.close()
    if failed:
        log.warning("outbox: %d message(s) not delivered; retried with backoff", failed)
    return DeliveryReport(done, failed)


def _send_c_store_batches(engine: Engine, due: list[tuple[str, str, str, str]]) -> dict[str, str]:
    """The round's DICOM results for C-STORE destinations, sent one association per destination: per id, error."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for message_id, destination, topic, payload in due:
        target = dicom_sender.destination_of(engine.settings, destination) if topic == dicom_sender.TOPIC else None
        if target is not None and target.kind == "dimse":
            groups.setdefault(destination, []).append((message_id, payload))
    errors: dict[str, str] = {}
    for destination, payloads in groups.items():
        target = dicom_sender.destination_of(engine.settings, destination)
        assert target is not None
        try:
            errors.update(dicom_sender.send_batch(engine.settings, target, payloads))
        except residency.DestinationNotAllowedError:
            errors.update(dict.fromkeys((mid for mid, _ in payloads), residency.REASON))
        except (OSError, ValueError, RuntimeError) as exc:  # an unreadable file, a network failure in pynetdicom
            errors.update(dict.fromkeys((mid for mid, _ in payloads), type(exc).__name__))
    return errors


def _address(engine: Engine, topic: str, destination: str) -> str:
    """Where an outbox destination points: a configured DICOM or HL7 destination's URL or host, else itself."""
    if topic == dicom_sender.TOPIC:
        target = dicom_sender.destination_of(engine.settings, destination)
        return (target.url or target.host or "") if target else ""
    if topic == hl7_sender.TOPIC:
        receiver = hl7_sender.destination_of(engine.settings, destination)
        return receiver.host if receiver else ""
    return destination


def _post(engine: Engine, http: httpx.Client, destination: str, message_id: str, payload: str) -> str:
    """POST a REST-hook message; ``""`` when taken."""
    residency.check(engine.settings, destination, name="alert webhook")
    try:
        answer = http.post(destination, content=payload, headers={
            "Content-Type": "application/fhir+json", "X-Cds-Message-Id": message_id})  # fmt: skip
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return "" if answer.is_success else f"HTTP {answer.status_code}"


def _send(engine: Engine, http: httpx.Client, topic: str, destination: str, message_id: str,
          payload: str) -> tuple[str, bool]:  # fmt: skip
    """Send one message by its topic: ``(error or "", whether the destination itself is unreachable)``."""
    try:
        return _dispatch(engine, http, topic, destination, message_id, payload)
    except residency.DestinationNotAllowedError:
        return residency.REASON, False


def _dispatch(engine: Engine, http: httpx.Client, topic: str, destination: str, message_id: str,
              payload: str) -> tuple[str, bool]:  # fmt: skip
    if topic == dicom_sender.TOPIC:
        target = dicom_sender.destination_of(engine.settings, destination)
        try:
            error = dicom_sender.send(engine.settings, target, payload) if target else "destination_not_configured"
        except residency.DestinationNotAllowedError:
            raise
        except (OSError, ValueError, RuntimeError) as exc:  # an unreadable file, a network failure in pynetdicom
            error = type(exc).__name__
        return error, bool(error) and dicom_sender.destination_down(error)
    if topic == hl7_sender.TOPIC:
        receiver = hl7_sender.destination_of(engine.settings, destination)
        error = hl7_sender.send(engine.settings, receiver, payload) if receiver else "destination_not_configured"
        return error, bool(error) and hl7_sender.destination_down(error)
    error = _post(engine, http, destination, message_id, payload)
    return error, bool(error)


class Deliverer:
    """Runs :func:`deliver_due` every ``interval_s`` in a daemon thread while the service runs."""

    def __init__(self, engine: Engine, interval_s: float = 1.0) -> None:
        self.engine, self.interval_s = engine, interval_s
        self._rounds = Periodic("cds-outbox", lambda: deliver_due(engine), interval_s)

    def start(self) -> None:
        """Begin delivering."""
        self._rounds.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._rounds.stop()
