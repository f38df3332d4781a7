"""FHIR de-identification with the same keyed pseudonyms, UIDs and date shifts as the DICOM one.

For resources leaving the care relationship beside de-identified images (:mod:`cds.interop.deidentify`), so a
record and its images still belong together after both are de-identified with the same key:

* **The patient.** A patient is keyed on their identifier under the site's MRN system (``patient_system``, the
  system DICOM Patient IDs are written under: ``CDS_PATIENT_ID_SYSTEM``), so their pseudonym and date shift are the
  DICOM export's; a patient without one is keyed on their reference (``Patient/<id>``) and links to no image. The
  Patient keeps only its pseudonymous id and identifier, gender and (shifted) birth and death dates: names,
  telecom, addresses, photos, contacts, links and everything else go. References to the patient, by id or by MRN,
  name the pseudonym.
* **Other resources** keep their clinical content. Their ids, ``urn:uuid`` full URLs and identifier values become
  keyed hashes (references follow), a DICOM UID (``urn:oid:`` under ``urn:dicom:uid``) becomes the DICOM export's
  ``2.25`` UID. Practitioners, related persons and organisations keep only their keyed id.
* **Dates.** Under Retain Longitudinal Temporal Information with Modified Dates, every date, dateTime and instant
  moves back by the patient's shift in days, keeping its precision, time of day and zone; without the option, or
  in a resource tied to no single patient, dates are removed.
* **Free text** is removed: narratives, notes, comments, descriptions, conclusions, ``valueString``, reference
  displays and every extension (a concept's own ``text``, the name of what was coded, is kept). A resource with a
  ``modifierExtension`` (which changes what the resource means) is refused rather than passed on with a meaning
  silently changed.

Pure: the input is not modified. A :class:`FhirDeidSummary` says what was removed, replaced and shifted.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from cds.errors import InvalidInputError
from cds.interop.deidentify import MIN_KEY_BYTES, DeidOptions, date_shift_days, pseudonymize_patient_id, remap_uid

PSEUDONYM_SYSTEM: Final = "urn:cds:pseudonym"
DICOM_UID_SYSTEM: Final = "urn:dicom:uid"
PATIENT_KEPT: Final = frozenset({"resourceType", "id", "identifier", "gender", "birthDate", "deceasedBoolean",
                                 "deceasedDateTime"})  # fmt: skip
PERSON_TYPES: Final = frozenset({"Practitioner", "PractitionerRole", "RelatedPerson", "Person", "Organization"})
FREE_TEXT: Final = frozenset({"note", "comment", "comments", "description", "conclusion", "valueString",
                              "extension", "photo", "telecom", "address", "contact", "name"})  # fmt: skip
DATE_KEYS: Final = frozenset({"date", "start", "end", "issued", "recorded", "created", "timestamp", "when", "started",
                              "lastUpdated", "authoredOn", "sent", "received", "lastOccurrence", "birthDate",
                              "occurrenceDateTime", "dateAsserted", "dateWritten"})  # fmt: skip
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2})(T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?)?)?$")
_REFERENCE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
_RESTFUL = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?$")
DEIDENTIFIED_BASE: Final = "https://deidentified.invalid/fhir"  # RFC 2606: a name that never resolves


@dataclass(frozen=True)
class FhirDeidSummary:
    """What de-identification did, by element name, with counts."""

    removed: dict[str, int]
    replaced: dict[str, int]
    dates_shifted: int
    dates_removed: int
    patients: int


@dataclass(frozen=True)
class FhirDeidResult:
    """The de-identified resources (in input order), each source patient's pseudonym, and the summary."""

    resources: list[dict[str, Any]]
    pseudonyms: dict[str, str]
    summary: FhirDeidSummary


