"""A pre-read as a FHIR R4 ``DiagnosticReport`` with one ``Observation`` per finding or structure.

Classification: each finding's probability and its call against the operating threshold. Segmentation: each
structure's volume in mL.

The report is ``preliminary`` (an AI pre-read awaiting a reader). The model is a contained ``Device`` named by
model name and version and identified by its artifact sha256; every Observation names it as its device. Given the
source's DICOM header, the report also says whose and when (IHE AI Results): ``subject`` is the patient by
identifier (the study's Patient ID under ``patient_system``, which a site sets to its MRN system),
``effectiveDateTime`` is the exam's date and time (Acquisition DateTime, else Study Date and Time, with the
header's UTC offset; a date alone when the offset is unknown), ``imagingStudy`` names the study by its Study
Instance UID, and ``issued`` is when the AI ran. Each report has its own identifier, the same for the same input,
model and study on every re-run. Validated with fhir.resources (R4B) before returning.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

from cds.errors import MissingDependencyError
from cds.results.classification import ClassificationResult
from cds.results.segmentation import SegmentationResult, StructureVolume

LOINC = "http://loinc.org"
DICOM_UID = "urn:dicom:uid"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
MODEL_SHA256 = "urn:cds:model-sha256"
PATIENT_ID_SYSTEM = "urn:cds:dicom-patient-id"  # the default; a site names its own MRN system
REPORT_NAMESPACE = uuid.UUID("6f1d0b3e-3c1a-4e8e-9d59-4c2f5b0f7a11")  # report identifiers: uuid5 in this namespace
_DT = re.compile(r"^(\d{8})(\d{2})?(\d{2})?(\d{2})?")


def _offset(text: str) -> dt.timezone | None:
    """A DICOM UTC offset (``+0800``) as a timezone, or None."""
    match = re.fullmatch(r"([+-])(\d{2})(\d{2})", text.strip())
    if not match:
        return None
    minutes = int(match[2]) * 60 + int(match[3])
    return dt.timezone(dt.timedelta(minutes=minutes if match[1] == "+" else -minutes))


def exam_time(header: Any) -> str | None:
    """The exam's date and time as a FHIR dateTime, from a DICOM header; None when it states no date.

    Acquisition DateTime (its own offset, else Timezone Offset From UTC), else Study Date and Study Time. FHIR wants
    a zone with a time, so without a known offset only the date is given.
    """
    text = str(header.get("AcquisitionDateTime", "") or "").strip()
    zone = None
    if text:
        for sign in "+-":
            if sign in text[8:]:
                text, _, tail = text.rpartition(sign)
                zone = _offset(sign + tail)
    else:
        text = str(header.get("StudyDate", "") or "").strip() + str(header.get("StudyTime", "") or "").strip()
    zone = zone or _offset(str(header.get("TimezoneOffsetFromUTC", "") or ""))
    match = _DT.match(text)
    if not match:
        return None
    try:
        day = dt.datetime.strptime(match[1], "%Y%m%d")
        if zone is None or match[2] is None:
            return day.date().isoformat()
        moment = day.replace(hour=int(match[2]), minute=int(match[3] or 0), second=int(match[4] or 0), tzinfo=zone)
    except ValueError:
        return None
    return moment.isoformat()


def _report_id(result: ClassificationResult | SegmentationResult, study_uid: str, instance_uid: str) -> uuid.UUID:
    """The same for the same study, series or instance, model and input on every re-run."""
    return uuid.uuid5(REPORT_NAMESPACE, "|".join((study_uid, instance_uid, result.model.key, result.input_sha256)))


def _observation(index: int, finding: Any, when: str, subject: dict[str, str]) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"finding-{index}",
        "status": "preliminary",
        "code": {"text": finding.label},
        "subject": subject,
        "effectiveDateTime": when,
        "device": {"reference": "#model"},
        "valueQuantity": {"value": round(finding.probability, 6), "unit": "probability",
                          "system": "http://unitsofmeasure.org", "code": "1"},
    }
    if finding.threshold is not None:
        code = "POS" if finding.positive else "NEG"
        observation["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": code}]}]
        observation["note"] = [{"text": f"operating threshold {finding.threshold:.4f}"}]
    return observation


def _volume_observation(index: int, structure: StructureVolume, when: str, subject: dict[str, str]
                        ) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"structure-{index}",
        "status": "preliminary",
        "code": {"text": f"{structure.label} volume"},
        "subject": subject,
        "effectiveDateTime": when,
        "device": {"reference": "#model"},
        "valueQuantity": {"value": round(structure.volume_ml, 3), "unit": "mL",
                          "system": "http://unitsofmeasure.org", "code": "mL"},
        "note": [{"text": f"{structure.voxels} voxels"}],
    }


def _observations_and_conclusion(result: ClassificationResult | SegmentationResult, when: str,
                                 subject: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    if isinstance(result, SegmentationResult):
        observations = [_volume_observation(i, s, when, subject) for i, s in enumerate(result.structures)]
        found = [f"{s.label} {s.volume_ml:.1f} mL" for s in result.structures if s.voxels > 0]
        conclusion = ("AI segmentation: " + ", ".join(found)) if found else "AI segmentation: no structure found"
    else:
        observations = [_observation(i, f, when, subject) for i, f in enumerate(result.findings)]
        positives = [f"{f.label} ({f.probability:.2f})" for f in result.findings if f.positive]
        conclusion = ("AI pre-read, positive findings: " + ", ".join(positives)) if positives else (
            "AI pre-read: no finding above its operating threshold")
    return observations, conclusion


def diagnostic_report(
    result: ClassificationResult | SegmentationResult,
    *,
    study_uid: str,
    title: str,
    patient_reference: str | None = None,
    issued: dt.datetime | None = None,
    header: Any = None,
    patient_system: str = PATIENT_ID_SYSTEM,
    instance_uid: str = "",
    validate: bool = True,
) -> dict[str, Any]:
    """The DiagnosticReport resource (JSON-ready dict) for one pre-read result.

    Args:
        result: The model's result.
        study_uid: The source study's Study Instance UID ('' for none, e.g. a slide file).
        title: The report's title.
        patient_reference: A literal reference to the patient (``Patient/123``), when known.
        issued: When the AI ran (default now).
        header: The source's DICOM header: the patient's identifier and the exam's date and time come from it.
        patient_system: The identifier system of DICOM Patient IDs at this site.
        instance_uid: The series or instance the result is about (part of the report's identifier).
        validate: Validate it with fhir.resources and return the validated model's JSON; off for a caller that
            adds to the resource and validates the whole once (validating costs milliseconds).
    """
    try:
        from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    now = (issued or dt.datetime.now(dt.UTC)).isoformat()
    patient_id = str(header.get("PatientID", "") or "").strip() if header is not None else ""
    if patient_reference:
        subject: dict[str, Any] = {"reference": patient_reference}
    elif patient_id:
        subject = {"identifier": {"system": patient_system, "value": patient_id}}
    else:
        subject = {"display": "unidentified"}
    when = (exam_time(header) if header is not None else None) or now
    model = result.model
    device = {
        "resourceType": "Device",
        "id": "model",
        "identifier": [{"system": MODEL_SHA256, "value": model.sha256}],
        "deviceName": [{"name": model.name, "type": "model-name"}],
        "version": [{"value": model.version}],
        "note": [{"text": f"backend {model.backend.value}; input sha256 {result.input_sha256}"}],
    }
    observations, conclusion = _observations_and_conclusion(result, when, subject)
    if result.warnings:
        conclusion += ". " + "; ".join(result.warnings).capitalize() + "."
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "status": "preliminary",
        "category": [{"coding": [{"system": DIAGNOSTIC_SERVICE, "code": "RAD", "display": "Radiology"}]}],
        "code": {"coding": [{"system": LOINC, "code": "18748-4", "display": "Diagnostic imaging study"}],
                 "text": title},
        "identifier": [{"system": "urn:ietf:rfc:3986",
                        "value": f"urn:uuid:{_report_id(result, study_uid, instance_uid)}"}],
        "subject": subject,
        "effectiveDateTime": when,
        "issued": now,
        "contained": [device, *observations],
        "result": [{"reference": f"#{o['id']}"} for o in observations],
        "conclusion": conclusion,
    }
    if study_uid:
        resource["imagingStudy"] = [{"identifier": {"system": DICOM_UID, "value": f"urn:oid:{study_uid}"},
                                     "display": f"Study {study_uid}"}]  # fmt: skip
    if not validate:
        return resource
    validated = DiagnosticReport.model_validate(resource)
    output: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return output
