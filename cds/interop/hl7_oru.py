"""An AI pre-read as an HL7 v2.5.1 ORU^R01 message for the hospital information system (built with hl7apy).

One message per pre-read outcome: MSH (UTF-8, so Chinese names pass), PID (the DICOM Patient ID under the site's
identifier system, the name as the study gives it), OBR (the study, by accession number when it has one, and the
outcome as filler order), one OBX per finding (radiograph: the probability, the threshold as reference range, A/N
flag) or structure (CT: the volume in mL), every OBX with result status ``P``: preliminary, for a physician to
confirm. OBX-17 names the model that produced it. An NTE says so in words. The message is validated against the
HL7 2.5.1 structure before it is queued, so an invalid one is never sent.
"""

from __future__ import annotations

import datetime as dt
import uuid

from hl7apy.core import Message

from cds.results.classification import Finding
from cds.results.jobs import PrereadOutcome
from cds.results.segmentation import StructureVolume

VERSION = "2.5.1"
PRELIMINARY = "P"
NOTE = "AI pre-read: preliminary, not for diagnostic use until a physician signs the report."


def _text(value: str, limit: int = 199) -> str:
    """Free text safe inside an HL7 field: no delimiters or segment breaks."""
    for character in "|^~\\&\r\n":
        value = value.replace(character, " ")
    return value.strip()[:limit]


def _name(dicom_name: str) -> str:
    """A DICOM Person Name (``Family^Given``; ideographic and phonetic groups after ``=``) as an HL7 XPN."""
    alphabetic = dicom_name.split("=")[0]
    parts = [_text(p, 50) for p in alphabetic.split("^")[:2]]
    return "^".join(parts) if any(parts) else "UNKNOWN"


def oru_r01(outcome: PrereadOutcome, *, patient_id: str, assigning_authority: str, patient_name: str,
            accession: str, job_id: str, site: str, sent: dt.datetime) -> tuple[str, str]:  # fmt: skip
    """The ORU^R01 of one outcome, as ER7 text (segments ended by carriage returns), and its message control id.

    Raises:
        hl7apy.exceptions.ValidationError: The message does not fit HL7 2.5.1 (a bug, not bad input).
    """
    control_id = uuid.uuid4().hex[:20]
    message = Message("ORU_R01", version=VERSION)
    message.msh.msh_3 = "CDS"
    message.msh.msh_4 = _text(site, 20)
    message.msh.msh_7 = sent.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000")
    message.msh.msh_9 = "ORU^R01^ORU_R01"
    message.msh.msh_10 = control_id
    message.msh.msh_11 = "P"
    message.msh.msh_18 = "UNICODE UTF-8"
    result = message.add_group("ORU_R01_PATIENT_RESULT")
    pid = result.add_group("ORU_R01_PATIENT").add_segment("PID")
    pid.pid_1 = "1"
    authority = _text(assigning_authority).replace("&", " ")
    pid.pid_3 = f"{_text(patient_id, 20) or 'UNKNOWN'}^^^&{authority}&URI^MR"  # the site's MRN system, whole
    pid.pid_5 = _name(patient_name)
    order = result.add_group("ORU_R01_ORDER_OBSERVATION")
    order.obr.obr_1 = "1"
    order.obr.obr_2 = _text(accession, 22) or _text(outcome.study_uid[-22:], 22)
    order.obr.obr_3 = _text(f"{job_id[:8]}-{outcome.uid[-13:]}", 22)
    service = "chest radiograph AI pre-read" if outcome.findings else "CT AI segmentation"
    order.obr.obr_4 = f"{outcome.kind.value}^{service}^L"
    order.obr.obr_7 = message.msh.msh_7.value
    order.obr.obr_25 = PRELIMINARY
    entries: tuple[Finding | StructureVolume, ...] = outcome.findings or outcome.structures
    for index, entry in enumerate(entries, start=1):
        obx = order.add_group("ORU_R01_OBSERVATION").obx
        obx.obx_1 = str(index)
        obx.obx_2 = "NM"
        obx.obx_3 = f"{_text(entry.label, 20)}^{_text(entry.label, 60)}^L"
        if isinstance(entry, Finding):
            obx.obx_5 = f"{entry.probability:.4f}"
            obx.obx_6 = "{probability}"
            obx.obx_7 = f"<{entry.threshold:.4f}" if entry.threshold is not None else ""
            obx.obx_8 = "A" if entry.positive else "N"
        elif isinstance(entry, StructureVolume):
            obx.obx_5 = f"{entry.volume_ml:.1f}"
            obx.obx_6 = "mL"
        obx.obx_11 = PRELIMINARY
        obx.obx_17 = f"{_text(outcome.model, 60)}^AI model^L"
    note = order.add_segment("NTE")
    note.nte_1 = "1"
    note.nte_3 = NOTE
    message.validate()
    return message.to_er7(), control_id
