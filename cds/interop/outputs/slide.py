"""Write a slide read-out where :class:`~cds.results.layout.OutputLayout` says: typed JSON, FHIR, heatmap.

The FHIR report reuses :func:`cds.interop.fhir_report.diagnostic_report` (the contained model ``Device`` with its
sha256, the slide-level finding as an Observation with its POS/NEG interpretation) and makes it a pathology report:
category ``PAT`` (v2-0074), code LOINC 11526-1 "Pathology study", Observations for the tumour area fraction and
the patches scored, and a conclusion that says what was found, or that no tissue was found and nothing was
scored. The result is validated again with fhir.resources after the changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import MissingDependencyError
from cds.interop.fhir_report import LOINC, diagnostic_report
from cds.results.classification import ClassificationResult
from cds.results.layout import OutputLayout
from cds.results.slide import SlideAnalysis, SlideResult, SlideStatus

DIAGNOSTIC_SERVICE = "http://terminology.hl7.org/CodeSystem/v2-0074"
UCUM = "http://unitsofmeasure.org"
PATHOLOGY_STUDY = {"system": LOINC, "code": "11526-1", "display": "Pathology study"}


def _quantity(identifier: str, text: str, value: float, unit: str, code: str, template: dict[str, Any]
              ) -> dict[str, Any]:
    """An Observation like ``template`` (subject, time, device) with another code and value."""
    return {"resourceType": "Observation", "id": identifier, "status": "preliminary", "code": {"text": text},
            "subject": template["subject"], "effectiveDateTime": template["effectiveDateTime"],
            "device": {"reference": "#model"},
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": code}}


def _conclusion(result: SlideResult) -> str:
    if result.status is SlideStatus.NO_TISSUE or result.score is None:
        text = f"AI slide read-out: {result.reason or 'no tissue found'}; the slide was not scored"
    else:
        s = result.score
        call = f"{result.label} suspected" if s.positive else f"no {result.label} above the operating threshold"
        text = (f"AI slide read-out: {call} (top-{s.top_k} patch mean {s.top_k_mean:.2f}, threshold "
                f"{s.threshold:.2f}); {result.label} area {s.tumour_area_fraction:.1%} of "
                f"{result.tiles.scored if result.tiles else 0} tissue patches")
    if result.warnings:
        text += ". " + "; ".join(result.warnings).capitalize()
    return text + "."


def slide_report(result: SlideResult, *, title: str, patient_reference: str | None = None) -> dict[str, Any]:
    """The FHIR R4 DiagnosticReport (JSON-ready dict) of one slide result, validated."""
    try:
        from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    findings = (result.finding,) if result.finding is not None else ()
    base = ClassificationResult(model=result.model, input_sha256=result.input_sha256, findings=findings,
                                intended_use=result.intended_use, inference_ms=result.inference_ms)
    report = diagnostic_report(base, study_uid="", title=title, patient_reference=patient_reference)
    report["category"] = [{"coding": [{"system": DIAGNOSTIC_SERVICE, "code": "PAT", "display": "Pathology"}]}]
    report["code"] = {"coding": [PATHOLOGY_STUDY], "text": title}
    if result.score is not None and result.tiles is not None:
        template = {"subject": report["subject"], "effectiveDateTime": report["effectiveDateTime"]}
        extra = [
            _quantity("area", f"{result.label} area fraction (tissue patches at or above the threshold)",
                      round(100 * result.score.tumour_area_fraction, 3), "%", "%", template),
            _quantity("mean", f"mean {result.label} probability over tissue patches",
                      round(result.score.mean_probability, 6), "probability", "1", template),
            _quantity("patches", "tissue patches scored", result.tiles.scored, "patches", "{patches}", template),
        ]
        report["contained"] = [*report.get("contained", []), *extra]
        report["result"] = [*report.get("result", []), *({"reference": f"#{o['id']}"} for o in extra)]
    report["conclusion"] = _conclusion(result)
    output: dict[str, Any] = DiagnosticReport.model_validate(report).model_dump(mode="json", exclude_none=True)
    return output


def write_slide_outputs(analysis: SlideAnalysis, folder: Path, *, title: str,
                        patient_reference: str | None = None) -> list[Path]:  # fmt: skip
    """Write the result, the FHIR report and (when scored) the heatmap overlay; returns their paths.

    The report's subject is ``patient_reference`` when known (``Patient/123``), else "unidentified".
    """
    from PIL import Image

    layout = OutputLayout(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [layout.path(OutputLayout.RESULT), layout.path(OutputLayout.REPORT)]
    written[0].write_text(analysis.result.model_dump_json(indent=2), encoding="utf-8")
    report = slide_report(analysis.result, title=title, patient_reference=patient_reference)
    written[1].write_text(json.dumps(report, indent=2), encoding="utf-8")
    if analysis.heatmap is not None:
        written.append(layout.path(OutputLayout.SLIDE_HEATMAP))
        Image.fromarray(np.ascontiguousarray(analysis.heatmap), mode="RGB").save(written[-1])
    return written
