"""Classification results: per-label probabilities against operating thresholds, with model and input identity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cds.models.backend import ModelRef


class Finding(BaseModel):
    """One label's probability against its operating threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float | None
    positive: bool

    @property
    def ratio(self) -> float | None:
        """Probability over threshold (None without a positive threshold): how far past the call a finding is."""
        return self.probability / self.threshold if self.threshold else None


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
