"""DICOM de-identification: PS3.15 Annex E Basic Application Level Confidentiality Profile, with options.

:func:`deidentify` applies Table E.1-1 (see :mod:`cds.interop.deid_profile`) to every attribute at every depth,
removes all private attributes, and records what it did in the dataset (Patient Identity Removed, De-identification
Method and its Code Sequence, Longitudinal Temporal Information Modified) and in a :class:`DeidSummary`.

Everything that must stay linkable is derived from a secret key with HMAC-SHA256, so the same key gives the same
output across studies and runs, and a different key gives unrelated output:

* the Patient ID becomes a pseudonym (also written as the Patient's Name);
* every UID the table marks ``U`` becomes ``2.25.<128-bit integer>``, so series, instances, Frame of Reference and
  references (Referenced SOP Instance UID in any sequence) keep pointing at each other;
* under the Retain Longitudinal Temporal Information with Modified Dates option, every date (DA, and the date part of
  DT) moves back by a whole number of days that depends only on the patient, the same for each of their studies;
  times of day are kept. Patient's Birth Date is never kept (its basic action, Z, applies).

Sequences the table marks ``D`` (Content Sequence, Graphic Annotation Sequence, ...) are emptied rather than
cleaned item by item: their items hold free text the table does not list (Text Value), which only the Clean
Structured Content and Clean Graphics options, not implemented here, would make safe to keep.

Pixel data is not touched: images known to carry burned-in text (Burned In Annotation ``YES``, Secondary Capture,
Ultrasound) are refused unless the caller accepts flagged output. Pure: no I/O, the input dataset is not modified.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.sr.codedict import codes

from cds.errors import InvalidInputError
from cds.interop.deid_profile import PATIENT_BIRTH_DATE, PATIENT_CHARACTERISTICS, TABLE_EDITION, action_for

MIN_KEY_BYTES: Final = 16
MAX_SHIFT_DAYS: Final = 3650
BURNED_IN_SOP_CLASSES: Final = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
        "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
        "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
        "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
        "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
        "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
        "1.2.840.10008.5.1.4.1.1.6.2",  # Enhanced US Volume
        "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    }
)
BURNED_IN_MODALITIES: Final = frozenset({"US", "SC"})
_DUMMY_TEXT: Final = "ANONYMIZED"
_DUMMIES: Final[dict[str, str | int]] = {
    "AE": _DUMMY_TEXT, "CS": _DUMMY_TEXT, "LO": _DUMMY_TEXT, "LT": _DUMMY_TEXT, "SH": _DUMMY_TEXT,
    "ST": _DUMMY_TEXT, "UC": _DUMMY_TEXT, "UT": _DUMMY_TEXT, "PN": _DUMMY_TEXT, "AS": "000Y",
    "DA": "19000101", "DT": "19000101000000", "TM": "000000", "IS": "0", "DS": "0",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0, "FD": 0,
}  # fmt: skip


@dataclass(frozen=True)
class DeidOptions:
    """Which PS3.15 options apply on top of the basic profile.

    Attributes:
        retain_modified_dates: Retain Longitudinal Temporal Information with Modified Dates (per-patient shift).
        retain_patient_characteristics: Retain Patient Characteristics (sex, age, size, weight).
        allow_burned_in: Return images that may carry burned-in text, flagged, instead of refusing them.
    """

    retain_modified_dates: bool = True
    retain_patient_characteristics: bool = True
    allow_burned_in: bool = False


@dataclass(frozen=True)
class DeidSummary:
    """What was done, by attribute keyword (or tag), small enough to state in an export's manifest."""

    removed: tuple[str, ...]
    replaced: tuple[str, ...]
    emptied: tuple[str, ...]
    dates_shifted: tuple[str, ...]
    uids_remapped: int
    private_removed: int
    profile_edition: str = TABLE_EDITION


@dataclass(frozen=True)
class DeidResult:
    """A de-identified dataset, the patient's pseudonym, the summary and any flags (``burned_in_annotation``)."""

    dataset: Dataset
    pseudonym: str
    summary: DeidSummary
    flags: tuple[str, ...] = ()


