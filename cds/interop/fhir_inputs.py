"""Risk-equation inputs from a FHIR R4 Bundle: a Patient and their Observations, Conditions, Procedures and medicines.

Only resources about the Bundle's Patient are read: one whose subject names another patient (or anything else) is
left out and named in a warning, as is an Observation dated after the evaluation date (``as_of``, default today;
age is computed at it too). Observations are matched by LOINC code (:mod:`cds.interop.clinical_codes`) and
converted to each equation's units (UCUM); all of an input's readings are then resolved to one value
(:mod:`cds.interop.record_readings`: the last visit's mean blood pressure, same-day conflicts left out and named,
stale inputs marked). Patient gives age (bounded when the birth date is partial, :mod:`cds.interop.record_dates`)
and sex; the US Core race extension gives race. Diabetes is present with an active diabetes Condition (ICD-10 of
any edition, SNOMED CT) or laboratory results that meet the diagnostic criteria on two days
(:mod:`cds.interop.record_conditions`); absence of both is *not* taken as absence of diabetes unless the lists are
complete (``complete_lists``) or ``overrides={"diabetes": False}`` states it, as for ``bp_treated``. Established
ASCVD (a Condition of any clinical status, or a completed revascularisation Procedure) is collected as evidence:
primary-prevention equations do not apply to such a patient. When no eGFR is recorded it is computed from
creatinine with CKD-EPI 2021, and the result says so. A value that cannot be read (a unit that cannot be converted)
leaves only its own input missing, with the reason in ``problems``. The Bundle is validated with ``fhir.resources``
(R4B models, which read R4 resources) before anything is read from it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cds.errors import InvalidInputError, MissingDependencyError
from cds.interop import findrisc_questionnaire
from cds.interop.clinical_codes import (
    ANTIHYPERTENSIVE_ATC,
    ATC,
    CURRENT_SMOKER,
    LOINC,
    NOT_SMOKER,
    OBSERVATION_CODES,
    SMOKING_STATUS,
    SNOMED,
    STATIN_ATC,
    codes,
    plausible_limits,
)
from cds.interop.record_conditions import GUIDELINE, ascvd_evidence, diabetes_condition, diabetes_from_labs
from cds.interop.record_dates import age_at, instant
from cds.interop.record_readings import UNDATED, Reading, resolve
from cds.interop.units import to_canonical, unit_code

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
RACE_CODES = {"2106-3": "white", "2054-5": "african_american"}
EGFR_DERIVED = "CKD-EPI 2021 (creatinine)"


@dataclass(frozen=True)
class PatientIdentity:
    """Who a record is about: the name as the record writes it, identifiers as ``system|value``, birth date, gender."""

    name: str | None
    identifiers: tuple[str, ...]
    birth_date: str | None
    gender: str | None


def _name_of(patient: Any) -> str | None:
    """The official (else usual, else first) name: its text, else family and given names (no space between CJK)."""
    names = patient.name or []
    chosen = next((n for use in ("official", "usual") for n in names if n.use == use), names[0] if names else None)
    if chosen is None:
        return None
    if chosen.text:
        return str(chosen.text)
    parts = [str(chosen.family or ""), *(str(g) for g in chosen.given or [])]
    cjk = any("\u4e00" <= c <= "\u9fff" for c in "".join(parts))
    return ("" if cjk else " ").join(p for p in parts if p) or None


def patient_identity(patient: Any) -> PatientIdentity:
    """The Patient resource's identity, for the views that show whose data they are."""
    identifiers = tuple(f"{i.system}|{i.value}" if i.system else str(i.value)
                        for i in patient.identifier or [] if i.value)  # fmt: skip
    return PatientIdentity(name=_name_of(patient), identifiers=identifiers,
                           birth_date=str(patient.birthDate) if patient.birthDate else None,
                           gender=str(patient.gender) if patient.gender else None)  # fmt: skip


