"""Slide results: what was read, by which model, and what it found; the patch grid and heatmap beside it.

Like every cds result a :class:`SlideResult` carries the model's identity (name, version, artifact sha256, backend)
and the input's sha256 (of the file's bytes, hashed in chunks), plus the sha256 of the patch preprocessing used,
since the same network served different stain targets would give different answers. A slide without tissue is a
result too, with status ``no_tissue`` and no score, never a score of zero. :class:`SlideScore` is the slide-level
aggregation of patch probabilities (see :mod:`cds.pipelines.pathology.aggregate` for how it is computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cds.models.backend import ModelRef
from cds.models.tile_preprocessing import TilePreprocessing
from cds.results.classification import Finding
from cds.results.phrase import Phrase


class SlideStatus(StrEnum):
    """Whether a slide was scored."""

    SCORED = "scored"
    NO_TISSUE = "no_tissue"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SlideSource(_Frozen):
    """What was read (never a patient identifier: the file name only).

    Attributes:
        name: File or folder name.
        reader: The reader that opened it (``TiffSlide``, ``OpenSlideSlide``, ``DicomSlide``, ``ImageTile``).
        width: Level-0 width in pixels.
        height: Level-0 height in pixels.
        levels: Pyramid levels.
        mpp: Level-0 microns per pixel (stated by the file, or given by the caller); None when unknown.
        tissue_fraction: Share of the slide the tissue mask covers (0-1).
    """

    name: str
    reader: str
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    levels: int = Field(ge=1)
    mpp: float | None
    tissue_fraction: float = Field(ge=0.0, le=1.0)


class TileSummary(_Frozen):
    """How the slide was cut into patches.

    Attributes:
        level: Pyramid level the patches were read from.
        level_mpp: Microns per pixel of that level (None for a single tile of unknown resolution).
        read_size: Patch side read at that level, before resizing to the model's size.
        grid_columns: Patches across the level.
        grid_rows: Patches down the level.
        tissue_threshold: Least tissue fraction for a patch to be scored.
        scored: Patches scored (those with enough tissue).
        unnormalised: Scored patches the stain normaliser could not fit (scored as they were).
    """

    level: int = Field(ge=0)
    level_mpp: float | None
    read_size: int = Field(ge=1)
    grid_columns: int = Field(ge=1)
    grid_rows: int = Field(ge=1)
    tissue_threshold: float = Field(ge=0.0, le=1.0)
    scored: int = Field(ge=0)
    unnormalised: int = Field(ge=0)


class SlideScore(BaseModel):
    """Slide-level aggregation of patch probabilities (see the module docstring).

    Attributes:
        top_k: How many patches the top-k mean averaged (fewer when the slide has fewer tissue patches).
        top_k_mean: Mean probability of the ``top_k`` highest patches; the slide score.
        mean_probability: Mean probability over all scored patches.
        max_probability: Highest patch probability.
        tumour_tiles: Patches at or above the threshold.
        tumour_area_fraction: ``tumour_tiles`` over scored patches (0-1).
        threshold: The operating threshold used.
        positive: Whether ``top_k_mean`` reaches the threshold.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_k: int = Field(ge=1)
    top_k_mean: float = Field(ge=0.0, le=1.0)
    mean_probability: float = Field(ge=0.0, le=1.0)
    max_probability: float = Field(ge=0.0, le=1.0)
    tumour_tiles: int = Field(ge=0)
    tumour_area_fraction: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(ge=0.0, le=1.0)
    positive: bool


class SlideResult(_Frozen):
    """One slide read by one patch classifier.

    Attributes:
        model: Which model, artifact and backend.
        input_sha256: sha256 of the input file's bytes (of every file, in name order, for a DICOM folder).
        preprocessing: The patch preprocessing used (resolution, size, stain target, scaling).
        preprocessing_sha256: Its hash.
        source: What was read.
        status: ``scored`` or ``no_tissue``.
        reason: Why there is no score (empty when scored), in English.
        reason_phrase: The same as a :class:`~cds.results.phrase.Phrase` (None when scored).
        label: The model label that was scored (e.g. ``tumour``).
        finding: The slide-level finding: probability = top-k mean, against the operating threshold.
        score: The slide-level aggregation.
        tiles: How the slide was cut (None when it was not: no tissue at all).
        intended_use: The model's intended use.
        warnings: Caveats (not for diagnostic use, assumed resolution, patches not normalised, ...).
        warning_phrases: The same caveats as phrases, one per warning in the same order.
        stage_ms: Wall time per stage; ``read_ms`` and ``preprocess_ms`` ran in the reader thread, overlapped with
            ``infer_ms``, and ``wait_ms`` is how long inference waited for patches.
        inference_ms: Time spent in the backend.
    """

    model: ModelRef
    input_sha256: str
    preprocessing: TilePreprocessing
    preprocessing_sha256: str
    source: SlideSource
    status: SlideStatus
    reason: str = ""
    reason_phrase: Phrase | None = None
    label: str
    finding: Finding | None = None
    score: SlideScore | None = None
    tiles: TileSummary | None = None
    intended_use: str
    warnings: tuple[str, ...] = ()
    warning_phrases: tuple[Phrase, ...] = ()
    stage_ms: dict[str, float] = Field(default_factory=dict)
    inference_ms: float = 0.0


@dataclass
class ProbabilityGrid:
    """Patch probabilities laid out on the patch grid, and where the grid sits on the slide.

    Attributes:
        values: float32 [rows, columns]; NaN where no patch was scored (glass, or too little tissue).
        extent0: Side of one grid cell in level-0 pixels.
        dimensions: ``(width, height)`` of level 0.
    """

    values: np.ndarray
    extent0: float
    dimensions: tuple[int, int]

    @classmethod
    def empty(cls, rows: int, columns: int, extent0: float, dimensions: tuple[int, int]) -> ProbabilityGrid:
        """A grid with nothing scored yet."""
        return cls(np.full((rows, columns), np.nan, np.float32), extent0, dimensions)

    @property
    def scored(self) -> int:
        """How many patches hold a probability."""
        return int(np.count_nonzero(~np.isnan(self.values)))


@dataclass
class SlideAnalysis:
    """A read slide: the typed result, the patch probabilities on their grid, and the heatmap overlay.

    Attributes:
        result: The typed result.
        grid: Patch probabilities (None when nothing was scored).
        heatmap: uint8 RGB thumbnail with the probabilities blended in (None when nothing was scored).
        not_for_diagnostic_use: The model's caveat, carried onto every output.
    """

    result: SlideResult
    grid: ProbabilityGrid | None = None
    heatmap: np.ndarray | None = None
    not_for_diagnostic_use: bool = True
