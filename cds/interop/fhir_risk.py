"""A :class:`~cds.results.risk.RiskResult` as a FHIR R4 ``RiskAssessment``, validated with fhir.resources."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from cds.errors import MissingDependencyError
from cds.models.risk.base import RiskBand
from cds.results.risk import RiskResult, RiskStatus

RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
METHOD_SYSTEM = "urn:cds:risk-method"
# Our bands onto HL7's risk-probability codes (negligible | low | moderate | high | certain).
QUALITATIVE = {
    RiskBand.LOW: "low",
    RiskBand.BORDERLINE: "low",
    RiskBand.SLIGHTLY_ELEVATED: "low",
    RiskBand.INTERMEDIATE: "moderate",
    RiskBand.MODERATE: "moderate",
    RiskBand.HIGH: "high",
    RiskBand.VERY_HIGH: "high",
}


def risk_assessment(
    result: RiskResult,
    *,
    outcome: str,
    patient_reference: str | None = None,
    basis: Mapping[str, str] | None = None,
    occurrence: dt.datetime | None = None,
) -> dict[str, Any]:
    """The RiskAssessment resource (JSON-ready dict) for one result.

    ``prediction.probabilityDecimal`` is set only when the score is a probability; points, eGFR and categories
    go to ``prediction.rationale``. ``basis`` references the input resources (e.g. ``Observation/123``).
    """
    try:
        from fhir.resources.R4B.riskassessment import RiskAssessment
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    method = result.method
    resource: dict[str, Any] = {
        "resourceType": "RiskAssessment",
        "status": "final",
        "occurrenceDateTime": (occurrence or dt.datetime.now(dt.UTC)).isoformat(),
        "method": {
            "coding": [{"system": METHOD_SYSTEM, "code": method.key, "display": method.title}],
            "text": f"{method.title} ({method.source})",
        },
        "note": [{"text": _note(result)}],
    }
    # subject is 1..1 in FHIR; plain-JSON requests carry no patient identity, which is said rather than invented.
    resource["subject"] = {"reference": patient_reference} if patient_reference else {"display": "unidentified"}
    references = sorted(set((basis or {}).values()))
    if references:
        resource["basis"] = [{"reference": r} for r in references]
    if result.status is RiskStatus.SCORED and result.score is not None:
        prediction: dict[str, Any] = {"outcome": {"text": outcome}}
        if result.score_unit.startswith("probability"):
            prediction["probabilityDecimal"] = round(result.score, 6)
        if result.band is not None:
            code = QUALITATIVE[result.band]
            prediction["qualitativeRisk"] = {
                "coding": [{"system": RISK_PROBABILITY, "code": code}],
                "text": result.band.value.replace("_", " "),
            }
        prediction["rationale"] = f"score {result.score:.4g} {result.score_unit}" + (
            f"; category {result.category}" if result.category else ""
        )
        resource["prediction"] = [prediction]
    validated = RiskAssessment.model_validate(resource)
    output: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return output


def _note(result: RiskResult) -> str:
    if result.status is RiskStatus.OUT_OF_RANGE:
        return "; ".join(result.warnings)
    parts = [f"{c.field} {c.contribution:+.4g}" for c in result.contributions if c.contribution]
    explanation = f"contributions ({result.contribution_unit}): {', '.join(parts)}" if parts else "no contributions"
    return f"{explanation}. Population: {result.population}."