@dataclass
class FhirInputs:
    """Values extracted from a Bundle, in equation units, where each came from, and what to say about them.

    Attributes:
        values: Input field -> value, in the equation's unit.
        basis: Input field -> the resource it came from (``Observation/<id>``, ``Condition/<id>``, ...).
        units: Input field -> the UCUM unit its readings arrived in, when they all came in one (shown in it).
        observed: Input field -> date of the reading used.
        patient_reference: ``Patient/<id>`` of the Bundle's patient.
        effective: Date of the most recent reading used.
        as_of: The evaluation date (age is computed at it; later readings are ignored).
        warnings: What reading the record left out (another subject's resources, future dates), for every result.
        notes: Input field -> caveats for results that use it (stale, averaged, approximate, derived).
        problems: Input field -> why it could not be used (conflicting readings, unconvertible unit, unconfirmed
            diagnosis); the field is then missing, and only the results that need it say so.
        ascvd: Evidence of established atherosclerotic cardiovascular disease.
        patient: Whose record it is, as the clinician must see it (name, identifiers, birth date, gender): shown,
            never used in a score and never logged.
    """

    values: dict[str, object] = field(default_factory=dict)
    basis: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    observed: dict[str, dt.date] = field(default_factory=dict)
    patient_reference: str | None = None
    effective: dt.date | None = None
    as_of: dt.date | None = None
    warnings: list[str] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    ascvd: list[str] = field(default_factory=list)
    patient: PatientIdentity | None = None

    def note(self, name: str, text: str) -> None:
        """Attach a caveat to input ``name``."""
        self.notes.setdefault(name, []).append(text)

    def caveats(self, names: Iterable[str]) -> list[str]:
        """The record-wide warnings and the notes of the given input fields, in that order."""
        return [*self.warnings, *(text for name in names for text in self.notes.get(name, ()))]


def _bundle_model() -> Any:
    try:
        from fhir.resources.R4B.bundle import Bundle
    except ImportError as exc:
        raise MissingDependencyError("FHIR input needs fhir.resources: pip install fhir.resources") from exc
    return Bundle


def _known_types(bundle: Mapping[str, Any]) -> None:
    """Refuse entries whose ``resourceType`` FHIR R4 does not define (``unknown_resource_type``), naming them."""
    from fhir.resources.R4B import get_fhir_model_class

    entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
    unknown = set()
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, Mapping) else None
        kind = resource.get("resourceType") if isinstance(resource, Mapping) else None
        if isinstance(kind, str):
            try:
                get_fhir_model_class(kind)
            except (ValueError, KeyError):
                unknown.add(kind[:64])
    if unknown:
        raise InvalidInputError("the Bundle holds resource types FHIR R4 does not define: "
                                f"{', '.join(sorted(unknown))}", code="unknown_resource_type")


