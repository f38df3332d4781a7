"""Score and release risk results: one patient from fields or a FHIR Bundle, or a patient's whole panel.

Releasing is one step wherever a score comes from (the risk API, the panel, CDS Hooks): the result is stored with
its ``result.create`` audit event in one transaction before anyone sees it (:func:`release`), and counted in the
engine's metrics. Nothing here knows HTTP; a caller's right to the patient is checked before these are called.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cds.errors import InvalidInputError, NotFoundError
from cds.interop.cds_hooks import merge_prefetch
from cds.interop.fhir_inputs import FhirInputs
from cds.interop.fhir_risk import risk_assessment
from cds.interop.units import FIELD_QUANTITIES, to_canonical, unit_hint
from cds.models.risk import RiskEquation
from cds.models.risk.base import RiskPopulation, display_unit
from cds.pipelines.risk.equation import EquationPipeline
from cds.pipelines.risk.panel import assess_patient
from cds.results.risk import MethodRef, PanelEntry, RiskResult
from cds.services.engine import Engine
from cds.settings import REPO_ROOT
from cds.store.audit import Actor
from cds.store.results import release_result

RISK = "risk"  # the kind of stored risk results
SAMPLES = REPO_ROOT / "samples"
BUNDLE, HOOK_REQUEST = "fhir-bundle-risk.json", "cds-hooks-patient-view.json"


@dataclass(frozen=True)
class Released:
    """A stored result's id and the result."""

    result_id: str
    result: RiskResult


@dataclass(frozen=True)
class ReleasedEntry:
    """A panel topic, and the id its result was stored under (``None`` when the topic could not be scored)."""

    entry: PanelEntry
    result_id: str | None


def release(session: Session, result: RiskResult, *, subject: str, actor: Actor) -> str:
    """Store ``result`` and its audit event in the caller's transaction; return the result id."""
    return release_result(session, kind=RISK, subject=subject, method=result.method.key,
                          input_sha256=result.input_sha256, payload=result.model_dump(mode="json"),
                          actor=actor)  # fmt: skip


def _count(engine: Engine, results: Sequence[RiskResult]) -> None:
    for result in results:
        engine.metrics.count_scored(result.method.name, result.status.value)


def score(engine: Engine, method: str, inputs: Mapping[str, object], *, subject: str, actor: Actor) -> Released:
    """Score one patient's fields with the equation or risk model ``method``, then release the result.

    Raises:
        ModelNotFoundError: No such method. BackendUnavailableError: Its backend is down.
        InvalidInputError: Missing or impossible inputs.
    """
    equation, ref = engine.risk_method(method)
    pipeline = EquationPipeline(equation, ref, population=engine.settings.risk_population)
    result = pipeline(in_equation_units(equation, inputs))
    result_id = engine.database.write(lambda session: release(session, result, subject=subject, actor=actor))
    _count(engine, [result])
    return Released(result_id, result)


def in_equation_units(equation: RiskEquation, inputs: Mapping[str, object]) -> dict[str, object]:
    """``inputs`` with every ``{"value": v, "unit": u}`` converted to the field's unit.

    A bare number is taken in the field's own unit; when it is impossible there but possible in another unit of
    the same quantity, the error says which (``5.2`` cholesterol looks like mmol/L).

    Raises:
        InvalidInputError: ``unsupported_unit`` (a unit the field cannot be converted from, or a unit on a field
            that is not a measurement), or ``impossible_value`` with the unit hint.
    """
    converted: dict[str, object] = {}
    for name, value in inputs.items():
        if isinstance(value, Mapping):
            quantity = FIELD_QUANTITIES.get(name)
            if quantity is None:
                raise InvalidInputError(f"{name} is not a measured quantity and takes no unit", code="unsupported_unit")
            converted[name] = to_canonical(float(value["value"]), str(value["unit"]), quantity)
            continue
        converted[name] = value
        spec = next((f for f in equation.fields if f.name == name), None)
        if spec is None or spec.plausible is None or isinstance(value, bool) or not isinstance(value, int | float):
            continue
        low, high = spec.plausible
        if not low <= value <= high and (hint := unit_hint(name, float(value), spec.plausible)):
            raise InvalidInputError(f"{name} is impossible ({value:g}); allowed {low:g}-{high:g} "
                                    f"{display_unit(spec.unit)}{hint}", code="impossible_value")
    return converted


def with_input_warnings(result: RiskResult, extracted: FhirInputs) -> RiskResult:
    """``result`` carrying what reading the record left out and the caveats of the inputs it used.

    What was left out: another patient's resources, future dates. Caveats: stale, averaged, approximate age,
    derived eGFR, where diabetes came from.
    """
    caveats = extracted.caveats(result.inputs)
    if not caveats:
        return result
    return result.model_copy(update={"warnings": (*result.warnings, *caveats)})


def assess_record(extracted: FhirInputs, population: RiskPopulation) -> list[PanelEntry]:
    """Every topic of the panel for a patient read from FHIR, each result carrying its inputs' caveats."""
    entries = assess_patient(extracted.values, problems=extracted.problems, ascvd=extracted.ascvd,
                             diabetes_evidence=extracted.basis.get("diabetes", ""), population=population)
    return [replace(e, result=with_input_warnings(e.result, extracted)) if e.result is not None else e
            for e in entries]


