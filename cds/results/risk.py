"""Risk results: one patient's score from a validated equation or a risk model, and a patient's panel of topics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from cds.models.risk.base import RiskBand
from cds.models.spec import BackendKind


class MethodKind(StrEnum):
    """What produced a risk result."""

    EQUATION = "equation"
    MODEL = "model"


class MethodRef(BaseModel):
    """Identity of the equation or model behind a risk result.

    For an equation, ``sha256`` is the hash of the module that implements it; for a model, of its artifact.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: MethodKind
    name: str
    version: str
    title: str
    source: str
    sha256: str
    backend: BackendKind | None = None

    @property
    def key(self) -> str:
        """``name@version``: how a risk method is named in stored results, audit events and FHIR method codes."""
        return f"{self.name}@{self.version}"


class Contribution(BaseModel):
    """How much one input moved the score (unit given by the result's ``contribution_unit``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    value: float | str | None
    reference: float | str | None = None
    contribution: float


class RiskStatus(StrEnum):
    """Whether a score was produced."""

    SCORED = "scored"
    OUT_OF_RANGE = "out_of_range"


class RiskResult(BaseModel):
    """One patient's score from one equation or model, with the inputs used and their contributions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    method: MethodRef
    status: RiskStatus
    score: float | None
    score_unit: str
    band: RiskBand | None = None
    category: str | None = None
    out_of_range_fields: tuple[str, ...] = ()
    contributions: tuple[Contribution, ...] = ()
    contribution_unit: str = ""
    inputs: dict[str, float | str]
    input_sha256: str
    population: str
    warnings: tuple[str, ...] = ()
    outside_population: bool = False  # the equation is used outside the population it was derived in
    observed_at: dt.datetime | None = None  # a score from a time series: when its newest input was measured


class Topic(StrEnum):
    """What a panel entry is about."""

    CARDIOVASCULAR = "cardiovascular"
    DIABETES = "diabetes"
    KIDNEY = "kidney"


class NotScored(StrEnum):
    """Why a panel topic has no result (machine-readable; the entry's ``reason`` says it in words)."""

    MISSING_INPUTS = "missing_fields"  # inputs the record does not hold, or holds unusably (see reason)
    IMPOSSIBLE_VALUE = "impossible_value"  # a value outside physiological limits
    ESTABLISHED_ASCVD = "established_ascvd"  # secondary prevention: primary-prevention equations do not apply
    KNOWN_DIABETES = "known_diabetes"  # the record shows diabetes: scores of new-onset diabetes do not apply


@dataclass(frozen=True)
class PanelEntry:
    """One topic of a patient's panel: a result, or the method that was tried and why it gave none.

    Attributes:
        topic: What the entry is about.
        result: The score, or ``None``.
        method: The equation tried (the scoring one when there is a result).
        missing: Inputs it lacked.
        outcome: What the method predicts.
        not_scored: Why there is no result; ``None`` when there is one.
        reason: The why in words: which inputs are missing or unusable and why, the impossible value, or the
            evidence of established ASCVD or of known diabetes.
    """

    topic: Topic
    result: RiskResult | None
    method: str
    missing: tuple[str, ...] = ()
    outcome: str = ""
    not_scored: NotScored | None = None
    reason: str = ""
