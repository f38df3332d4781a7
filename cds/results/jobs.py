"""Durable jobs as types: each :class:`JobKind`, the payload it takes and the outcome it leaves.

A job crosses the queue as JSON in the database; it is written from these models and read back through them
(:func:`parse_payload`, :func:`parse_outcome`), so a job whose payload is malformed or belongs to another kind is
refused with a reason (``invalid_payload``) instead of failing half-way with a ``KeyError``. Who asked for a job
(actor, role, patient) lives on the job itself, not in its payload.

Model identity in outcomes is the model's key (``name:version``, :attr:`cds.models.backend.ModelRef.key`); the
full identity (sha256, backend) is in each outcome's ``result.json``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cds.errors import InvalidInputError
from cds.results.classification import Finding
from cds.results.ecg import EcgFlag, Measurements, RhythmCall
from cds.results.phrase import Phrase
from cds.results.segmentation import StructureVolume
from cds.results.slide import SlideScore, SlideStatus

MODEL_KEY = r"^[^:\s]+:[^:\s]+$"  # name:version


class JobKind(StrEnum):
    """What a job does."""

    RISK_FILE = "risk_file"
    PREREAD = "preread"
    PATHOLOGY = "pathology"
    ECG = "ecg"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskFilePayload(_Record):
    """Score a cohort file (CSV) with a risk method into a Parquet file."""

    method: str = Field(min_length=1, max_length=100)
    input: Path
    output: Path


class RiskFileOutcome(_Record):
    """Rows read, scored, out of the validated range and in error; the scored file's name."""

    rows: int = Field(ge=0)
    scored: int = Field(ge=0)
    out_of_range: int = Field(ge=0)
    errors: int = Field(ge=0)
    output: str


class StoredInstance(_Record):
    """A DICOM instance stored for a pre-read: its file and the UIDs it was stored under."""

    path: Path
    sop_instance_uid: str
    study_uid: str


class PrereadPayload(_Record):
    """Pre-read stored instances: radiographs with ``model``, CT series with ``ct_model`` (``None``: no CT)."""

    instances: tuple[StoredInstance, ...] = Field(min_length=1)
    output: Path
    model: str = Field(min_length=1)
    ct_model: str | None = None


class OutcomeKind(StrEnum):
    """What one pre-read outcome is: an image read for findings, or a series segmented."""

    RADIOGRAPH = "radiograph"
    CT = "ct"


