"""Risk scoring: plain JSON in, RiskResult out; FHIR Bundle in, RiskAssessment out.

Every score is stored and audited, in one transaction, before it is returned.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from cds.errors import BackendUnavailableError, InvalidInputError, ModelNotFoundError
from cds.interop.fhir_inputs import parse_bundle
from cds.interop.fhir_risk import risk_assessment
from cds.models.risk import RiskEquation
from cds.pipelines.risk import EquationPipeline
from cds.results.risk import MethodRef, RiskResult
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, enforce_patient_scope, require
from cds.serving.api.state import AppState
from cds.store.results import release_result

router = APIRouter(prefix="/v1/risk", tags=["risk"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]
Value = float | int | bool | str


class RiskRequest(BaseModel):
    """Inputs by field name (see ``GET /v1/risk``), and optionally whose they are."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    inputs: dict[str, Value] = Field(examples=[{"age": 55, "sex": "female", "systolic_bp": 120}])
    subject: str = Field(default="", max_length=200, description="FHIR reference of the patient, e.g. Patient/123")


class RiskResponse(BaseModel):
    """The stored result's id and the result."""

    result_id: str
    result: RiskResult


class MethodInfo(BaseModel):
    """A scoring method and its inputs."""

    name: str
    title: str
    source: str
    kind: str
    score_unit: str
    fields: list[dict[str, Any]]


def _method(state: AppState, name: str) -> tuple[RiskEquation, MethodRef]:
    state.retry_unreachable()
    methods = state.risk_methods()
    if name not in methods and state.is_unreachable(name):
        raise BackendUnavailableError(f"risk model {name!r} is registered but its inference backend is not "
                                      "reachable; retry shortly", code="backend_unreachable")
    if name not in methods:
        raise ModelNotFoundError(f"no risk method {name!r}; available: {', '.join(sorted(methods))}")
    return methods[name]


def _reject_non_finite(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(f"{name} must be a finite number", code="not_finite")
        if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            raise InvalidInputError(f"{name} must be a finite number, got {value!r}", code="not_finite")


@router.get("")
def list_methods(state: StateDep, _principal: Clinical) -> list[MethodInfo]:
    """Equations and risk models, with their inputs, units and validated ranges."""
    return [
        MethodInfo(
            name=name, title=equation.title, source=equation.source, kind=method.kind.value,
            score_unit=equation.score_unit,
            fields=[{"name": f.name, "unit": f.unit, "description": f.description, "kind": f.kind.value,
                     "valid": f.valid, "categories": list(f.categories), "required": f.required}
                    for f in equation.fields],
        )  # fmt: skip
        for name, (equation, method) in sorted(state.risk_methods().items())
    ]


@router.post("/{score}")
def score(
    score: str, request: RiskRequest, http: Request, state: StateDep, principal: Clinical
) -> RiskResponse:
    """Score one patient with an equation or risk model; the result is stored and audited."""
    if request.subject:
        enforce_patient_scope(state, http, principal, request.subject)
    _reject_non_finite(request.inputs)
    equation, method = _method(state, score)
    result = EquationPipeline(equation, method)(request.inputs)
    with state.database.session() as session:
        result_id = release_result(
            session, kind="risk", subject=request.subject, method=f"{method.name}@{method.version}",
            input_sha256=result.input_sha256, payload=result.model_dump(mode="json"), actor=principal.subject,
            role=principal.role_text,
        )  # fmt: skip
    state.metrics.inferences.labels(method.name, result.status.value).inc()
    return RiskResponse(result_id=result_id, result=result)


@router.post("/{score}/fhir", response_model=dict[str, Any])
def score_fhir(
    score: str,
    bundle: Annotated[dict[str, Any], Body(description="FHIR R4 Bundle with a Patient and Observations")],
    http: Request,
    state: StateDep,
    principal: Clinical,
    bp_treated: bool | None = None,
    diabetes: bool | None = None,
    statin: bool | None = None,
    race: str | None = None,
) -> dict[str, Any]:
    """Score the patient in a FHIR Bundle and answer with a FHIR RiskAssessment (stored and audited).

    Facts no Observation carries come as query parameters (``bp_treated``, ``diabetes``, ``statin``, ``race``).
    """
    extracted = parse_bundle(bundle)
    subject = extracted.patient_reference or ""
    enforce_patient_scope(state, http, principal, subject)
    overrides = {k: v for k, v in {"bp_treated": bp_treated, "diabetes": diabetes, "statin": statin,
                                   "race": race}.items() if v is not None}  # fmt: skip
    equation, method = _method(state, score)
    result = EquationPipeline(equation, method)(extracted.values | overrides)
    basis = {k: v for k, v in extracted.basis.items() if k in result.inputs}
    resource = risk_assessment(result, outcome=equation.outcome, patient_reference=subject or None, basis=basis)
    with state.database.session() as session:
        result_id = release_result(
            session, kind="risk", subject=subject, method=f"{method.name}@{method.version}",
            input_sha256=result.input_sha256, payload=result.model_dump(mode="json"), actor=principal.subject,
            role=principal.role_text,
        )  # fmt: skip
    resource["id"] = result_id
    state.metrics.inferences.labels(method.name, result.status.value).inc()
    return resource