@dataclass
class _Run:
    key: bytes
    options: DeidOptions
    pseudonym: str
    shift: dt.timedelta
    removed: set[str] = field(default_factory=set)
    replaced: set[str] = field(default_factory=set)
    emptied: set[str] = field(default_factory=set)
    shifted: set[str] = field(default_factory=set)
    uids: set[str] = field(default_factory=set)
    private_removed: int = 0

    def uid(self, value: str) -> str:
        self.uids.add(value)
        return remap_uid(value, key=self.key)

    def shift_date(self, value: str, vr: str) -> str | None:
        text = value.strip()
        try:
            day = dt.datetime.strptime(text[:8], "%Y%m%d").date()
        except ValueError:
            return None
        return (day + self.shift).strftime("%Y%m%d") + (text[8:] if vr == "DT" else "")


def remap_uid(uid: str, *, key: bytes) -> str:
    """The keyed replacement of a UID: ``2.25.`` and the first 128 bits of HMAC-SHA256(key, uid) as an integer."""
    mac = hmac.new(key, f"uid\x00{uid}".encode(), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(mac[:16], "big"))


def pseudonymize_patient_id(patient_id: str, *, key: bytes) -> str:
    """The keyed pseudonym of a Patient ID: ``"PSN"`` and 24 hex digits of HMAC-SHA256(key, id)."""
    mac = hmac.new(key, f"patient-id\x00{patient_id}".encode(), hashlib.sha256).hexdigest()
    return "PSN" + mac[:24].upper()


def date_shift_days(patient_id: str, *, key: bytes) -> int:
    """The per-patient date shift in days (negative: dates move back by 1 to :data:`MAX_SHIFT_DAYS` days)."""
    mac = hmac.new(key, f"date-shift\x00{patient_id}".encode(), hashlib.sha256).digest()
    return -(1 + int.from_bytes(mac[:4], "big") % MAX_SHIFT_DAYS)


def burned_in_reason(dataset: Dataset) -> str | None:
    """Why ``dataset`` may carry burned-in identifying text, or None."""
    if str(dataset.get("BurnedInAnnotation", "")).upper() == "YES":
        return "Burned In Annotation is YES"
    if str(dataset.get("SOPClassUID", "")) in BURNED_IN_SOP_CLASSES:
        return f"SOP Class {dataset.SOPClassUID} (secondary capture or ultrasound) often carries burned-in text"
    if str(dataset.get("Modality", "")).upper() in BURNED_IN_MODALITIES:
        return f"modality {dataset.Modality} often carries burned-in text"
    return None


def deidentify(dataset: Dataset, *, key: bytes, options: DeidOptions | None = None) -> DeidResult:
    """De-identify a DICOM dataset per PS3.15 Annex E (basic profile plus the chosen options).

    Args:
        dataset: The source dataset (left unchanged).
        key: The secret key of the pseudonyms, UIDs and date shifts (at least 16 bytes); keep it to link later.
        options: The profile options; defaults to modified dates and patient characteristics retained.

    Returns:
        The de-identified copy, the patient's pseudonym, a summary and flags.

    Raises:
        InvalidInputError: ``invalid_key`` (short key), ``missing_patient_id`` (no Patient ID to key dates and
            pseudonym on), ``burned_in_annotation`` (possible burned-in text and ``allow_burned_in`` is off).
    """
    options = options or DeidOptions()
    if not isinstance(key, bytes) or len(key) < MIN_KEY_BYTES:
        raise InvalidInputError(f"the de-identification key must be at least {MIN_KEY_BYTES} bytes", code="invalid_key")
    if not isinstance(dataset, Dataset):
        raise InvalidInputError(f"expected a pydicom Dataset, got {type(dataset).__name__}", code="invalid_dataset")
    patient_id = str(dataset.get("PatientID", "") or "").strip()
    if not patient_id:
        raise InvalidInputError(
            "the dataset has no Patient ID; pseudonyms and date shifts are keyed on it", code="missing_patient_id"
        )
    flags: tuple[str, ...] = ()
    reason = burned_in_reason(dataset)
    if reason is not None:
        if not options.allow_burned_in:
            raise InvalidInputError(
                f"refused: {reason}; pixel data is not cleaned, allow flagged output to export it anyway",
                code="burned_in_annotation",
            )
        flags = ("burned_in_annotation",)
    run = _Run(
        key=key,
        options=options,
        pseudonym=pseudonymize_patient_id(patient_id, key=key),
        shift=dt.timedelta(days=date_shift_days(patient_id, key=key)),
    )
    out = copy.deepcopy(dataset)
    _clean(out, run)
    _fix_file_meta(out, run)
    _record_method(out, options)
    summary = DeidSummary(
        removed=tuple(sorted(run.removed)),
        replaced=tuple(sorted(run.replaced)),
        emptied=tuple(sorted(run.emptied)),
        dates_shifted=tuple(sorted(run.shifted)),
        uids_remapped=len(run.uids),
        private_removed=run.private_removed,
    )
    return DeidResult(dataset=out, pseudonym=run.pseudonym, summary=summary, flags=flags)