class PrereadOutcome(_Record):
    """One pre-read image or series: which it was, which model read it, and what it found, in short.

    ``uid`` is the SOP Instance UID of a radiograph or the Series Instance UID of a CT series, and names the
    outcome's output folder (:meth:`cds.results.layout.OutputLayout.of_outcome`).
    """

    kind: OutcomeKind
    study_uid: str
    series_uid: str
    uid: str = Field(min_length=1)
    model: str = Field(pattern=MODEL_KEY)
    input_sha256: str
    summary: tuple[Finding, ...] | tuple[StructureVolume, ...]

    @model_validator(mode="after")
    def _summary_fits_kind(self) -> PrereadOutcome:
        wanted = Finding if self.kind is OutcomeKind.RADIOGRAPH else StructureVolume
        if not all(isinstance(entry, wanted) for entry in self.summary):
            raise ValueError(f"a {self.kind.value} outcome summarises {wanted.__name__} entries")
        return self

    @property
    def findings(self) -> tuple[Finding, ...]:
        """A radiograph's findings (none for a CT series)."""
        return tuple(entry for entry in self.summary if isinstance(entry, Finding))

    @property
    def structures(self) -> tuple[StructureVolume, ...]:
        """A CT series' segmented structures (none for a radiograph)."""
        return tuple(entry for entry in self.summary if isinstance(entry, StructureVolume))

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels a reader can give a verdict on: findings or structures."""
        return tuple(entry.label for entry in self.summary)


class Refusal(_Record):
    """An input that was not pre-read: where it came from, the reason code and sentence, the instances it covers.

    ``source`` names it in one line (a file, or "series of N files starting ..."); ``files`` lists every input file
    it covers (empty in reports written before it was kept).
    """

    source: str
    reason: str
    message: str
    sop_instance_uids: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


class PrereadReport(BaseModel):
    """Everything one pre-read run did: outcomes and refusals, in the order they happened (the job's outcome)."""

    model_config = ConfigDict(extra="forbid")

    outcomes: list[PrereadOutcome] = Field(default_factory=list)
    refusals: list[Refusal] = Field(default_factory=list)

    def outcome(self, uid: str) -> PrereadOutcome | None:
        """The outcome ``uid``, if there is one."""
        return next((o for o in self.outcomes if o.uid == uid), None)


class PathologyPayload(_Record):
    """Read an uploaded slide or tile with a patch classifier."""

    file: Path
    output: Path
    model: str = Field(min_length=1)


class PathologyOutcome(_Record):
    """The slide-level answer of a pathology read, the model's key, the input's sha256 and the files written."""

    status: SlideStatus
    reason: str = ""
    reason_phrase: Phrase | None = None
    label: str
    finding: Finding | None = None
    score: SlideScore | None = None
    warnings: tuple[str, ...] = ()
    warning_phrases: tuple[Phrase, ...] = ()
    model: str = Field(pattern=MODEL_KEY)
    input_sha256: str
    outputs: tuple[str, ...]


class EcgPayload(_Record):
    """Read an uploaded or stored ECG with a rhythm classifier; sex and age (when known) set the ST and QTc limits.

    ``study_uid`` and ``sop_instance_uid`` are kept for a DICOM ECG (STOW-RS), empty otherwise.
    """

    file: Path
    output: Path
    model: str = Field(min_length=1)
    sex: str | None = Field(default=None, pattern=r"^(male|female)$")
    age_years: float | None = Field(default=None, ge=0, le=130)
    study_uid: str = ""
    sop_instance_uid: str = ""


class EcgOutcome(_Record):
    """The answer of an ECG read: rhythm, measurements, flags; the model's key, the input's sha256, the files."""

    rhythm: RhythmCall
    classifier: tuple[Finding, ...] = ()
    measurements: Measurements
    flags: tuple[EcgFlag, ...] = ()
    warnings: tuple[str, ...] = ()
    warning_phrases: tuple[Phrase, ...] = ()
    model: str = Field(pattern=MODEL_KEY)
    input_sha256: str
    outputs: tuple[str, ...]

    @property
    def critical(self) -> bool:
        """Whether a flag needs urgent review."""
        return any(flag.severity.value == "critical" for flag in self.flags)


JobPayload = RiskFilePayload | PrereadPayload | PathologyPayload | EcgPayload
JobOutcome = RiskFileOutcome | PrereadReport | PathologyOutcome | EcgOutcome
PAYLOADS: dict[JobKind, type[JobPayload]] = {
    JobKind.RISK_FILE: RiskFilePayload, JobKind.PREREAD: PrereadPayload, JobKind.PATHOLOGY: PathologyPayload,
    JobKind.ECG: EcgPayload}
OUTCOMES: dict[JobKind, type[JobOutcome]] = {
    JobKind.RISK_FILE: RiskFileOutcome, JobKind.PREREAD: PrereadReport, JobKind.PATHOLOGY: PathologyOutcome,
    JobKind.ECG: EcgOutcome}
T = TypeVar("T", bound=BaseModel)


def job_kind(value: str) -> JobKind:
    """The kind named ``value``.

    Raises:
        InvalidInputError: ``unknown_job_kind``, listing the kinds.
    """
    try:
        return JobKind(value)
    except ValueError:
        raise InvalidInputError(f"no job kind {value!r}; kinds: {', '.join(JobKind)}",
                                code="unknown_job_kind") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())[:400]


