"""Segmentation results: per-structure volumes of one segmented series, with model and input identity."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from cds.models.backend import ModelRef


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
