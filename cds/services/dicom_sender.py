"""Sending DICOM results to a PACS or archive: C-STORE (pynetdicom) or STOW-RS, one instance per outbox message.

The pre-read writes a message per result file and destination into the outbox in its own transaction
(:func:`queue_results`); the outbox's delivery loop calls :func:`send` until the destination takes it, so a
destination that is down gets every result later and each once (C-STORE and STOW-RS both store an instance by its
SOP Instance UID, so a resend after a lost acknowledgement does not duplicate it at the receiver).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from sqlalchemy.orm import Session

from cds.settings import DicomDestination, Settings
from cds.store import outbox

TOPIC = "dicom"
TIMEOUT_S = 20


def queue_results(session: Session, settings: Settings, files: Sequence[Path], *, study_uid: str,
                  now: dt.datetime) -> int:  # fmt: skip
    """One outbox message per result file and destination, in the caller's transaction; how many."""
    destinations = [f"{TOPIC}:{d.name}" for d in settings.dicom_destinations]
    for path in files if destinations else []:
        outbox.enqueue(session, destinations=destinations, topic=TOPIC, now=now, about=f"ImagingStudy/{study_uid}",
                       payload={"file": str(path), "study_uid": study_uid})  # fmt: skip
    return len(files) * len(destinations)


def destination_of(settings: Settings, outbox_destination: str) -> DicomDestination | None:
    """The configured destination an outbox message is for (``None``: no longer configured)."""
    name = outbox_destination.removeprefix(f"{TOPIC}:")
    return next((d for d in settings.dicom_destinations if d.name == name), None)


def send(settings: Settings, destination: DicomDestination, payload: str) -> str:
    """Send one message's file; ``""`` when the destination took it, else what went wrong."""
    path = Path(json.loads(payload)["file"])
    if not path.is_file():
        return "result_file_missing"
    if destination.kind == "dimse":
        return _c_store(settings, destination, path)
    return _stow(destination, path)


def _c_store(settings: Settings, destination: DicomDestination, path: Path) -> str:
    dataset = pydicom.dcmread(path)
    ae = AE(ae_title=settings.dicom_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    syntaxes = list(dict.fromkeys([dataset.file_meta.TransferSyntaxUID, ExplicitVRLittleEndian,
                                   ImplicitVRLittleEndian]))  # fmt: skip
    ae.add_requested_context(dataset.SOPClassUID, syntaxes)
    assoc = ae.associate(destination.host or "", destination.port or 0, ae_title=destination.ae_title or "")
    if not assoc.is_established:
        if assoc.is_rejected:
            return "association_rejected"
        return "no_accepted_context" if assoc.rejected_contexts else "connection_failed"
    try:
        status = assoc.send_c_store(dataset)
    finally:
        assoc.release()
    code = int(status.Status) if "Status" in status else -1
    return "" if code == 0x0000 or 0xB000 <= code <= 0xBFFF else f"c_store_status_0x{code & 0xFFFF:04X}"


def _stow(destination: DicomDestination, path: Path) -> str:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + path.read_bytes()
            + f"\r\n--{boundary}--\r\n".encode())  # fmt: skip
    try:
        answer = httpx.post(f"{(destination.url or '').rstrip('/')}/studies", content=body, timeout=TIMEOUT_S,
                            headers={"Content-Type": f'multipart/related; type="application/dicom"; '
                                                     f"boundary={boundary}",
                                     "Accept": "application/dicom+json"})  # fmt: skip
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return "" if answer.status_code in (200, 202) else f"HTTP {answer.status_code}"


def destination_down(error: str) -> bool:
    """Whether ``error`` says the destination is unreachable or refusing, so its other messages wait.

    The alternative is an error of this one message (a SOP class the destination does not accept, a rejected
    instance), which must not hold the others back.
    """
    return error in DOWN or error.startswith("HTTP 5") or error.endswith(("ConnectError", "Timeout"))


DOWN = {"connection_failed", "association_rejected", "destination_not_configured"}
