"""The typed result of reading one slide (or one tile): what was read, by which model, and what it found.

Like every cds result it carries the model's identity (name, version, artifact sha256, backend) and the input's
sha256 (of the file's bytes, hashed in chunks), plus the sha256 of the patch preprocessing used, since the same
network served different stain targets would give different answers. A slide without tissue is a result too,
with status ``no_tissue`` and no score, never a score of zero.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cds.models.backend import ModelRef
from cds.models.registry import sha256_file
from cds.pipelines.pathology.aggregate import ProbabilityGrid, SlideScore
from cds.pipelines.pathology.preprocess import TilePreprocessing
from cds.pipelines.results import Finding


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


class SlideResult(_Frozen):
    """One slide read by one patch classifier.

    Attributes:
        model: Which model, artifact and backend.
        input_sha256: sha256 of the input file's bytes (of every file, in name order, for a DICOM folder).
        preprocessing: The patch preprocessing used (resolution, size, stain target, scaling).
        preprocessing_sha256: Its hash.
        source: What was read.
        status: ``scored`` or ``no_tissue``.
        reason: Why there is no score (empty when scored).
        label: The model label that was scored (e.g. ``tumour``).
        finding: The slide-level finding: probability = top-k mean, against the operating threshold.
        score: The slide-level aggregation.
        tiles: How the slide was cut (None when it was not: no tissue at all).
        intended_use: The model's intended use.
        warnings: Caveats (not for diagnostic use, assumed resolution, patches not normalised, ...).
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
    label: str
    finding: Finding | None = None
    score: SlideScore | None = None
    tiles: TileSummary | None = None
    intended_use: str
    warnings: tuple[str, ...] = ()
    stage_ms: dict[str, float] = Field(default_factory=dict)
    inference_ms: float = 0.0


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


def input_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks; of a folder's files (names and bytes, in name order)."""
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for member in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{member.relative_to(path).as_posix()}\0".encode())
        digest.update(bytes.fromhex(sha256_file(member)))
    return digest.hexdigest()