@dataclass
class _Run:
    key: bytes
    options: DeidOptions
    patient_system: str
    patient_keys: dict[str, str]  # "Patient/<id>" -> the value the pseudonym is keyed on
    removed: Counter[str] = field(default_factory=Counter)
    replaced: Counter[str] = field(default_factory=Counter)
    shifted: int = 0
    dates_removed: int = 0
    pseudonyms: dict[str, str] = field(default_factory=dict)

    def keyed(self, kind: str, value: str, length: int = 32) -> str:
        return hmac.new(self.key, f"fhir-{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()[:length]

    def pseudonym(self, patient_key: str) -> str:
        name = pseudonymize_patient_id(patient_key, key=self.key)
        self.pseudonyms[patient_key] = name
        return name


def _patient_key(resource: dict[str, Any], patient_system: str) -> str:
    """What a Patient's pseudonym is keyed on: its MRN under ``patient_system``, else its reference."""
    for identifier in resource.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("system") == patient_system and identifier.get("value"):
            return str(identifier["value"])
    return f"Patient/{resource.get('id', '')}"


def _resources(document: dict[str, Any]) -> list[dict[str, Any]]:
    if document.get("resourceType") == "Bundle":
        return [e["resource"] for e in document.get("entry") or () if isinstance(e, dict)
                and isinstance(e.get("resource"), dict)]  # fmt: skip
    return [document]


def deidentify_resources(documents: list[dict[str, Any]], *, key: bytes, patient_system: str,
                         options: DeidOptions | None = None) -> FhirDeidResult:  # fmt: skip
    """De-identify FHIR resources and Bundles (see the module docstring) with one key.

    Every Patient among ``documents`` (at any depth of a Bundle) is read first, so a reference ``Patient/<id>`` in
    one file is keyed on the MRN its Patient resource gives in another.

    Raises:
        InvalidInputError: ``invalid_key``, ``not_fhir`` (no resourceType), ``modifier_extension``.
    """
    options = options or DeidOptions()
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InvalidInputError(f"the de-identification key must be at least {MIN_KEY_BYTES} bytes", code="invalid_key")
    patient_keys: dict[str, str] = {}
    for document in documents:
        if not isinstance(document, dict) or not isinstance(document.get("resourceType"), str):
            raise InvalidInputError("a FHIR resource or Bundle (a JSON object with resourceType) is expected",
                                    code="not_fhir")  # fmt: skip
        patient_keys.update(_patients_of(document, patient_system))
    run = _Run(key=key, options=options, patient_system=patient_system, patient_keys=patient_keys)
    output = [_document(copy.deepcopy(document), run) for document in documents]
    summary = FhirDeidSummary(removed=dict(sorted(run.removed.items())), replaced=dict(sorted(run.replaced.items())),
                              dates_shifted=run.shifted, dates_removed=run.dates_removed,
                              patients=len(run.pseudonyms))  # fmt: skip
    return FhirDeidResult(resources=output, pseudonyms=dict(run.pseudonyms), summary=summary)


def _patients_of(document: dict[str, Any], patient_system: str) -> dict[str, str]:
    """How a document's Patients are referred to, each to the value its pseudonym is keyed on.

    By ``Patient/<id>``, and by an entry's full URL (transaction Bundles refer by ``urn:uuid``).
    """
    entries = document.get("entry") or () if document.get("resourceType") == "Bundle" else ({"resource": document},)
    found: dict[str, str] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
            continue
        full_url = entry.get("fullUrl")
        key = _patient_key(resource, patient_system)
        if not resource.get("id") and key == "Patient/" and isinstance(full_url, str):
            key = full_url  # neither an MRN nor an id: keyed on the entry it is
        if resource.get("id"):
            found[f"Patient/{resource['id']}"] = key
        if isinstance(full_url, str) and full_url:
            found[full_url] = key
    return found


def _document(document: dict[str, Any], run: _Run) -> dict[str, Any]:
    if document.get("resourceType") != "Bundle":
        return _resource(document, run, shift=_shift_for(document, run))
    for name in ("id", "identifier", "meta", "link", "signature", "text"):
        if name in document:
            document.pop(name)
            run.removed[f"Bundle.{name}"] += 1
    shifts = {_shift_for(r, run) for r in _resources(document)} - {None}
    bundle_shift = shifts.pop() if len(shifts) == 1 else None  # for entries tied to no patient
    for entry in document.get("entry") or ():
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("fullUrl"), str):
            entry["fullUrl"] = _url(entry["fullUrl"], run)
        for name in ("request", "response", "search"):
            entry.pop(name, None)
        if isinstance(entry.get("resource"), dict):
            resource = entry["resource"]
            entry["resource"] = _resource(resource, run, shift=_shift_for(resource, run) or bundle_shift)
    if "timestamp" in document:
        document["timestamp"] = _date(document["timestamp"], bundle_shift, run)
        if document["timestamp"] is None:
            del document["timestamp"]
    return document


