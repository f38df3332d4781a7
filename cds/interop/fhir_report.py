"""A pre-read as a FHIR R4 ``DiagnosticReport`` with one ``Observation`` per finding or structure.

Classification: each finding's probability and its call against the operating threshold. Segmentation: each
structure's volume in mL.

The report is ``preliminary`` (an AI pre-read awaiting a reader). The model is a contained ``Device`` named by
model name and version and identified by its artifact sha256; every Observation names it as its device. The
source study is referenced by its DICOM Study Instance UID. Validated with fhir.resources (R4B) before returning.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cds.errors import MissingDependencyError
from cds.results.classification import ClassificationResult
from cds.results.segmentation import SegmentationResult, StructureVolume

LOINC = "http://loinc.org"
DICOM_UID = "urn:dicom:uid"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
MODEL_SHA256 = "urn:cds:model-sha256"


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
) -> dict[str, Any]:
    """The DiagnosticReport resource (JSON-ready dict) for one pre-read result."""
    try:
        from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    when = (issued or dt.datetime.now(dt.UTC)).isoformat()
    subject = {"reference": patient_reference} if patient_reference else {"display": "unidentified"}
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
        "identifier": [{"system": DICOM_UID, "value": f"urn:oid:{study_uid}"}] if study_uid else [],
        "subject": subject,
        "effectiveDateTime": when,
        "issued": when,
        "contained": [device, *observations],
        "result": [{"reference": f"#{o['id']}"} for o in observations],
        "conclusion": conclusion,
    }
    if not resource["identifier"]:
        del resource["identifier"]
    validated = DiagnosticReport.model_validate(resource)
    output: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return output
