"""Export readers' verdicts on stored radiographs as a de-identified training dataset.

Labels come from the human reads that exist: readers' verdicts on each AI finding of a pre-read
(:mod:`cds.store.feedback`). A reader's newest verdict on a finding is their current one; a finding is positive (1)
when readers accepted it and negative (0) when they rejected it. Nothing is guessed:

* an image enters the export only when every exported label has a current verdict; others are left out and counted
  (``unreviewed_findings``);
* a study where two readers' current verdicts disagree on any finding of any of its images is left out whole
  (``conflicting_verdicts``);
* verdicts on anything but a stored instance (a CT series, an image no longer held) are left out
  (``image_not_stored``), as are images de-identification refuses (``burned_in_annotation``,
  ``missing_patient_id``) or that cannot be read (``unreadable_image``).

Signed reports can feed the same export later as another source of :class:`_Verdicts`.

The layout is the one ``training/data/folder.py`` reads: ``train/``, ``validation/`` and ``test/``, each with
de-identified DICOM files (PS3.15 basic profile, :func:`cds.interop.deidentify.deidentify`, keyed pseudonyms) and a
``labels.csv`` (``path``, one 0/1 column per label, ``sex`` as a subgroup). Patients are split by their keyed
pseudonym, so no patient is in two splits, the same key gives the same split, and a patient keeps their split as
the database grows. ``export.json`` states the counts, what was left out and why, and what de-identification
removed, replaced, emptied and shifted, and how. The export is audited (``training.export``) with counts only.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import stat
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pydicom
from pydicom.errors import InvalidDicomError
from sqlalchemy import select

from cds.errors import InvalidInputError
from cds.interop.deidentify import MAX_SHIFT_DAYS, MIN_KEY_BYTES, DeidOptions, DeidSummary, deidentify
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.db import Database
from cds.store.dicom_index import STORED
from cds.store.tables import DicomInstanceRow, FindingFeedbackRow

SPLITS: Final = ("train", "validation", "test")
LABELS_CSV: Final = "labels.csv"  # the name training/data/folder.py reads
MANIFEST: Final = "export.json"
FORMAT: Final = "cds-training-export/1"
POSITIVE, NEGATIVE = "accepted", "rejected"


@dataclass(frozen=True)
class ExportOptions:
    """What to export.

    Attributes:
        key: The de-identification key (at least 16 bytes): pseudonyms, UIDs, date shifts and the split.
        split: Fractions of patients for train, validation and test (they sum to 1).
        labels: The label columns; empty: every label some reader gave a verdict on.
        deid: The PS3.15 options applied on top of the basic profile.
    """

    key: bytes
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)
    labels: tuple[str, ...] = ()
    deid: DeidOptions = field(default_factory=DeidOptions)

    def __post_init__(self) -> None:
        """Refuse a short key and a split that is not three non-negative fractions summing to 1."""
        if len(self.key) < MIN_KEY_BYTES:
            raise InvalidInputError(f"the key has {len(self.key)} bytes, at least {MIN_KEY_BYTES} are needed",
                                    code="invalid_key")
        if len(self.split) != 3 or min(self.split) < 0 or abs(sum(self.split) - 1) > 1e-6:
            raise InvalidInputError(f"split {self.split}: three fractions (train, validation, test) summing to 1",
                                    code="invalid_split")


@dataclass(frozen=True)
class TrainingExport:
    """Where the export went and its manifest (the content of ``export.json``)."""

    folder: Path
    manifest: dict[str, Any]


@dataclass
class _Verdicts:
    """Current verdicts on one image: label → {reader: verdict}."""

    by_label: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))

    def conflicting(self) -> bool:
        return any(len(set(readers.values())) > 1 for readers in self.by_label.values())

    def value(self, label: str) -> int | None:
        verdicts = set(self.by_label.get(label, {}).values())
        return None if len(verdicts) != 1 else int(verdicts.pop() == POSITIVE)


def read_key_file(path: Path) -> bytes:
    """The key in ``path`` (a trailing line break is dropped).

    Raises:
        InvalidInputError: ``key_missing``, ``key_world_readable`` (others may read it: ``chmod o-r``) or
            ``invalid_key`` (under 16 bytes).
    """
    if not path.is_file():
        raise InvalidInputError(f"key file {path} does not exist", code="key_missing")
    if path.stat().st_mode & stat.S_IROTH:
        raise InvalidInputError(f"key file {path} is world-readable; restrict it (chmod o-r) and retry",
                                code="key_world_readable")
    key = path.read_bytes().rstrip(b"\r\n")
    if len(key) < MIN_KEY_BYTES:
        raise InvalidInputError(f"key file {path} holds {len(key)} bytes, at least {MIN_KEY_BYTES} are needed",
                                code="invalid_key")
    return key


def key_id(key: bytes) -> str:
    """A name for a key that does not reveal it (HMAC of a constant): exports made with the same key say so."""
    return hmac.new(key, b"key-id", hashlib.sha256).hexdigest()[:16]


def split_of(pseudonym: str, *, key: bytes, fractions: Sequence[float]) -> str:
    """The split of a patient: a keyed hash of their pseudonym placed on [0, 1) against the cumulative fractions."""
    mac = hmac.new(key, f"split\x00{pseudonym}".encode(), hashlib.sha256).digest()
    point, edge = int.from_bytes(mac[:8], "big") / 2**64, 0.0
    for name, fraction in zip(SPLITS, fractions, strict=True):
        edge += fraction
        if point < edge:
            return name
    return SPLITS[-1]


def _current_verdicts(database: Database) -> tuple[dict[str, _Verdicts], list[DicomInstanceRow]]:
    verdicts: dict[str, _Verdicts] = defaultdict(_Verdicts)
    with database.session() as session:
        for row in session.execute(select(FindingFeedbackRow).order_by(FindingFeedbackRow.id)).scalars():
            verdicts[row.uid].by_label[row.label][row.actor] = row.verdict  # newer rows overwrite older ones
        instances = list(session.execute(
            select(DicomInstanceRow).where(DicomInstanceRow.origin == STORED,
                                           DicomInstanceRow.sop_instance_uid.in_(select(FindingFeedbackRow.uid)))
            .order_by(DicomInstanceRow.sop_instance_uid)).scalars())  # fmt: skip
    return verdicts, instances


def _prepare_output(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InvalidInputError(f"output {folder} exists and is not an empty folder; name a new one",
                                code="output_not_empty")
    for name in SPLITS:
        (folder / name).mkdir(parents=True, exist_ok=True)


class _Summary:
    """The union of what de-identification did to every exported image."""

    def __init__(self) -> None:
        self.parts: dict[str, set[str]] = {"removed": set(), "replaced": set(), "emptied": set(),
                                           "dates_shifted": set()}  # fmt: skip
        self.uids_remapped = self.private_removed = 0
        self.edition = ""

    def add(self, summary: DeidSummary) -> None:
        for name, values in self.parts.items():
            values.update(getattr(summary, name))
        self.uids_remapped += summary.uids_remapped
        self.private_removed += summary.private_removed
        self.edition = summary.profile_edition

    def document(self, options: DeidOptions) -> dict[str, Any]:
        return {
            "profile": f"DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile ({self.edition})",
            "options": {"retain_longitudinal_temporal_information_modified_dates": options.retain_modified_dates,
                        "retain_patient_characteristics": options.retain_patient_characteristics},
            **{name: sorted(values) for name, values in self.parts.items()},
            "uids_remapped": self.uids_remapped,
            "private_attributes_removed": self.private_removed,
            "how": {
                "removed": "attributes the profile marks X deleted, with every private attribute",
                "replaced": "Patient ID and Patient's Name: the keyed pseudonym PSN + 24 hex digits of "
                            "HMAC-SHA256(key, Patient ID); other D attributes: dummy values",
                "emptied": "attributes marked Z left empty; sequences that may hold free text emptied",
                "dates_shifted": f"every date moved back by 1 to {MAX_SHIFT_DAYS} days, the same for all of a "
                                 "patient's images (keyed on the Patient ID); times of day kept; birth date removed",
                "uids": "every UID marked U replaced by 2.25.<HMAC-SHA256(key, uid), 128 bits>, so references "
                        "between images still resolve",
                "pixel_data": "not altered; images flagged or known to carry burned-in text are refused",
            },
        }


def export_training(
    database: Database, output: Path, options: ExportOptions, *, actor: Actor,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingExport:  # fmt: skip
    """Write the de-identified training dataset of the readers' verdicts to ``output`` and audit it.

    Args:
        database: The service's database (its DICOM index and verdicts are read, one audit event written).
        output: A folder that does not exist or is empty.
        options: Key, split, labels and de-identification options.
        actor: Who exports (recorded in the audit trail).
        progress: Called with (images done, images in all) after each image.

    Raises:
        InvalidInputError: ``output_not_empty``, ``unknown_label`` (a requested label nobody gave a verdict on).
    """
    verdicts, instances = _current_verdicts(database)
    reviewed = sorted({label for row in instances for label in verdicts[row.sop_instance_uid].by_label})
    labels = options.labels or tuple(reviewed)
    unknown = [label for label in labels if label not in reviewed]
    if unknown:
        raise InvalidInputError(f"no reader verdict on {', '.join(unknown)}; labels with verdicts: "
                                f"{', '.join(reviewed) or '(none)'}", code="unknown_label")
    _prepare_output(output)
    left_out: Counter[str] = Counter()
    left_out["image_not_stored"] = len(set(verdicts) - {row.sop_instance_uid for row in instances})
    conflicted = {row.study_uid for row in instances if verdicts[row.sop_instance_uid].conflicting()}
    chosen: list[DicomInstanceRow] = []
    for row in instances:
        if row.study_uid in conflicted:
            left_out["conflicting_verdicts"] += 1
        elif any(verdicts[row.sop_instance_uid].value(label) is None for label in labels):
            left_out["unreviewed_findings"] += 1
        else:
            chosen.append(row)
    rows: dict[str, list[dict[str, str]]] = {name: [] for name in SPLITS}
    patients: dict[str, set[str]] = {name: set() for name in SPLITS}
    summary = _Summary()
    for done, row in enumerate(chosen, start=1):
        try:
            source = pydicom.dcmread(row.path)
            result = deidentify(source, key=options.key, options=options.deid)
        except (OSError, InvalidDicomError):
            left_out["unreadable_image"] += 1
        except InvalidInputError as exc:
            left_out[exc.code] += 1
        else:
            split = split_of(result.pseudonym, key=options.key, fractions=options.split)
            name = f"{result.dataset.SOPInstanceUID}.dcm"
            result.dataset.save_as(output / split / name, enforce_file_format=True)
            summary.add(result.summary)
            patients[split].add(result.pseudonym)
            cells = {label: str(verdicts[row.sop_instance_uid].value(label)) for label in labels}
            rows[split].append({"path": name, **cells, "sex": str(result.dataset.get("PatientSex", "") or "")})
        if progress is not None:
            progress(done, len(chosen))
    for split, table in rows.items():
        table.sort(key=lambda r: r["path"])
        with (output / split / LABELS_CSV).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["path", *labels, "sex"])
            writer.writeheader()
            writer.writerows(table)
    counts = {split: {"images": len(table), "patients": len(patients[split]),
                      "labels": {label: {"positive": sum(r[label] == "1" for r in table),
                                         "negative": sum(r[label] == "0" for r in table)} for label in labels}}
              for split, table in rows.items()}  # fmt: skip
    manifest = {
        "format": FORMAT,
        "labels": list(labels),
        "label_source": "readers' current verdicts on AI findings of pre-reads: accepted = 1, rejected = 0; a "
                        "reader's newest verdict counts; an image enters only when every label has a verdict",
        "split": dict(zip(SPLITS, options.split, strict=True)),
        "split_method": "by patient: HMAC-SHA256(key, pseudonym) placed on [0, 1) against the fractions",
        "key_id": key_id(options.key),
        "counts": counts,
        "left_out": {reason: {"images": n} for reason, n in sorted(left_out.items()) if n}
        | ({"conflicting_verdicts": {"images": left_out["conflicting_verdicts"], "studies": len(conflicted)}}
           if conflicted else {}),
        "deidentification": summary.document(options.deid),
    }
    (output / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    with database.session() as session:
        record_event(session, AuditAction.TRAINING_EXPORT, actor, "TrainingExport",
                     detail={"images": {split: c["images"] for split, c in counts.items()},
                             "patients": {split: c["patients"] for split, c in counts.items()},
                             "labels": len(labels), "left_out": {k: v for k, v in left_out.items() if v},
                             "conflicting_studies": len(conflicted), "key_id": manifest["key_id"]})
    return TrainingExport(folder=output, manifest=manifest)