def _patient_of(resource: dict[str, Any], run: _Run) -> str | None:
    """The patient key a resource is about: itself, or its subject or patient reference."""
    if resource.get("resourceType") == "Patient":
        return _patient_key(resource, run.patient_system)
    for name in ("subject", "patient", "beneficiary"):
        target = resource.get(name)
        if isinstance(target, dict):
            found = _referenced_patient(target, run)
            if found is not None:
                return found
    return None


def _referenced_patient(reference: dict[str, Any], run: _Run) -> str | None:
    text = reference.get("reference")
    if isinstance(text, str):
        target = text.split("/_history")[0]
        if target in run.patient_keys:  # a Patient of the documents, by id or by its entry's full URL
            return run.patient_keys[target]
        if target.startswith("Patient/"):
            return target
    identifier = reference.get("identifier")
    if isinstance(identifier, dict) and identifier.get("system") == run.patient_system and identifier.get("value"):
        return str(identifier["value"])
    return None


def _shift_for(resource: dict[str, Any], run: _Run) -> dt.timedelta | None:
    patient = _patient_of(resource, run)
    if patient is None or not run.options.retain_modified_dates:
        return None
    return dt.timedelta(days=date_shift_days(patient, key=run.key))


def _resource(resource: dict[str, Any], run: _Run, *, shift: dt.timedelta | None,
              contained: bool = False) -> dict[str, Any]:  # fmt: skip
    """One resource de-identified; a contained one keeps its local id (``#id`` references point at it)."""
    kind = str(resource.get("resourceType", ""))
    if _has_modifier_extension(resource):
        raise InvalidInputError(f"a {kind} carries a modifierExtension, which changes its meaning; it is not "
                                "de-identified (removing it would change the meaning silently)",
                                code="modifier_extension")  # fmt: skip
    if kind == "Patient":
        return _patient(resource, run, shift, contained=contained)
    if kind in PERSON_TYPES:
        local = resource.get("id", "")
        kept = {"resourceType": kind, "id": local if contained else run.keyed("id", f"{kind}/{local}")}
        for name in resource:
            if name not in ("resourceType", "id"):
                run.removed[f"{kind}.{name}"] += 1
        return kept
    walked: dict[str, Any] = _walk(resource, run, shift, path=kind, top=True, contained=contained)
    return walked


