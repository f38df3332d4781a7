"""Sending DICOM results to a PACS or archive: C-STORE (pynetdicom) or STOW-RS, one instance per outbox message.

The pre-read (and the signing of its report) writes a message per result file and destination into the outbox
in its own transaction (:func:`queue_results`), to the destinations that serve the job's site only (a clinic's
results to the clinic's PACS, never another's; :attr:`cds.settings.DicomDestination.sites`); the outbox's
delivery loop calls :func:`send` until the destination takes it, so a destination that is down gets every result
later and each once (C-STORE and STOW-RS both store an instance by its SOP Instance UID, so a resend after a lost
acknowledgement does not duplicate it at the receiver).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from sqlalchemy.orm import Session

from cds import residency
from cds.settings import DicomDestination, Settings
from cds.store import outbox

log = logging.getLogger(__name__)
TOPIC = "dicom"
TIMEOUT_S = 20


def queue_results(session: Session, settings: Settings, files: Sequence[Path], *, study_uid: str, site: str,
                  now: dt.datetime) -> list[str]:  # fmt: skip
    """One outbox message per result file and destination serving ``site``, in the caller's transaction.

    Args:
        session: The caller's open session.
        settings: Where the destinations are configured.
        files: The DICOM result files.
        study_uid: The study they belong to.
        site: The site whose data they are (the job's site); ``""``: this deployment's own (``CDS_SITE``).
        now: When they were queued.

    Returns:
        The names of the destinations they were queued to; none when no destination serves ``site`` (nothing
        leaves; logged with the site's code, no patient data).
    """
    owner = site or settings.site
    names = [d.name for d in settings.dicom_destinations if d.serves(owner, home=settings.site)]
    if files and settings.dicom_destinations and not names:
        log.warning("DICOM results of site %s not sent: no CDS_DICOM_DESTINATIONS entry serves it", owner)
    for path in files if names else []:
        outbox.enqueue(session, destinations=[f"{TOPIC}:{name}" for name in names], topic=TOPIC, now=now,
                       about=f"ImagingStudy/{study_uid}",
                       payload={"file": str(path), "study_uid": study_uid, "site": owner})  # fmt: skip
    return names if files else []


def destination_of(settings: Settings, outbox_destination: str) -> DicomDestination | None:
    """The configured destination an outbox message is for (``None``: no longer configured)."""
    name = outbox_destination.removeprefix(f"{TOPIC}:")
    return next((d for d in settings.dicom_destinations if d.name == name), None)


def send(settings: Settings, destination: DicomDestination, payload: str) -> str:
    """Send one message's file; ``""`` when the destination took it, else what went wrong.

    Raises:
        DestinationNotAllowedError: the destination is outside ``CDS_ALLOWED_DESTINATIONS`` (nothing sent).
    """
    if destination.kind == "dimse":
        return send_batch(settings, destination, [("one", payload)])["one"]
    return _stow(settings, destination, Path(json.loads(payload)["file"]))


def _stow(settings: Settings, destination: DicomDestination, path: Path) -> str:
    residency.check(settings, destination.url or "", name=f"DICOM destination {destination.name!r}")
    if not path.is_file():
        return "result_file_missing"
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


def send_batch(settings: Settings, destination: DicomDestination, payloads: list[tuple[str, str]]) -> dict[str, str]:
    """Send several messages' files to one C-STORE destination over one association; per message id, its error.

    The association requests every SOP class the files hold (each in its stored transfer syntax and the two
    uncompressed ones); a file whose class the destination does not accept gets ``no_accepted_context`` alone.

    Raises:
        DestinationNotAllowedError: the destination is outside ``CDS_ALLOWED_DESTINATIONS`` (nothing sent).
    """
    residency.check(settings, destination.host or "", name=f"DICOM destination {destination.name!r}")
    files: dict[str, Path] = {}
    errors: dict[str, str] = {}
    for message_id, payload in payloads:
        path = Path(json.loads(payload)["file"])
        if path.is_file():
            files[message_id] = path
        else:
            errors[message_id] = "result_file_missing"
    if not files:
        return errors
    headers = {mid: pydicom.dcmread(path, stop_before_pixels=True) for mid, path in files.items()}
    ae = AE(ae_title=settings.dicom_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    for sop_class, syntaxes in list(_contexts(headers.values()).items())[:128]:  # the most one association asks
        ae.add_requested_context(sop_class, syntaxes)
    assoc = ae.associate(destination.host or "", destination.port or 0, ae_title=destination.ae_title or "")
    if not assoc.is_established:
        reason = ("association_rejected" if assoc.is_rejected else
                  "no_accepted_context" if assoc.rejected_contexts else "connection_failed")  # fmt: skip
        return errors | dict.fromkeys(files, reason)
    try:
        return errors | _store_each(assoc, files, {mid: str(h.SOPClassUID) for mid, h in headers.items()})
    finally:
        if assoc.is_established:
            assoc.release()


def _contexts(headers: Iterable[Any]) -> dict[str, list[str]]:
    """Per SOP class, the transfer syntaxes to request: each file's own, then the two uncompressed ones."""
    contexts: dict[str, list[str]] = {}
    for header in headers:
        syntaxes = contexts.setdefault(str(header.SOPClassUID), [])
        for syntax in (str(header.file_meta.TransferSyntaxUID), ExplicitVRLittleEndian, ImplicitVRLittleEndian):
            if syntax not in syntaxes:
                syntaxes.append(syntax)
    return contexts


def _store_each(assoc: Any, files: dict[str, Path], classes: dict[str, str]) -> dict[str, str]:
    """C-STORE each file on the open association; per message id, its error."""
    accepted = {str(c.abstract_syntax) for c in assoc.accepted_contexts}
    errors: dict[str, str] = {}
    for message_id, path in files.items():
        if classes[message_id] not in accepted:
            errors[message_id] = "no_accepted_context"
        elif not assoc.is_established:  # the destination dropped the association: the rest wait
            errors[message_id] = "connection_failed"
        else:
            status = assoc.send_c_store(pydicom.dcmread(path))
            code = int(status.Status) if "Status" in status else -1
            errors[message_id] = ("" if code == 0x0000 or 0xB000 <= code <= 0xBFFF else
                                  f"c_store_status_0x{code:04X}" if code >= 0 else "connection_failed")  # fmt: skip
    return errors
