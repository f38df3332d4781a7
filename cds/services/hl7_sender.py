"""Pre-reads to the hospital information system as HL7 v2 ORU^R01 over MLLP (python-hl7's client), from the outbox.

The message is built when the read finishes (:func:`queue_oru`, in the read's own transaction) and sent as built
on every attempt, with the same message control id, so a receiver can recognise a repeat. The receiver's ACK
decides: MSA-1 ``AA`` or ``CA`` delivers it; ``AE``/``AR`` (or ``CE``/``CR``) is an error kept with the message,
and a receiver that cannot be reached is tried again later.
"""

from __future__ import annotations

import datetime as dt
import json

import hl7
from hl7.client import MLLPClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cds import residency
from cds.interop.hl7_oru import oru_r01
from cds.results.jobs import PrereadOutcome
from cds.settings import Hl7Destination, Settings
from cds.store import outbox
from cds.store.tables import DicomInstanceRow

TOPIC = "hl7"
TIMEOUT_S = 20.0
ACCEPTED = {"AA", "CA"}
DOWN = {"connection_failed", "timeout", "destination_not_configured"}


def queue_oru(session: Session, settings: Settings, outcome: PrereadOutcome, *, job_id: str, site: str,
              now: dt.datetime) -> int:  # fmt: skip
    """One ORU^R01 of ``outcome`` per HL7 destination serving ``site``, in the caller's transaction; how many.

    ``site`` is the job's, whose data it is (``""``: ``CDS_SITE``); another site's HIS never receives it.
    """
    owner = site or settings.site
    names = [d.name for d in settings.hl7_destinations if d.serves(owner, home=settings.site)]
    if not names:
        return 0
    source = session.scalars(select(DicomInstanceRow).where(
        DicomInstanceRow.study_uid == outcome.study_uid, DicomInstanceRow.origin == "stored").limit(1)).first()
    message, control_id = oru_r01(outcome, patient_id=source.patient_id if source else "",
                                  assigning_authority=settings.patient_id_system,
                                  patient_name=source.patient_name if source else "",
                                  accession=source.accession_number if source else "", job_id=job_id,
                                  site=settings.site, sent=now)  # fmt: skip
    outbox.enqueue(session, destinations=[f"{TOPIC}:{name}" for name in names], topic=TOPIC,
                   payload={"message": message, "control_id": control_id, "study_uid": outcome.study_uid,
                            "site": owner}, now=now, about=f"ImagingStudy/{outcome.study_uid}")  # fmt: skip
    return len(names)


def destination_of(settings: Settings, outbox_destination: str) -> Hl7Destination | None:
    """The configured destination a message is for (``None``: no longer configured)."""
    name = outbox_destination.removeprefix(f"{TOPIC}:")
    return next((d for d in settings.hl7_destinations if d.name == name), None)


def send(settings: Settings, destination: Hl7Destination, payload: str) -> str:
    """Send one message over MLLP; ``""`` when the receiver accepted it, else what went wrong.

    Raises:
        DestinationNotAllowedError: the receiver is outside ``CDS_ALLOWED_DESTINATIONS`` (nothing sent).
    """
    document = json.loads(payload)
    residency.check(settings, destination.host, name=f"HL7 destination {destination.name!r}")
    try:
        client = MLLPClient(destination.host, destination.port)
    except OSError:
        return "connection_failed"
    try:
        client.socket.settimeout(TIMEOUT_S)
        answer = client.send_message(document["message"])
    except TimeoutError:
        return "timeout"
    except OSError:
        return "connection_failed"
    finally:
        client.close()
    try:
        ack = hl7.parse(answer.decode("utf-8") if isinstance(answer, bytes) else str(answer))
        code, about = str(ack.segment("MSA")[1]), str(ack.segment("MSA")[2])
    except (KeyError, IndexError, ValueError, UnicodeDecodeError):
        return "ack_unreadable"
    if about != document["control_id"]:
        return "ack_for_another_message"
    return "" if code in ACCEPTED else f"ack_{code[:2].lower()}"


def destination_down(error: str) -> bool:
    """Whether the receiver could not be reached (its other messages wait), not that it refused this one."""
    return error in DOWN

