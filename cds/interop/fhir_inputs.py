"""Risk-equation inputs from a FHIR R4 Bundle of Patient, Observations and Conditions.

Only resources about the Bundle's Patient are read: one whose subject names another patient (or anything else) is
left out and named in a warning, as is an Observation dated after the evaluation date. Observations are matched by
LOINC code and converted to each equation's units (UCUM); for each field the most recent observation wins. Patient
gives age (at the evaluation date) and sex; the US Core race extension gives race. Diabetes is taken as present when
the Bundle holds an active diabetes Condition (SNOMED CT or ICD-10); absence of such a Condition is *not* taken as
absence of diabetes: pass ``overrides={"diabetes": False}`` to state it, as for ``bp_treated``, which no Observation
carries. The Bundle is validated with ``fhir.resources`` (R4B models, which read R4 Patient, Observation and
Condition resources) before anything is read from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cds.errors import InvalidInputError, MissingDependencyError
from cds.interop.units import Quantity, to_canonical

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = ("http://hl7.org/fhir/sid/icd-10", "http://hl7.org/fhir/sid/icd-10-cm")
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"

# LOINC code -> (field, quantity)
OBSERVATION_CODES: dict[str, tuple[str, Quantity]] = {
    "8480-6": ("systolic_bp", Quantity.PRESSURE),
    "8462-4": ("diastolic_bp", Quantity.PRESSURE),
    "2093-3": ("total_cholesterol", Quantity.CHOLESTEROL),
    "2085-9": ("hdl_cholesterol", Quantity.CHOLESTEROL),
    "2160-0": ("creatinine", Quantity.CREATININE),
    "38483-4": ("creatinine", Quantity.CREATININE),
    "39156-5": ("bmi", Quantity.BMI),
    "8280-0": ("waist_cm", Quantity.LENGTH),
    "9318-7": ("uacr", Quantity.ACR),
    "14959-1": ("uacr", Quantity.ACR),
    "4548-4": ("hba1c", Quantity.HBA1C),
    "98979-8": ("egfr", Quantity.EGFR),  # eGFR by CKD-EPI 2021 (creatinine)
    "62238-1": ("egfr", Quantity.EGFR),  # eGFR by CKD-EPI (creatinine)
}
SMOKING_STATUS = "72166-2"
CURRENT_SMOKER = {"449868002", "428041000124106", "77176002", "65568007", "428071000124103", "428061000124105"}
NOT_SMOKER = {"8517006", "266919005"}
DIABETES_SNOMED = {"73211009", "44054006", "46635009", "11530004"}
DIABETES_ICD10 = ("E10", "E11", "E13", "E14")
RACE_CODES = {"2106-3": "white", "2054-5": "african_american"}
ATC = "http://www.whocc.no/atc"
ANTIHYPERTENSIVE_ATC = ("C02", "C03", "C07", "C08", "C09")
STATIN_ATC = ("C10AA", "C10BA", "C10BX")
DIABETES_HBA1C = 6.5  # %, ADA diagnostic threshold: at or above it, absence of a diagnosis is not read as "no"


@dataclass
class FhirInputs:
    """Values extracted from a Bundle, in equation units, and the resources each came from."""

    values: dict[str, object] = field(default_factory=dict)
    basis: dict[str, str] = field(default_factory=dict)  # field -> "Observation/<id>"
    observed: dict[str, dt.date] = field(default_factory=dict)  # field -> date of the Observation used
    patient_reference: str | None = None
    effective: dt.date | None = None
    warnings: list[str] = field(default_factory=list)  # resources left out, and why


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
    bundle: Mapping[str, Any], *, as_of: dt.date | None = None, complete_lists: bool = False
) -> FhirInputs:
    """Extract inputs from a FHIR Bundle (JSON as a mapping).

    Args:
        bundle: A ``Bundle`` resource with a ``Patient`` and ``Observation``/``Condition``/``MedicationRequest``/
            ``MedicationStatement`` entries.
        as_of: Date at which age is computed; default the most recent Observation's date, else today.
        complete_lists: The Conditions and medications are the patient's complete active lists (a CDS Hooks
            prefetch or search), so absence can be read as "no": no diabetes when no active diabetes Condition and
            no HbA1c >= 6.5 %; not on antihypertensives / statins when every active medication has an ATC code
            and none is in the class. Without it, only presence is ever concluded.

    Raises:
        InvalidInputError: Not a valid FHIR Bundle, no Patient, or a quantity in a unit that cannot be converted.
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
    out = FhirInputs()
    names = _patient_names(patients[0])
    today = as_of or dt.date.today()
    latest: dict[str, dt.datetime] = {}
    medications: list[Any] = []
    for resource in _about_patient([entry.resource for entry in entries], names, out):
        kind = resource.get_resource_type()
        if kind == "Observation":
            if _effective(resource).date() > today:
                out.warnings.append(f"Observation/{resource.id} is dated after {today.isoformat()} and was ignored")
                continue
            _read_observation(resource, out, latest)
        elif kind == "Condition" and _is_active_diabetes(resource):
            out.values["diabetes"] = True
            out.basis["diabetes"] = f"Condition/{resource.id}"
        elif kind in ("MedicationRequest", "MedicationStatement") and resource.status == "active":
            medications.append(resource)
    _read_medications(medications, out, complete_lists)
    hba1c = out.values.get("hba1c")
    below_threshold = not isinstance(hba1c, float) or hba1c < DIABETES_HBA1C
    if complete_lists and "diabetes" not in out.values and below_threshold:
        out.values["diabetes"] = False
    dated = {name: when.date() for name, when in latest.items() if when > dt.datetime.min.replace(tzinfo=dt.UTC)}
    out.observed = {name: day for name, day in dated.items() if name in out.values}
    if latest:
        out.effective = max(latest.values()).date()
    _read_patient(patients[0].resource, out, as_of or out.effective or dt.date.today())
    return out


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
    if patient.gender in ("female", "male"):
        out.values["sex"] = patient.gender
    age = _age(patient.birthDate, as_of)
    if age is not None:
        out.values["age"] = age
    for extension in patient.extension or []:
        if extension.url != US_CORE_RACE:
            continue
        for part in extension.extension or []:
            coding = part.valueCoding
            if part.url == "ombCategory" and coding is not None and coding.code in RACE_CODES:
                out.values["race"] = RACE_CODES[coding.code]
        out.values.setdefault("race", "other")


