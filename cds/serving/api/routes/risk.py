"""``/v1/risk``: risk methods and scoring (JSON or FHIR in), the patient risk panel, and cohort-file jobs.

Every score is stored and audited, in one transaction, before it is returned (:mod:`cds.services.risk`). The
panel's routes are declared before ``/{score}`` so that ``panel`` is never taken for a method's name.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from cds.errors import InvalidInputError, UnsupportedMediaTypeError
from cds.interop.card_language import FIELDS_ZH, Language, display_value, negotiate
from cds.interop.cds_hooks import card_for
from cds.interop.fhir_inputs import FhirInputs, parse_bundle
from cds.models.risk import FieldSpec, RiskEquation, available_equations, get_equation
from cds.models.risk.base import FieldKind, RiskPopulation
from cds.pipelines.risk.panel import METHODS
from cds.results.risk import NotScored, RiskResult
from cds.services import cohort, risk
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import EngineDep, StateDep, enforce_patient_scope, refuse_patient_scoped, require
from cds.serving.api.uploads import discarded_on_failure, save_upload
from cds.store.jobs import QUEUED

router = APIRouter(prefix="/v1/risk", tags=["risk"])
Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]
Value = float | int | bool | str
FROM_PATIENT = frozenset({"age", "sex", "race"})  # read from the Patient resource itself


class StatedValue(BaseModel):
    """A measurement with its unit (UCUM, or a common spelling such as ``mmol/L``, ``µmol/L``, ``mmHg``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    value: float
    unit: str = Field(min_length=1, max_length=40)


class RiskRequest(BaseModel):
    """Inputs by field name (see ``GET /v1/risk``), and optionally whose they are.

    A measurement is a number in the field's unit, or ``{"value": 5.2, "unit": "mmol/L"}`` in any unit the field
    can be converted from.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    inputs: dict[str, Value | StatedValue] = Field(examples=[{
        "age": 55, "sex": "female", "systolic_bp": 120, "total_cholesterol": {"value": 5.2, "unit": "mmol/L"}}])
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


class PanelInput(BaseModel):
    """One input of a topic's equation: what was used, in the equation's unit, and where it came from."""

    field: str
    description: str
    unit: str
    kind: str = "number"  # number | boolean (a yes/no the clinician may answer when missing) | category
    value: float | int | bool | str | None
    date: str | None = None  # of the Observation it came from
    source: str | None = None  # "Observation/<id>", "Condition/<id>", ...
    contribution: float | None = None


class PanelTopic(BaseModel):
    """One topic: the method tried, its result (or none and why), its inputs, and what is missing."""

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
    not_scored: NotScored | None = None
    reason: str = ""
    headline: str = ""  # the topic in one line, as its CDS Hooks card says it, in the request's language


class Panel(BaseModel):
    """The patient's panel: ``as_of`` is the newest reading used, ``evaluated_on`` the evaluation date.

    ``patient_name``, ``identifiers``, ``birth_date`` and ``gender`` come from the Bundle's Patient, so the panel
    shows whose it is; ``answered`` names the yes/no inputs the clinician answered in this request.
    """

    patient: str | None
    patient_name: str | None = None
    identifiers: list[str] = []
    birth_date: str | None = None
    gender: str | None = None
    answered: list[str] = []
    as_of: str | None
    evaluated_on: str | None = None
    topics: list[PanelTopic]


def _describer(equation: RiskEquation | None, extracted: FhirInputs, result: RiskResult | None,
               population: RiskPopulation, language: Language) -> Callable[[str], PanelInput]:  # fmt: skip
    """Describes an input of ``equation``: value, unit, date and source, and its contribution to ``result``.

    Values are shown in the units they arrived in, else the units the site reads (SI laboratory units at a Chinese
    site); the result keeps the equation's units. The description is in ``language`` (the equation's own words in
    English).
    """
    contributions = {c.field: c.contribution for c in result.contributions} if result is not None else {}
    fields = {f.name: f for f in equation.fields} if equation is not None else {}

    def described(name: str) -> PanelInput:
        spec, day = fields.get(name) or FieldSpec(name, "1", name), extracted.observed.get(name)
        value = extracted.values.get(name)
        number = float(value) if isinstance(value, float | int) and not isinstance(value, bool) else None
        shown, unit = display_value(name, number, spec.unit, population, extracted.units.get(name, ""))
        if number is not None:
            value = shown
        description = FIELDS_ZH.get(name, spec.description) if language is Language.ZH else spec.description
        return PanelInput(field=name, description=description, unit=unit, kind=spec.kind.value,
                          value=value if isinstance(value, float | int | bool | str) else None,
                          date=day.isoformat() if day else None,
                          source=extracted.basis.get(name) or (extracted.patient_reference if name in FROM_PATIENT
                                                               and value is not None else None),
                          contribution=contributions.get(name))  # fmt: skip

    return described


AsOf = Annotated[dt.date | None, Query(description="Evaluation date (age is computed at it; later readings are "
                                                   "ignored); default today")]
Answers = Annotated[list[str], Query(max_length=20, description="The clinician's answers to yes/no inputs the record "
                                                                "lacks, as field:yes or field:no (e.g. smoker:no)")]


def _answered(extracted: FhirInputs, answers: list[str], population: RiskPopulation, who: str) -> list[str]:
    """Put the clinician's yes/no answers into ``extracted`` (noted on each result that uses them); their fields.

    Raises:
        InvalidInputError: ``invalid_answer``: not ``field:yes|no``, or not a yes/no input of the panel's methods;
            ``answer_conflicts_record``: the record already holds the input (an answer never overrides it).
    """
    questions = {f.name for topic in METHODS[population].values() for name in topic
                 for f in get_equation(name).fields if f.kind is FieldKind.BOOLEAN}  # fmt: skip
    fields = []
    for answer in answers:
        name, _, said = answer.partition(":")
        if name not in questions or said not in ("yes", "no"):
            raise InvalidInputError(f"answer {answer[:60]!r}: give field:yes or field:no for one of "
                                    f"{', '.join(sorted(questions))}", code="invalid_answer")  # fmt: skip
        if extracted.values.get(name) is not None:
            raise InvalidInputError(f"the record already holds {name} ({extracted.basis.get(name, 'recorded')}); "
                                    "an answer does not override it", code="answer_conflicts_record")  # fmt: skip
        extracted.values[name], extracted.basis[name] = said == "yes", f"answered by {who}"
        extracted.note(name, f"{name} answered {said} by {who} in the panel, not from the record")
        fields.append(name)
    return fields


def _read(bundle: dict[str, Any], engine: EngineDep, as_of: dt.date | None) -> FhirInputs:
    return parse_bundle(bundle, as_of=as_of, stale_days=engine.settings.risk_stale_days)


@router.post("/panel")
def risk_panel(
    bundle: Annotated[dict[str, Any], Body(description="FHIR R4 Bundle: Patient, Observations, Conditions, "
                                                      "Procedures, MedicationRequest/MedicationStatement")],
    http: Request, state: StateDep, engine: EngineDep, principal: Clinical, as_of: AsOf = None,
    answer: Answers = [],  # noqa: B006 - FastAPI copies query defaults
) -> Panel:  # fmt: skip
    """Cardiovascular, diabetes and kidney risk with inputs, contributions and what is missing (stored, audited).

    The Bundle is read the way the CDS Hooks service reads its prefetch; a patient-scoped token may only send its
    own patient's. Each topic stands alone: a topic that cannot be scored says why (``not_scored``, ``reason``). A
    clinician may answer yes/no inputs the record lacks (``answer=smoker:no``); each answer is noted on the results
    that use it, and never replaces what the record holds.
    """
    extracted = _read(bundle, engine, as_of)
    enforce_patient_scope(state, http, principal, extracted.patient_reference or "")
    answered = _answered(extracted, answer, engine.settings.risk_population, principal.subject)
    language = negotiate(http.headers.get("accept-language"), engine.settings.card_language)
    topics = []
    for released in risk.panel(engine, extracted, actor=principal.actor):
        entry = released.entry
        equation = get_equation(entry.method) if entry.method in available_equations() else None
        described = _describer(equation, extracted, entry.result, engine.settings.risk_population, language)
        fields = equation.fields if equation is not None else ()
        used = [described(f.name) for f in fields if extracted.values.get(f.name) is not None]
        topics.append(PanelTopic(
            topic=entry.topic.value, outcome=entry.outcome, method=entry.method,
            method_title=equation.title if equation else "Secondary prevention (established ASCVD)",
            method_version=equation.version if equation else "", method_source=equation.source if equation else "",
            result_id=released.result_id, result=entry.result, inputs=used,
            missing=[described(name) for name in entry.missing], not_scored=entry.not_scored, reason=entry.reason,
            headline=card_for(entry, "", language).summary,
        ))  # fmt: skip
    identity = extracted.patient
    return Panel(patient=extracted.patient_reference, topics=topics,
                 patient_name=identity.name if identity else None,
                 identifiers=list(identity.identifiers) if identity else [],
                 birth_date=identity.birth_date if identity else None, gender=identity.gender if identity else None,
                 as_of=extracted.effective.isoformat() if extracted.effective else None,
                 evaluated_on=extracted.as_of.isoformat() if extracted.as_of else None, answered=answered)


@router.get("/panel/sample")
def panel_sample(_principal: Clinical) -> dict[str, Any]:
    """A synthetic patient's FHIR Bundle (Patient, Observations, medication) to try the panel with."""
    return risk.sample_bundle()