def _name(elem: DataElement) -> str:
    return elem.keyword or str(elem.tag)


def _clean(ds: Dataset, run: _Run) -> None:
    for elem in list(ds):
        if elem.tag.is_private:
            del ds[elem.tag]
            run.private_removed += 1
            continue
        _apply(ds, elem, run)


def _apply(ds: Dataset, elem: DataElement, run: _Run) -> None:  # noqa: C901 - one branch per action, kept together
    tag, vr, action = int(elem.tag), elem.VR, action_for(elem.tag)
    if tag in (0x00100020, 0x00100010):  # Patient ID, Patient's Name: the keyed pseudonym
        elem.value = run.pseudonym
        run.replaced.add(_name(elem))
    elif run.options.retain_patient_characteristics and tag in PATIENT_CHARACTERISTICS:
        return
    elif run.options.retain_modified_dates and vr in ("DA", "DT") and tag != PATIENT_BIRTH_DATE:
        _shift(ds, elem, run)
    elif action is None or (run.options.retain_modified_dates and vr == "TM"):
        if vr == "SQ":
            _clean_items(elem, run)
    elif vr == "SQ" and action == "X/Z/U*":
        _clean_items(elem, run)  # references to images: kept, their UIDs replaced in turn
    elif action.startswith("X"):
        del ds[elem.tag]
        run.removed.add(_name(elem))
    elif action == "U":
        _remap_uids(elem, run)
    elif action == "Z" or vr == "SQ":  # a D sequence (Content, Graphic Annotation) may hold free text: emptied
        elem.value = [] if vr == "SQ" else None
        run.emptied.add(_name(elem))
    elif vr == "UI":
        _remap_uids(elem, run)
    elif vr in _DUMMIES:
        elem.value = _DUMMIES[vr]
        run.replaced.add(_name(elem))
    else:  # binary or otherwise undummyable values: removing is the stricter reading of D
        del ds[elem.tag]
        run.removed.add(_name(elem))


def _clean_items(elem: DataElement, run: _Run) -> None:
    for item in elem.value:
        _clean(item, run)


def _remap_uids(elem: DataElement, run: _Run) -> None:
    if elem.VM == 0:
        return
    if elem.VM == 1:
        elem.value = run.uid(str(elem.value))
    else:
        elem.value = [run.uid(str(v)) for v in elem.value]


def _shift(ds: Dataset, elem: DataElement, run: _Run) -> None:
    if elem.VM == 0:
        return
    values = [elem.value] if elem.VM == 1 else list(elem.value)
    shifted = [run.shift_date(str(v), elem.VR) for v in values]
    if any(v is None for v in shifted):
        del ds[elem.tag]  # a partial or malformed date cannot be shifted: remove it rather than keep it
        run.removed.add(_name(elem))
        return
    elem.value = shifted[0] if len(shifted) == 1 else shifted
    run.shifted.add(_name(elem))


def _fix_file_meta(ds: Dataset, run: _Run) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for elem in list(meta):
        if elem.tag.is_private or int(elem.tag) in (0x00020016, 0x00020100, 0x00020102):
            del meta[elem.tag]  # Source AE Title, private information: identify the sender


def _record_method(ds: Dataset, options: DeidOptions) -> None:
    cid = codes.cid7050
    used = [cid.BasicApplicationConfidentialityProfile]
    if options.retain_modified_dates:
        used.append(cid.RetainLongitudinalTemporalInformationModifiedDatesOption)
    if options.retain_patient_characteristics:
        used.append(cid.RetainPatientCharacteristicsOption)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = [f"cds PS3.15 E.1-1 ({TABLE_EDITION})"] + [code.meaning[:64] for code in used[1:]]
    items = []
    for code in used:
        item = Dataset()
        item.CodeValue = code.value
        item.CodingSchemeDesignator = code.scheme_designator
        item.CodeMeaning = code.meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = "MODIFIED" if options.retain_modified_dates else "REMOVED"