def refuse_primary_prevention(equation: RiskEquation, extracted: FhirInputs) -> None:
    """Refuse a primary-prevention equation for a patient with established ASCVD.

    Raises:
        InvalidInputError: ``established_ascvd`` (422), naming the evidence.
    """
    if equation.primary_prevention and extracted.ascvd:
        raise InvalidInputError(
            f"{equation.name} is for primary prevention and the record shows established ASCVD "
            f"({'; '.join(extracted.ascvd[:5])}): the patient is at very high risk and managed for secondary "
            "prevention", code="established_ascvd")


def score_record(equation: RiskEquation, ref: MethodRef, extracted: FhirInputs, overrides: Mapping[str, object],
                 population: RiskPopulation) -> RiskResult:  # fmt: skip
    """One equation's result for a patient read from FHIR (``overrides`` state what no resource does).

    Raises:
        InvalidInputError: ``established_ascvd`` for a primary-prevention equation; missing or impossible inputs.
    """
    refuse_primary_prevention(equation, extracted)
    pipeline = EquationPipeline(equation, ref, population=population)
    return with_input_warnings(pipeline(extracted.values | dict(overrides)), extracted)


def score_bundle(engine: Engine, method: str, extracted: FhirInputs, overrides: Mapping[str, object], *,
                 actor: Actor) -> dict[str, Any]:  # fmt: skip
    """Score the patient read from a FHIR Bundle (``overrides`` state what no resource does); release the result.

    Returns:
        The FHIR RiskAssessment, its ``id`` the stored result's, its ``basis`` the resources the inputs came from.
    """
    equation, ref = engine.risk_method(method)
    subject = extracted.patient_reference or ""
    result = score_record(equation, ref, extracted, overrides, engine.settings.risk_population)
    basis = {k: v for k, v in extracted.basis.items() if k in result.inputs}
    resource = risk_assessment(result, outcome=equation.outcome, patient_reference=subject or None, basis=basis)
    resource["id"] = engine.database.write(lambda session: release(session, result, subject=subject, actor=actor))
    _count(engine, [result])
    return resource


def release_panel(session: Session, entries: Sequence[PanelEntry], *, subject: str,
                  actor: Actor) -> list[ReleasedEntry]:  # fmt: skip
    """Release each scored topic of a panel in the caller's transaction."""
    return [ReleasedEntry(entry, release(session, entry.result, subject=subject, actor=actor)
                          if entry.result is not None else None) for entry in entries]  # fmt: skip


def panel(engine: Engine, extracted: FhirInputs, *, actor: Actor) -> list[ReleasedEntry]:
    """Score every topic the patient's data allow (cardiovascular, diabetes, kidney); release each result.

    Raises:
        InvalidInputError: An impossible value (the field named).
    """
    entries = assess_record(extracted, engine.settings.risk_population)
    subject = extracted.patient_reference or ""
    released = engine.database.write(lambda session: release_panel(session, entries, subject=subject, actor=actor))
    _count(engine, [e.result for e in entries if e.result is not None])
    return released


def sample_bundle(folder: Path = SAMPLES, *, today: dt.date | None = None) -> dict[str, Any]:
    """A synthetic patient to try the panel with: the repository's FHIR samples merged into one Bundle.

    ``samples/fhir-bundle-risk.json`` (Patient and Observations) with the resources of
    ``samples/cds-hooks-patient-view.json``'s prefetch added (its active MedicationRequest, its Conditions), each
    ``resourceType/id`` once, the Bundle's own copy first. No real patient. Its dates (birth and observations) are
    moved together so that its newest reading is :data:`SAMPLE_AGE_DAYS` days before ``today`` (default: today),
    so the sample is always a recent record of a patient of the same age, whatever day it is tried.

    Raises:
        NotFoundError: ``sample_not_found`` (404) when the sample files are not there.
    """
    try:
        bundle = json.loads((folder / BUNDLE).read_text(encoding="utf-8"))
        hook = json.loads((folder / HOOK_REQUEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotFoundError(f"the sample patient is not available: {exc}", code="sample_not_found") from exc
    prefetched = merge_prefetch(hook.get("prefetch", {}))["entry"]
    resources = [entry["resource"] for entry in [*bundle.get("entry", []), *prefetched]]
    seen: set[tuple[str, str]] = set()
    entries = []
    for resource in resources:
        key = (str(resource.get("resourceType")), str(resource.get("id")))
        if key not in seen:
            seen.add(key)
            entries.append({"resource": resource})
    return _dated({"resourceType": "Bundle", "type": "collection", "entry": entries},
                  today or dt.datetime.now(dt.UTC).date())


SAMPLE_AGE_DAYS = 30
_DATED = ("birthDate", "effectiveDateTime", "authoredOn", "authored", "recordedDate", "onsetDateTime")


def _dated(bundle: dict[str, Any], today: dt.date) -> dict[str, Any]:
    """``bundle`` with every full date moved by one offset: the newest reading ``SAMPLE_AGE_DAYS`` before today."""
    resources = [entry["resource"] for entry in bundle["entry"]]
    readings = [dt.date.fromisoformat(r["effectiveDateTime"][:10]) for r in resources if "effectiveDateTime" in r]
    if not readings:
        return bundle
    shift = today - dt.timedelta(days=SAMPLE_AGE_DAYS) - max(readings)
    for resource in resources:
        for key in _DATED:
            value = resource.get(key)
            if isinstance(value, str) and len(value) >= 10:
                moved = dt.date.fromisoformat(value[:10]) + shift
                resource[key] = moved.isoformat() + value[10:]
    return bundle