@router.get("")
def list_methods(engine: EngineDep, _principal: Clinical) -> list[MethodInfo]:
    """Equations and risk models, with their inputs, units and validated ranges."""
    return [
        MethodInfo(
            name=name, title=equation.title, source=equation.source, kind=method.kind.value,
            score_unit=equation.score_unit,
            fields=[{"name": f.name, "unit": f.unit, "description": f.description, "kind": f.kind.value,
                     "valid": f.valid, "categories": list(f.categories), "required": f.required}
                    for f in equation.fields],
        )  # fmt: skip
        for name, (equation, method) in sorted(engine.risk_methods().items())
    ]


def _reject_non_finite(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInputError(f"{name} must be a finite number", code="not_finite")
        if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            raise InvalidInputError(f"{name} must be a finite number, got {value!r}", code="not_finite")


@router.post("/{score}")
def score(score: str, request: RiskRequest, http: Request, state: StateDep, engine: EngineDep,
          principal: Clinical) -> RiskResponse:  # fmt: skip
    """Score one patient with an equation or risk model; the result is stored and audited."""
    if request.subject:
        enforce_patient_scope(state, http, principal, request.subject)
    _reject_non_finite(request.inputs)
    inputs = {k: v.model_dump() if isinstance(v, StatedValue) else v for k, v in request.inputs.items()}
    released = risk.score(engine, score, inputs, subject=request.subject, actor=principal.actor)
    return RiskResponse(result_id=released.result_id, result=released.result)


@router.post("/{score}/fhir", response_model=dict[str, Any])
def score_fhir(
    score: str,
    bundle: Annotated[dict[str, Any], Body(description="FHIR R4 Bundle with a Patient and Observations")],
    http: Request, state: StateDep, engine: EngineDep, principal: Clinical,
    bp_treated: bool | None = None, diabetes: bool | None = None, statin: bool | None = None,
    race: str | None = None, as_of: AsOf = None,
) -> dict[str, Any]:  # fmt: skip
    """Score the patient in a FHIR Bundle and answer with a FHIR RiskAssessment (stored and audited).

    Facts no Observation carries come as query parameters (``bp_treated``, ``diabetes``, ``statin``, ``race``).
    """
    extracted = _read(bundle, engine, as_of)
    enforce_patient_scope(state, http, principal, extracted.patient_reference or "")
    overrides = {k: v for k, v in {"bp_treated": bp_treated, "diabetes": diabetes, "statin": statin,
                                   "race": race}.items() if v is not None}  # fmt: skip
    return risk.score_bundle(engine, score, extracted, overrides, actor=principal.actor)


@router.post("/{score}/jobs", status_code=202, openapi_extra={
    "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string",
                                                                          "minLength": 1}}}}})  # fmt: skip
async def submit_cohort(score: str, request: Request, state: StateDep, engine: EngineDep,
                        principal: Clinical) -> JSONResponse:  # fmt: skip
    """Queue a cohort CSV (one column per input field) for scoring; answers 202 with the job id."""
    refuse_patient_scoped(state, request, principal, "a cohort file")
    engine.risk_method(score)
    if not request.headers.get("content-type", "").startswith("text/csv"):
        raise UnsupportedMediaTypeError("send the cohort as text/csv")
    uploads = engine.settings.data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    name = uuid.uuid4().hex
    source, target = uploads / f"{name}.csv", uploads / f"{name}-scored.parquet"
    with discarded_on_failure(source):
        await save_upload(request, source, what="cohort file")
        job_id = cohort.queue_cohort(engine, score, source, target, actor=principal.actor)
    return JSONResponse({"job_id": job_id, "state": QUEUED.value}, status_code=202,
                        headers={"Location": f"/v1/jobs/{job_id}"})  # fmt: skip