def parse_bundle(
    bundle: Mapping[str, Any], *, as_of: dt.date | None = None, complete_lists: bool = False,
    stale_days: Mapping[str, int] | None = None,
) -> FhirInputs:  # fmt: skip
    """Extract inputs from a FHIR Bundle (JSON as a mapping).

    Args:
        bundle: A ``Bundle`` resource with a ``Patient`` and ``Observation``/``Condition``/``Procedure``/
            ``MedicationRequest``/``MedicationStatement`` entries.
        as_of: The evaluation date: age is computed at it and later readings are ignored; default today (UTC).
        complete_lists: The Conditions and medications are the patient's complete active lists (a CDS Hooks
            prefetch or search), so absence can be read as "no": no diabetes when no diabetes Condition and no
            laboratory result at the diagnostic threshold; not on antihypertensives / statins when every active
            medication has an ATC code and none is in the class. Without it, only presence is ever concluded.
        stale_days: Per-input staleness limits in days, over the documented defaults.

    Raises:
        InvalidInputError: Not a valid FHIR Bundle, or not exactly one Patient.
    """
    _known_types(bundle)
    try:
        model = _bundle_model().model_validate(dict(bundle))
    except ValidationError as exc:
        raise InvalidInputError(f"not a valid FHIR R4 Bundle: {str(exc)[:500]}", code="invalid_fhir") from None
    except Exception as exc:  # noqa: BLE001 - fhir.resources' own validators fail on some malformed input with
        # AttributeError, TypeError, KeyError ... (an extension of a primitive that is a number, ...): not valid FHIR
        raise InvalidInputError(f"not a valid FHIR R4 Bundle ({type(exc).__name__}: {str(exc)[:300]})",
                                code="invalid_fhir") from None
    entries = [entry for entry in (model.entry or []) if entry.resource is not None]
    patients = [entry for entry in entries if entry.resource.get_resource_type() == "Patient"]
    if len(patients) != 1:
        raise InvalidInputError(f"the Bundle must hold exactly one Patient, found {len(patients)}", code="invalid_fhir")
    today = as_of or dt.datetime.now(dt.UTC).date()
    out = FhirInputs(as_of=today)
    readings: dict[str, list[Reading]] = defaultdict(list)
    unreadable: dict[str, str] = {}
    medications: list[Any] = []
    questionnaires: list[Any] = []
    future: list[str] = []
    for resource in _about_patient([entry.resource for entry in entries], _patient_names(patients[0]), out):
        kind = resource.get_resource_type()
        if kind == "Observation":
            if _effective(resource) != UNDATED and _effective(resource).date() > today:
                future.append(f"Observation/{resource.id}")
                continue
            _read_observation(resource, readings, unreadable)
        elif kind in ("Condition", "Procedure"):
            _read_diagnosis(resource, out)
        elif kind in ("MedicationRequest", "MedicationStatement") and resource.status == "active":
            medications.append(resource)
        elif kind == "QuestionnaireResponse" and findrisc_questionnaire.is_findrisc(resource):
            questionnaires.append(resource)
    if future:
        out.warnings.append(f"{len(future)} Observation(s) dated after {today.isoformat()} ignored: "
                            + ", ".join(future[:10]) + (" ..." if len(future) > 10 else ""))
    _read_medications(medications, out, complete_lists)
    _read_questionnaire(questionnaires, out)
    _resolve_readings(readings, unreadable, out, stale_days)
    _diabetes_from_labs(readings, out, complete_lists)
    if out.observed:
        out.effective = max(out.observed.values())
    _read_patient(patients[0].resource, out, today)
    _derive_egfr(out)
    return out


def _resolve_readings(readings: Mapping[str, list[Reading]], unreadable: Mapping[str, str], out: FhirInputs,
                      stale_days: Mapping[str, int] | None) -> None:  # fmt: skip
    """One value per input from its readings; conflicts and unreadable values become that input's problem."""
    assert out.as_of is not None
    limits = plausible_limits()
    for name, found in readings.items():
        resolved = resolve(name, found, out.as_of, stale_days, limits.get(name))
        for text in resolved.notes:
            out.note(name, text)
        if resolved.value is None:
            out.problems[name] = resolved.problem
            continue
        out.values[name], out.basis[name] = resolved.value, resolved.reference
        if resolved.unit:
            out.units[name] = resolved.unit
        if resolved.day is not None:
            out.observed[name] = resolved.day
    for name, reason in unreadable.items():
        if name not in out.values:
            out.problems.setdefault(name, reason)
        else:
            out.warnings.append(reason)


def _read_questionnaire(responses: list[Any], out: FhirInputs) -> None:
    """FINDRISC answers from the newest completed response to cds's FINDRISC Questionnaire."""
    if not responses:
        return
    newest = max(responses, key=findrisc_questionnaire.authored)
    found, unreadable = findrisc_questionnaire.answers(newest)
    out.warnings.extend(unreadable)
    for name, value in found.items():
        if name == "bp_treated" and name in out.values:
            continue  # an active medication list says more than a questionnaire
        out.values[name], out.basis[name] = value, f"QuestionnaireResponse/{newest.id}"