def _parse(model: type[T], text: str, what: str, code: str) -> T:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise InvalidInputError(f"the {what} does not match {model.__name__}: {_problems(exc)}", code=code) from exc


def parse_payload(kind: JobKind | str, text: str) -> JobPayload:
    """A job's payload, validated against its kind's model.

    Raises:
        InvalidInputError: ``unknown_job_kind``, or ``invalid_payload`` naming what does not fit.
    """
    return _parse(PAYLOADS[job_kind(str(kind))], text, "job payload", "invalid_payload")


def parse_outcome(kind: JobKind | str, text: str) -> JobOutcome:
    """A finished job's outcome, validated against its kind's model.

    Raises:
        InvalidInputError: ``unknown_job_kind``, or ``invalid_outcome`` naming what does not fit.
    """
    return _parse(OUTCOMES[job_kind(str(kind))], text, "job outcome", "invalid_outcome")


@dataclass(frozen=True)
class ClaimedJob:
    """A job a worker holds: who queued it and its payload, still as JSON until the handler reads it.

    Attributes:
        id: The job's id.
        kind: Its kind, as stored.
        payload: Its payload, JSON.
        actor: Who queued it.
        role: Their roles, as recorded.
        subject: The patient it concerns (empty when none is known).
        attempts: This attempt's number (1 for the first).
        site: The site whose job it is.
    """

    id: str
    kind: str
    payload: str
    actor: str
    role: str
    subject: str
    attempts: int
    site: str = ""

    def payload_as(self, model: type[T]) -> T:
        """The payload read through ``model``.

        Raises:
            InvalidInputError: ``invalid_payload`` naming what does not fit.
        """
        return _parse(model, self.payload, f"{self.kind} job payload", "invalid_payload")


@dataclass(frozen=True)
class JobRecord:
    """A job as the store holds it, with its payload and (when done) its outcome parsed.

    Attributes:
        id: The job's id.
        kind: What it does.
        state: ``queued``, ``running``, ``done`` or ``failed``.
        attempts: Times a worker took it.
        error: The last failure, ``"<code>: <message>"`` (empty when none).
        error_code: The last failure's reason code alone.
        refused: Whether it failed because its input was refused (rather than for want of resources).
        subject: The patient it concerns (``Patient/<id>``; empty when none is known).
        created_by: Who queued it.
        role: Their roles, as recorded.
        created_at: When it was queued (naive UTC, as the queue stores it).
        updated_at: Its last change (naive UTC).
        payload: What it works on.
        outcome: What it left (``None`` until done).
        site: The site whose job it is.
    """

    id: str
    kind: JobKind
    state: str
    attempts: int
    error: str
    error_code: str
    refused: bool
    subject: str
    created_by: str
    role: str
    created_at: dt.datetime
    updated_at: dt.datetime
    payload: JobPayload
    outcome: JobOutcome | None
    site: str = ""

    def payload_as(self, model: type[T]) -> T:
        """The payload, as the model its kind implies.

        Raises:
            InvalidInputError: ``invalid_payload`` when it is another kind's.
        """
        if not isinstance(self.payload, model):
            raise InvalidInputError(f"job {self.id} is a {self.kind.value} job, not {model.__name__}",
                                    code="invalid_payload")
        return self.payload

    def outcome_as(self, model: type[T]) -> T:
        """The outcome, as the model its kind implies.

        Raises:
            InvalidInputError: ``job_not_done`` when there is none yet; ``invalid_outcome`` for another kind's.
        """
        if self.outcome is None:
            raise InvalidInputError(f"{self.kind.value} job {self.id} is {self.state}, not done", code="job_not_done")
        if not isinstance(self.outcome, model):
            raise InvalidInputError(f"job {self.id} is a {self.kind.value} job, not {model.__name__}",
                                    code="invalid_outcome")
        return self.outcome
