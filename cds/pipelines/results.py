"""Typed results. Every result carries the identity of the model that produced it and the hash of its input."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cds.models.backend import ModelRef
from cds.models.risk.base import RiskBand
from cds.models.spec import BackendKind


class Finding(BaseModel):
    """One label's probability against its operating threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float | None
    positive: bool


class ClassificationResult(BaseModel):
    """Per-label findings for one input item."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelRef
    input_sha256: str
    findings: tuple[Finding, ...]
    intended_use: str
    warnings: tuple[str, ...] = ()
    inference_ms: float

    @property
    def positives(self) -> tuple[Finding, ...]:
        """Findings at or above their threshold."""
        return tuple(f for f in self.findings if f.positive)


class StructureVolume(BaseModel):
    """One segmented structure: how many voxels carry its label and the volume they make."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    voxels: int = Field(ge=0)
    volume_ml: float = Field(ge=0.0)


class SegmentationResult(BaseModel):
    """Per-structure volumes of one segmented series (the label volume itself travels beside the result).

    ``spacing_mm`` is the (slice, row, column) voxel spacing of the label volume, which is the source series'
    grid; ``input_sha256`` is the hash of the exact model-grid input the network read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: ModelRef
    input_sha256: str
    structures: tuple[StructureVolume, ...]
    spacing_mm: tuple[float, float, float]
    intended_use: str
    warnings: tuple[str, ...] = ()
    inference_ms: float

    def structure(self, label: str) -> StructureVolume:
        """The entry of ``label``; raises ``KeyError`` listing the labels when there is none."""
        for entry in self.structures:
            if entry.label == label:
                return entry
        raise KeyError(f"no structure {label!r}; structures: {[s.label for s in self.structures]}")


def hash_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over tensor names, dtypes, shapes and bytes, in name order: the input's identity."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


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