def _read_diagnosis(resource: Any, out: FhirInputs) -> None:
    """Diabetes (active Condition) and established ASCVD (Condition of any status, completed Procedure)."""
    if resource.get_resource_type() == "Condition":
        diabetes = diabetes_condition(resource)
        if diabetes is not None and out.values.get("diabetes") is not True:
            out.values["diabetes"], out.basis["diabetes"] = True, diabetes.reference
            out.note("diabetes", f"diabetes from a recorded diagnosis: {diabetes}")
    ascvd = ascvd_evidence(resource)
    if ascvd is not None:
        out.ascvd.append(str(ascvd))


def _diabetes_from_labs(readings: Mapping[str, list[Reading]], out: FhirInputs, complete_lists: bool) -> None:
    """Diabetes from laboratory criteria when no diagnosis is recorded; "no" only from complete lists."""
    if out.values.get("diabetes") is True:
        return
    labs = diabetes_from_labs(readings)
    if labs is None:
        if complete_lists and "diabetes" not in out.values:
            out.values["diabetes"] = False
        return
    if labs.confirmed:
        out.values["diabetes"], out.basis["diabetes"] = True, labs.reference
        out.note("diabetes", f"diabetes from laboratory results ({GUIDELINE} criteria, met on two days): "
                 + labs.describe())
    else:
        out.values.pop("diabetes", None)
        out.problems["diabetes"] = (f"diabetes unconfirmed: {labs.describe()} meets a diagnostic threshold of the "
                                    f"{GUIDELINE} on one day only; it asks for a repeat test on another day (or "
                                    "record the diagnosis)")


def _derive_egfr(out: FhirInputs) -> None:
    """Compute eGFR from creatinine, age and sex (CKD-EPI 2021) when the record holds no usable eGFR."""
    needed = ("creatinine", "age", "sex")
    if "egfr" in out.values or "egfr" in out.problems or any(out.values.get(n) is None for n in needed):
        return
    from cds.models.risk import get_equation  # the kidney equation, not an import at module load

    try:
        egfr = get_equation("ckd_epi_2021").evaluate({n: out.values[n] for n in needed}).score[0]
    except InvalidInputError:
        return  # an impossible creatinine or age: the cards that use them say so
    if egfr != egfr:  # NaN: outside the equation's validated range
        return
    out.values["egfr"] = float(egfr)
    out.basis["egfr"] = out.basis["creatinine"]
    if "creatinine" in out.observed:
        out.observed["egfr"] = out.observed["creatinine"]
    out.note("egfr", f"eGFR {egfr:.0f} mL/min/1.73 m² computed from creatinine ({out.basis['creatinine']}) with "
             f"{EGFR_DERIVED}: no eGFR is recorded")
    out.notes["egfr"].extend(out.notes.get("creatinine", ()))


def _patient_names(entry: Any) -> set[str]:
    """How resources may name the Bundle's Patient: ``Patient/<id>``, its entry's fullUrl, or a URL ending so."""
    patient = entry.resource
    names = {f"Patient/{patient.id}"} if patient.id else set()
    if entry.fullUrl:
        names.add(str(entry.fullUrl))
    return names


def _about_patient(resources: list[Any], names: set[str], out: FhirInputs) -> list[Any]:
    """The resources that are about the Bundle's Patient.

    Those whose subject names anyone else are left out, each named in a warning (another patient's blood pressure
    must never change this one's risk). A resource without a subject is taken as the Bundle's patient's: the Bundle
    is that patient's record.
    """
    kept, foreign = [], []
    for resource in resources:
        subject = getattr(resource, "subject", None)
        reference = str(subject.reference) if subject is not None and subject.reference else None
        if reference is None or reference in names or any(reference.endswith(f"/{n}") for n in names
                                                          if n.startswith("Patient/")):
            kept.append(resource)
        else:
            foreign.append(f"{resource.get_resource_type()}/{resource.id}")
    if foreign:
        out.warnings.append(f"{len(foreign)} resource(s) about another subject ignored: {', '.join(foreign[:10])}"
                            + (" ..." if len(foreign) > 10 else ""))
    return kept


