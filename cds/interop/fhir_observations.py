"""Observations as devices and wards send them, one by one or in a batch, transaction or collection Bundle.

Every Observation is checked on its own; one that cannot be used is refused with a reason and the rest are kept:

- it must name its patient (``Patient/<id>``, a URL ending so, or a Bundle entry's ``fullUrl`` of a Patient):
  ``missing_subject`` / ``unknown_subject``;
- it must say when it was measured, not later than now (a few minutes of clock skew allowed): ``missing_effective``
  / ``future_effective``; a date without a time is taken as midnight UTC;
- its status must not be ``entered-in-error`` or ``cancelled``: ``not_final``;
- its code must be one cds reads (LOINC as :mod:`cds.interop.clinical_codes` lists, oxygen flow or concentration,
  ACVPU): ``unrecognised_code``; its unit one the value can be converted from: ``unsupported_unit``; its value
  within physiological limits: ``impossible_value``.

Each value gets an idempotency key, a sha256 of the patient, the Observation's identity (its ``identifier``
system and value when it has one, else its ``id``, else its content) and the input: the same Observation sent
twice is the same row. The device is the Observation's ``device`` reference or display. A value was taken in the
clinic when the Observation names an encounter or a practitioner, their role, organisation or care team as
performer; every other value is a home reading (a home monitor, a wearable, the patient).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cds.errors import InvalidInputError
from cds.interop.clinical_codes import (
    ACVPU_SNOMED,
    ALERT_SNOMED,
    LOINC,
    OBSERVATION_CODES,
    OXYGEN_CONCENTRATION,
    OXYGEN_FLOW,
    RESPONSIVENESS_LOINC,
    SNOMED,
    codes,
    plausible_limits,
)
from cds.interop.record_dates import instant
from cds.interop.units import to_canonical

CLOCK_SKEW = dt.timedelta(minutes=5)
CLINIC, HOME = "clinic", "home"
PATIENT_REFERENCE = r"^Patient/[A-Za-z0-9\-.]{1,64}$"  # a relative reference by the FHIR id grammar
# FHIR R4 observation-status (a required binding), less the two that withdraw a value (refused as not_final)
OBSERVATION_STATUSES = {"registered", "preliminary", "final", "amended", "corrected", "unknown"}
CLINICAL_PERFORMERS = re.compile(r"(?:^|/)(?:Practitioner|PractitionerRole|Organization|CareTeam)/[^/]+$")
ACVPU_WORDS = {"alert": "alert", "confusion": "confusion", "confused": "confusion", "voice": "voice",
               "pain": "pain", "unresponsive": "unresponsive", "清醒": "alert", "意识模糊": "confusion",
               "对声音有反应": "voice", "对疼痛有反应": "pain", "无反应": "unresponsive"}  # fmt: skip
ACVPU_LETTERS = {"a": "alert", "c": "confusion", "v": "voice", "p": "pain", "u": "unresponsive"}


@dataclass(frozen=True)
class ObservedValue:
    """One value of one input, ready to store."""

    key: str
    patient: str
    field: str
    value: float | None  # numbers; booleans as 0/1
    text: str | None  # categories (ACVPU level)
    effective: dt.datetime
    source: str
    device: str
    setting: str = HOME  # "clinic" (an encounter or a practitioner performed it) or "home"


@dataclass(frozen=True)
class Refusal:
    """An Observation that was not used, and why."""

    source: str
    code: str
    reason: str


@dataclass
class ObservationBatch:
    """What a request held: the values to store and the Observations refused."""

    values: list[ObservedValue] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


class _RefusedError(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def read_observations(document: Mapping[str, Any], *, now: dt.datetime | None = None) -> ObservationBatch:
    """The values in an Observation or a Bundle of them, each checked on its own.

    Raises:
        InvalidInputError: ``invalid_fhir`` when the document is not a valid Observation or Bundle at all.
    """
    now = now or dt.datetime.now(dt.UTC)
    kind = document.get("resourceType") if isinstance(document, Mapping) else None
    if kind not in ("Bundle", "Observation"):
        raise InvalidInputError(f"expected a FHIR Observation or Bundle, got {str(kind)[:40]!r}", code="invalid_fhir")
    batch = ObservationBatch()
    if kind == "Observation":
        resources = [_validated(document, "Observation")]
        patients: dict[str, str] = {}
    else:
        entries = _bundle_entries(document)
        resources, patients = [], {}
        for index, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, Mapping) else None
            if not isinstance(resource, Mapping) or resource.get("resourceType") not in ("Observation", "Patient"):
                continue  # Device and other entries give context or nothing cds reads
            name = f"{resource.get('resourceType')}/{str(resource.get('id') or '')[:64] or f'entry {index}'}"
            try:
                parsed = _validated(resource, str(resource["resourceType"]))
            except InvalidInputError as exc:  # one bad entry is refused; the others are read
                batch.refused.append(Refusal(name, "invalid_fhir", exc.message))
                continue
            if parsed.get_resource_type() == "Patient":
                if entry.get("fullUrl") and parsed.id:
                    patients[str(entry["fullUrl"])] = f"Patient/{parsed.id}"
            else:
                resources.append(parsed)
    for resource in resources:
        source = f"Observation/{resource.id}" if resource.id else "Observation (no id)"
        try:
            batch.values.extend(_values(resource, source, patients, now))
        except _RefusedError as refusal:
            batch.refused.append(Refusal(source, refusal.code, refusal.reason))
    return batch


def _bundle_entries(document: Mapping[str, Any]) -> list[Any]:
    """The entries of a Bundle whose own fields are valid FHIR (each entry's resource is validated on its own).

    Raises:
        InvalidInputError: ``invalid_fhir`` when the Bundle itself is not valid.
    """
    from fhir.resources.R4B.bundle import Bundle

    entries = document.get("entry") or []
    if not isinstance(entries, list):
        raise InvalidInputError("not a valid FHIR R4 Bundle: entry is not a list", code="invalid_fhir")
    shell = {key: value for key, value in document.items() if key != "entry"}
    try:
        Bundle.model_validate(shell)
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InvalidInputError(f"not a valid FHIR R4 Bundle: {str(exc)[:400]}", code="invalid_fhir") from None
    return entries


def _validated(resource: Mapping[str, Any], kind: str) -> Any:
    """``resource`` parsed as a FHIR R4 ``kind`` (Observation or Patient).

    Raises:
        InvalidInputError: ``invalid_fhir``, with the validator's first words.
    """
    from fhir.resources.R4B.observation import Observation
    from fhir.resources.R4B.patient import Patient

    model: Any = {"Observation": Observation, "Patient": Patient}[kind]
    try:
        return model.model_validate(dict(resource))
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InvalidInputError(f"not a valid FHIR R4 {kind}: {str(exc)[:400]}", code="invalid_fhir") from None


def _patient(resource: Any, patients: Mapping[str, str]) -> str:
    reference = str(resource.subject.reference) if resource.subject and resource.subject.reference else ""
    if not reference:
        raise _RefusedError("missing_subject", "the Observation names no patient (subject)")
    found = patient_of(reference, patients)
    if found is None:
        raise _RefusedError("unknown_subject", f"the subject {reference[:80]!r} is not a Patient")
    return found


def patient_of(reference: str, patients: Mapping[str, str] | None = None) -> str | None:
    """``Patient/<id>`` from a subject reference; ``None`` when it names no Patient.

    The reference may be relative, an absolute URL ending so, or a Bundle entry's fullUrl in ``patients``
    (fullUrl: ``Patient/<id>``).
    """
    if patients and reference in patients:
        return patients[reference]
    head, _, tail = reference.rpartition("Patient/")
    if tail and "/" not in tail and (not head or head.endswith("/")):
        return f"Patient/{tail}"
    return None


def _effective(resource: Any, now: dt.datetime) -> dt.datetime:
    when = instant(resource.effectiveDateTime or resource.effectiveInstant or (
        resource.effectivePeriod and (resource.effectivePeriod.end or resource.effectivePeriod.start)))
    if when is None:
        raise _RefusedError("missing_effective", "the Observation does not say when it was measured")
    if when > now + CLOCK_SKEW:
        raise _RefusedError("future_effective", f"measured at {when.isoformat()}, after now")
    return when


def _identity(resource: Any) -> str:
    for identifier in resource.identifier or []:
        if identifier.value:
            return f"identifier:{identifier.system or ''}|{identifier.value}"
    if resource.id:
        return f"id:{resource.id}"
    return "content:" + hashlib.sha256(resource.model_dump_json(exclude_none=True).encode()).hexdigest()


def _acvpu(concept: Any) -> str | None:
    if concept is None:
        return None
    if ALERT_SNOMED in codes(concept, SNOMED):
        return "alert"
    for text in [concept.text or "", *(c.display or "" for c in concept.coding or []),
                 *(c.code or "" for c in concept.coding or [])]:  # fmt: skip
        word = str(text).strip().lower()
        level = ACVPU_WORDS.get(word.split(" ")[0] if word else "") or ACVPU_LETTERS.get(word)
        if level:
            return level
    return None


def _parts(resource: Any) -> list[tuple[str, Any, Any]]:
    """(LOINC or SNOMED code, quantity, concept) of the Observation and its components."""
    parts = [(resource.code, resource.valueQuantity, resource.valueCodeableConcept)]
    parts += [(c.code, c.valueQuantity, c.valueCodeableConcept) for c in resource.component or []]
    found = []
    for code, quantity, concept in parts:
        found += [(loinc, quantity, concept) for loinc in codes(code, LOINC)]
        found += [(sct, quantity, concept) for sct in codes(code, SNOMED) if sct == ACVPU_SNOMED]
    return found


def _reading(code: str, quantity: Any, concept: Any) -> tuple[str, float | None, str | None] | None:
    """(field, number, text) of one coded part, or ``None`` when cds does not read the code."""
    if code in (ACVPU_SNOMED, RESPONSIVENESS_LOINC):
        level = _acvpu(concept)
        if level is None:
            raise _RefusedError("unreadable_value", "the consciousness level is not one of alert, confusion, voice, "
                           "pain, unresponsive")
        return "consciousness", None, level
    if quantity is None or quantity.value is None:
        return None
    unit = str(quantity.code or quantity.unit or "")
    if code in (OXYGEN_FLOW, OXYGEN_CONCENTRATION):
        number = float(quantity.value)
        return "on_oxygen", float(number > (0.0 if code == OXYGEN_FLOW else 21.0)), None
    if code not in OBSERVATION_CODES:
        return None
    measure = OBSERVATION_CODES[code]
    try:
        value = to_canonical(float(quantity.value), unit, measure.quantity)
    except InvalidInputError as exc:
        raise _RefusedError(exc.code, exc.message) from None
    low, high = plausible_limits().get(measure.field, (float("-inf"), float("inf")))
    if not low <= value <= high:
        raise _RefusedError("impossible_value", f"{measure.field} {value:.4g} is outside physiological limits "
                       f"({low:g}-{high:g})")
    return measure.field, value, None


def _values(resource: Any, source: str, patients: Mapping[str, str], now: dt.datetime) -> list[ObservedValue]:
    if resource.status in ("entered-in-error", "cancelled"):
        raise _RefusedError("not_final", f"the Observation's status is {resource.status}")
    if resource.status not in OBSERVATION_STATUSES:
        raise _RefusedError("invalid_fhir", f"status {str(resource.status)[:40]!r} is not an Observation status "
                            f"({', '.join(sorted(OBSERVATION_STATUSES))})")
    patient = _patient(resource, patients)
    effective = _effective(resource, now)
    identity = _identity(resource)
    device = ""
    if resource.device is not None:
        device = str(resource.device.reference or resource.device.display or "")[:300]
    readings = [r for part in _parts(resource) if (r := _reading(*part)) is not None]
    if not readings:
        codes = sorted({code for code, _, _ in _parts(resource)} or {"no LOINC code"})
        raise _RefusedError("unrecognised_code", f"no input cds reads in this Observation ({', '.join(codes)[:120]})")
    setting = _setting(resource)
    values = []
    for name, number, text in readings:
        key = hashlib.sha256(json.dumps([patient, identity, name]).encode()).hexdigest()
        values.append(ObservedValue(key, patient, name, number, text, effective, source, device, setting))
    return values


def _setting(resource: Any) -> str:
    """``clinic`` when taken in an encounter or by a practitioner (or their organisation), else ``home``."""
    if resource.encounter is not None and resource.encounter.reference:
        return CLINIC
    performers = [str(p.reference or "") for p in resource.performer or []]
    return CLINIC if any(CLINICAL_PERFORMERS.search(p) for p in performers) else HOME
