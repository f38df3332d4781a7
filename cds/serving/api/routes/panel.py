"""A clinician's patient risk panel: cardiovascular, diabetes and kidney risk from one FHIR Bundle.

``POST /v1/risk/panel`` reads the Bundle (Patient, Observations, Conditions, medications) the way the CDS Hooks
service reads its prefetch, scores every topic the data allow (:func:`cds.pipelines.patient_panel.assess_patient`)
and answers, per topic, the equation and its version, the score and band, each input with its value, unit, date
and source resource, each input's contribution, and what is missing. Every score is stored and audited before it
is returned; a patient-scoped token may only read its own patient.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel

from cds.interop.fhir_inputs import FhirInputs, parse_bundle
from cds.models.risk import RiskEquation, get_equation
from cds.pipelines.patient_panel import assess_patient
from cds.results.risk import RiskResult
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, enforce_patient_scope, require
from cds.store.results import release_result

router = APIRouter(prefix="/v1/risk", tags=["risk"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]
FROM_PATIENT = frozenset({"age", "sex", "race"})  # read from the Patient resource itself


class PanelInput(BaseModel):
    """One input of a topic's equation: what was used, in the equation's unit, and where it came from."""

    field: str
    description: str
    unit: str
    value: float | int | bool | str | None
    date: str | None = None  # of the Observation it came from
    source: str | None = None  # "Observation/<id>", "Condition/<id>", ...
    contribution: float | None = None


class PanelTopic(BaseModel):
    """One topic: the method tried, its result (or none), its inputs, and what is missing."""

    topic: str
    outcome: str
    method: str
    method_title: str
    method_version: str
    method_source: str
    result_id: str | None
    result: RiskResult | None
    inputs: list[PanelInput]
    missing: list[PanelInput]


class Panel(BaseModel):
    """The patient's panel."""

    patient: str | None
    as_of: str | None
    topics: list[PanelTopic]


def _describer(equation: RiskEquation, extracted: FhirInputs, result: RiskResult | None) -> Callable[[str], PanelInput]:
    """Describes an input of ``equation``: value, unit, date and source, and its contribution to ``result``."""
    contributions = {c.field: c.contribution for c in result.contributions} if result is not None else {}
    fields = {f.name: f for f in equation.fields}

    def described(name: str) -> PanelInput:
        spec, day = fields[name], extracted.observed.get(name)
        value = extracted.values.get(name)
        return PanelInput(field=name, description=spec.description, unit=spec.unit,
                          value=value if isinstance(value, float | int | bool | str) else None,
                          date=day.isoformat() if day else None,
                          source=extracted.basis.get(name) or (extracted.patient_reference if name in FROM_PATIENT
                                                               and value is not None else None),
                          contribution=contributions.get(name))  # fmt: skip

    return described


@router.post("/panel")
def risk_panel(
    bundle: Annotated[dict[str, Any], Body(description="FHIR R4 Bundle: Patient, Observations, Conditions, "
                                                      "MedicationRequest/MedicationStatement")],
    http: Request,
    state: StateDep,
    principal: Clinical,
) -> Panel:
    """Cardiovascular, diabetes and kidney risk with inputs, contributions and what is missing (stored, audited)."""
    extracted = parse_bundle(bundle)
    subject = extracted.patient_reference or ""
    enforce_patient_scope(state, http, principal, subject)
    entries = assess_patient(extracted.values)
    topics = []
    with state.database.session() as session:
        for entry in entries:
            equation = get_equation(entry.method)
            result_id = None
            if entry.result is not None:
                method = entry.result.method
                result_id = release_result(
                    session, kind="risk", subject=subject, method=f"{method.name}@{method.version}",
                    input_sha256=entry.result.input_sha256, payload=entry.result.model_dump(mode="json"),
                    actor=principal.subject, role=principal.role_text,
                )  # fmt: skip
            described = _describer(equation, extracted, entry.result)
            used = [described(f.name) for f in equation.fields if extracted.values.get(f.name) is not None]
            topics.append(PanelTopic(topic=entry.topic.value, outcome=entry.outcome, method=entry.method,
                                     method_title=equation.title, method_version=equation.version,
                                     method_source=equation.source, result_id=result_id, result=entry.result,
                                     inputs=used, missing=[described(name) for name in entry.missing]))  # fmt: skip
    for entry in entries:
        if entry.result is not None:
            state.metrics.inferences.labels(entry.method, entry.result.status.value).inc()
    return Panel(patient=subject or None, as_of=extracted.effective.isoformat() if extracted.effective else None,
                 topics=topics)