def _read_patient(patient: Any, out: FhirInputs, as_of: dt.date) -> None:
    out.patient_reference = f"Patient/{patient.id}" if patient.id else None
    out.patient = patient_identity(patient)
    if patient.gender in ("female", "male"):
        out.values["sex"] = patient.gender
    age = age_at(patient.birthDate, as_of)
    if age is not None:
        out.values["age"] = age.years
        if age.approximate:
            out.note("age", age.note(as_of))
    elif patient.birthDate is not None:
        out.problems["age"] = f"birthDate {str(patient.birthDate)!r} is after the evaluation date {as_of.isoformat()}"
    for extension in patient.extension or []:
        if extension.url != US_CORE_RACE:
            continue
        for part in extension.extension or []:
            coding = part.valueCoding
            if part.url == "ombCategory" and coding is not None and coding.code in RACE_CODES:
                out.values["race"] = RACE_CODES[coding.code]
        out.values.setdefault("race", "other")


def _read_observation(observation: Any, readings: dict[str, list[Reading]], unreadable: dict[str, str]) -> None:
    """Every usable value of the Observation (its own and its components') as a reading of its input."""
    if observation.status in ("entered-in-error", "cancelled"):
        return
    when = _effective(observation)
    reference = f"Observation/{observation.id}"
    parts = [(observation.code, observation.valueQuantity, observation.valueCodeableConcept)]
    parts += [(c.code, c.valueQuantity, c.valueCodeableConcept) for c in (observation.component or [])]
    for code, quantity, concept in parts:
        for loinc in codes(code, LOINC):
            if loinc == SMOKING_STATUS and concept is not None:
                smoker = _smoking(concept)
                if smoker is not None:
                    readings["smoker"].append(Reading(when, smoker, reference))
            elif loinc in OBSERVATION_CODES and quantity is not None and quantity.value is not None:
                measure = OBSERVATION_CODES[loinc]
                unit = quantity.code or quantity.unit or ""
                try:
                    value = to_canonical(float(quantity.value), str(unit), measure.quantity)
                except InvalidInputError as exc:
                    unreadable[measure.field] = f"{reference} not used: {exc}"
                    continue
                readings[measure.field].append(Reading(when, value, reference, unit_code(str(unit))))


def _effective(observation: Any) -> dt.datetime:
    value = observation.effectiveDateTime or (observation.effectivePeriod and observation.effectivePeriod.end)
    return instant(value) or UNDATED


def _smoking(concept: Any) -> bool | None:
    found = set(codes(concept, SNOMED))
    if found & CURRENT_SMOKER:
        return True
    if found & NOT_SMOKER:
        return False
    return None  # unknown status: left missing


def _read_medications(medications: list[Any], out: FhirInputs, complete_lists: bool) -> None:
    """``bp_treated`` and ``statin`` from active medications, classified by ATC code."""
    classified = True
    for medication in medications:
        atc = codes(getattr(medication, "medicationCodeableConcept", None), ATC)
        if not atc:
            classified = False
            continue
        reference = f"{medication.get_resource_type()}/{medication.id}"
        if any(code.startswith(ANTIHYPERTENSIVE_ATC) for code in atc):
            out.values["bp_treated"], out.basis["bp_treated"] = True, reference
        if any(code.startswith(STATIN_ATC) for code in atc):
            out.values["statin"], out.basis["statin"] = True, reference
    if complete_lists and classified:
        out.values.setdefault("bp_treated", False)
        out.values.setdefault("statin", False)
