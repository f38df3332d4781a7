"""What an imaging pre-read answers, beside its typed result: the image it read and the pictures it made.

:class:`RadiographPreread` and :class:`CtSegmentation` carry a pipeline's whole answer to the writers in
:mod:`cds.interop` (JSON, FHIR, DICOM SR/SEG/SC, PNG): the typed result, the source's identity and header, the
display image at model size with one heatmap per positive finding, or the label volume on the source grid with the
volume it was computed from. :class:`Volume` is a CT/MR series assembled in slice order with its affine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom import Dataset

from cds.results.classification import ClassificationResult
from cds.results.segmentation import SegmentationResult


@dataclass(frozen=True)
class SourceImage:
    """Which DICOM image was read."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str
    modality: str
    name: str


@dataclass(frozen=True)
class Volume:
    """A 3-D image: ``voxels`` float32 [slices, rows, columns] (rescaled), its affine and provenance."""

    voxels: np.ndarray
    affine: np.ndarray  # 4x4, (slice, row, column, 1) -> LPS millimetres
    spacing: tuple[float, float, float]  # slice, row, column (mm)
    study_uid: str
    series_uid: str
    modality: str
    sop_instance_uids: tuple[str, ...]  # in slice order

    def monai_meta(self) -> dict[str, object]:
        """Metadata in MONAI's conventions for a channel-first [1, x, y, z] tensor (``space`` LPS)."""
        return {"affine": self.affine, "spacing": np.array(self.spacing), "space": "LPS",
                "original_channel_dim": "no_channel", "spatial_shape": np.array(self.voxels.shape)}


@dataclass
class RadiographPreread:
    """A pre-read: the typed result, the display image at model size, one heatmap per positive finding."""

    result: ClassificationResult
    source: SourceImage
    image: np.ndarray  # float32 [S, S] in [0, 1], what the model saw (before scaling)
    heatmaps: dict[str, np.ndarray] = field(default_factory=dict)  # label -> float32 [S, S], at most its probability
    heatmap_method: str = "off"  # how they were made: "cam" (activation maps), "occlusion" or "off"
    stage_ms: dict[str, float] = field(default_factory=dict)
    plausibility: float | None = None  # the gate's score, when the contract names a gate
    header: Dataset | None = None  # the source's DICOM attributes, for outputs that reference it (SR, SC)
    not_for_diagnostic_use: bool = True  # the model's caveat, carried onto every output


@dataclass
class CtSegmentation:
    """A segmented series: the typed result, the label volume on the source grid, the volume read, stage times."""

    result: SegmentationResult
    labels: np.ndarray  # uint8 [slices, rows, columns] in the volume's slice order; values index spec.labels
    volume: Volume
    stage_ms: dict[str, float] = field(default_factory=dict)