def _age(born: dt.date | str | None, as_of: dt.date) -> int | None:
    """Age in whole years at ``as_of``, or None.

    A partial birth date (``YYYY`` or ``YYYY-MM``, which FHIR allows) gives an age only when every day it may stand
    for gives the same one: an age is never guessed.
    """
    if born is None:
        return None
    if isinstance(born, dt.date):
        first = last = born
    else:
        year, _, month = str(born).partition("-")
        if not year.isdigit() or not 1 <= int(year) <= 9998 or (month and not month[:2].isdigit()):
            return None
        low, high = (int(month[:2]),) * 2 if month else (1, 12)
        if not 1 <= low <= 12:
            return None
        first = dt.date(int(year), low, 1)
        last = (dt.date(int(year) + high // 12, high % 12 + 1, 1) - dt.timedelta(days=1))
    ages = {as_of.year - d.year - ((as_of.month, as_of.day) < (d.month, d.day)) for d in (first, last)}
    return ages.pop() if len(ages) == 1 else None


def _read_observation(observation: Any, out: FhirInputs, latest: dict[str, dt.datetime]) -> None:
    if observation.status in ("entered-in-error", "cancelled"):
        return
    when = _effective(observation)
    reference = f"Observation/{observation.id}"
    parts = [(observation.code, observation.valueQuantity, observation.valueCodeableConcept)]
    parts += [(c.code, c.valueQuantity, c.valueCodeableConcept) for c in (observation.component or [])]
    for code, quantity, concept in parts:
        for loinc in _codes(code, LOINC):
            if loinc == SMOKING_STATUS and concept is not None:
                smoker = _smoking(concept)
                if smoker is not None and _newer("smoker", when, latest):
                    out.values["smoker"], out.basis["smoker"] = smoker, reference
            elif loinc in OBSERVATION_CODES and quantity is not None and quantity.value is not None:
                name, kind = OBSERVATION_CODES[loinc]
                unit = quantity.code or quantity.unit or ""
                value = to_canonical(float(quantity.value), unit, kind)
                if _newer(name, when, latest):
                    out.values[name], out.basis[name] = value, reference


def _effective(observation: Any) -> dt.datetime:
    value = observation.effectiveDateTime or (observation.effectivePeriod and observation.effectivePeriod.end)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=value.tzinfo or dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return dt.datetime.min.replace(tzinfo=dt.UTC)


def _newer(name: str, when: dt.datetime, latest: dict[str, dt.datetime]) -> bool:
    if name in latest and latest[name] > when:
        return False
    latest[name] = when
    return True


def _codes(concept: Any, system: str) -> list[str]:
    return [c.code for c in (concept.coding or []) if c.system == system and c.code] if concept else []


def _smoking(concept: Any) -> bool | None:
    codes = set(_codes(concept, SNOMED))
    if codes & CURRENT_SMOKER:
        return True
    if codes & NOT_SMOKER:
        return False
    return None  # unknown status: left missing


def _is_active_diabetes(condition: Any) -> bool:
    status = _codes(condition.clinicalStatus, "http://terminology.hl7.org/CodeSystem/condition-clinical")
    if status and status[0] not in ("active", "recurrence", "relapse"):
        return False
    if set(_codes(condition.code, SNOMED)) & DIABETES_SNOMED:
        return True
    return any(code.startswith(DIABETES_ICD10) for system in ICD10 for code in _codes(condition.code, system))


def _read_medications(medications: list[Any], out: FhirInputs, complete_lists: bool) -> None:
    """``bp_treated`` and ``statin`` from active medications, classified by ATC code."""
    classified = True
    for medication in medications:
        codes = _codes(getattr(medication, "medicationCodeableConcept", None), ATC)
        if not codes:
            classified = False
            continue
        reference = f"{medication.get_resource_type()}/{medication.id}"
        if any(code.startswith(ANTIHYPERTENSIVE_ATC) for code in codes):
            out.values["bp_treated"], out.basis["bp_treated"] = True, reference
        if any(code.startswith(STATIN_ATC) for code in codes):
            out.values["statin"], out.basis["statin"] = True, reference
    if complete_lists and classified:
        out.values.setdefault("bp_treated", False)
        out.values.setdefault("statin", False)