def _has_modifier_extension(value: Any) -> bool:
    if isinstance(value, dict):
        return "modifierExtension" in value or any(_has_modifier_extension(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_modifier_extension(v) for v in value)
    return False


def _patient(resource: dict[str, Any], run: _Run, shift: dt.timedelta | None, *, contained: bool) -> dict[str, Any]:
    name = run.pseudonym(_patient_key(resource, run.patient_system))
    kept: dict[str, Any] = {"resourceType": "Patient", "id": resource.get("id", name) if contained else name,
                            "identifier": [{"system": PSEUDONYM_SYSTEM, "value": name}]}  # fmt: skip
    run.replaced["Patient.id"] += 1
    run.replaced["Patient.identifier"] += 1
    for element, value in resource.items():
        if element in ("resourceType", "id", "identifier"):
            continue
        if element not in PATIENT_KEPT or not run.options.retain_patient_characteristics:
            run.removed[f"Patient.{element}"] += 1
        elif element in ("birthDate", "deceasedDateTime"):
            shifted = _date(value, shift, run)
            if shifted is not None:
                kept[element] = shifted
        else:
            kept[element] = value
    return kept


def _walk(value: Any, run: _Run, shift: dt.timedelta | None, *, path: str, top: bool = False,
          contained: bool = False) -> Any:  # fmt: skip
    if isinstance(value, list):
        return [_walk(item, run, shift, path=path) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        where = f"{path}.{name}"
        if name in FREE_TEXT or (name == "display" and "reference" in value) or (top and name in ("meta", "text")):
            run.removed[where] += 1
        elif name == "id" and top:
            out[name] = item if contained else run.keyed("id", f"{path}/{item}")
        elif name == "reference" and isinstance(item, str):
            out[name] = _reference(item, run)
        elif name == "identifier" and path.endswith(("subject", "patient", "beneficiary")) and isinstance(item, dict):
            out[name] = _patient_identifier(item, run)
        elif name == "identifier":
            out[name] = _walk_identifiers(item, run, where)
        elif name == "contained" and isinstance(item, list):
            out[name] = [_resource(r, run, shift=shift, contained=True) if isinstance(r, dict) else r for r in item]
        elif _is_date_element(name) and isinstance(item, str):
            shifted = _date(item, shift, run)
            if shifted is not None:
                out[name] = shifted
        else:
            out[name] = _walk(item, run, shift, path=where)
    return out


def _is_date_element(name: str) -> bool:
    return name in DATE_KEYS or name.endswith(("Date", "DateTime", "Instant"))


def _date(value: Any, shift: dt.timedelta | None, run: _Run) -> str | None:
    """A FHIR date, dateTime or instant moved by ``shift`` at its own precision; ``None`` when it is removed."""
    match = _DATE.match(str(value))
    if shift is None or match is None:
        run.dates_removed += 1
        return None
    year, month, day, time = match.groups()
    start = dt.date(int(year), int(month or 1), int(day or 1)) + shift
    run.shifted += 1
    if month is None:
        return f"{start.year:04d}"
    if day is None:
        return f"{start.year:04d}-{start.month:02d}"
    return start.isoformat() + (time or "")


def _new_id(kind: str, ident: str, run: _Run) -> str:
    """The id a resource ``kind/ident`` has once de-identified: the patient's pseudonym, else a keyed hash."""
    if kind == "Patient":
        return run.pseudonym(run.patient_keys.get(f"Patient/{ident}", f"Patient/{ident}"))
    return run.keyed("id", f"{kind}/{ident}")


def _reference(text: str, run: _Run) -> str:
    """A reference as it reads once de-identified (a server's own URL never kept)."""
    if text.startswith("#"):
        return text
    match = _REFERENCE.match(text)
    if match is not None:
        return f"{match.group(1)}/{_new_id(match.group(1), match.group(2), run)}"
    return _url(text, run)


def _url(text: str, run: _Run) -> str:
    """A full URL as it reads once de-identified: ``urn:uuid`` keyed, a RESTful one under :data:`DEIDENTIFIED_BASE`."""
    match = _RESTFUL.search(text)
    if match is not None and not text.startswith("urn:"):
        run.replaced["fullUrl (server)"] += 1
        return f"{DEIDENTIFIED_BASE}/{match.group(1)}/{_new_id(match.group(1), match.group(2), run)}"
    return f"urn:uuid:{uuid.UUID(run.keyed('uuid', text))}"


def _patient_identifier(identifier: dict[str, Any], run: _Run) -> dict[str, Any]:
    value = str(identifier.get("value", ""))
    patient = value if identifier.get("system") == run.patient_system else f"{identifier.get('system')}|{value}"
    run.replaced["patient identifier"] += 1
    return {"system": PSEUDONYM_SYSTEM, "value": run.pseudonym(patient)}


def _walk_identifiers(value: Any, run: _Run, where: str) -> Any:
    if isinstance(value, list):
        return [_walk_identifiers(item, run, where) for item in value]
    if not isinstance(value, dict):
        return value
    system, text = value.get("system"), str(value.get("value", ""))
    out: dict[str, Any] = {k: v for k, v in value.items() if k in ("use", "system", "type")}
    if system == DICOM_UID_SYSTEM and text.startswith("urn:oid:"):
        out["value"] = "urn:oid:" + remap_uid(text[len("urn:oid:"):], key=run.key)
    elif text:
        out["value"] = run.keyed("identifier", f"{system}|{text}")
    run.replaced[where] += 1
    for name in value:
        if name not in ("use", "system", "type", "value"):
            run.removed[f"{where}.{name}"] += 1
    return out
