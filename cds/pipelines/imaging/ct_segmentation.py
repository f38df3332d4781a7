"""CT segmentation: a series (DICOM instances or a built volume) → label volume and per-structure volumes in mL.

Stages, each timed in ``stage_ms``: the model's imaging contract is checked from the headers (``contract_ms``),
the slices are assembled into a volume in Hounsfield units (``decode_ms``), the volume is reoriented, resampled and
windowed onto the model grid (``preprocess_ms``, :mod:`cds.pipelines.imaging.ct_volume`), MONAI's sliding-window inferer
runs the backend over overlapping windows and blends their class probabilities (``infer_ms``), and the arg-max
labels (cut to each structure's largest part when the spec says ``largest_component_only``) go back onto the source
voxels, where each structure's voxels are counted (``postprocess_ms``). The backend
is only ever called through :meth:`Backend.infer` with NumPy arrays.

Refusals are :class:`~cds.errors.InvalidInputError` with a reason code: those of
:func:`~cds.pipelines.imaging.dicom_contract.check_series` and :func:`~cds.pipelines.imaging.dicom_series.build_volume`
(``wrong_modality``, ``wrong_slice_count``, ``missing_slices``, …), ``slice_spacing_out_of_range``,
``oblique_orientation`` and ``volume_too_large`` (the model grid would exceed ``max_model_voxels``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cds.errors import InvalidInputError
from cds.models.backend import Backend
from cds.models.spec import ImagingContract, Task, VolumePreprocessing
from cds.pipelines.imaging.ct_volume import ModelGrid, labels_to_source_grid, model_grid, to_model_grid
from cds.pipelines.imaging.dicom_contract import check_series
from cds.pipelines.imaging.dicom_reader import DEFAULT_MAX_PIXEL_BYTES, DicomInstance
from cds.pipelines.imaging.dicom_series import build_volume
from cds.pipelines.timing import StageTimer
from cds.results.identity import hash_arrays
from cds.results.imaging import CtSegmentation, Volume
from cds.results.segmentation import SegmentationResult, StructureVolume

Predictor = Callable[[np.ndarray], np.ndarray]  # float32 [B, 1, *roi] → float32 [B, classes, *roi] probabilities


def sliding_window_probabilities(image: np.ndarray, predictor: Predictor, params: VolumePreprocessing, *,
                                 sw_batch_size: int = 1, blend: str = "gaussian") -> np.ndarray:
    """Blended class probabilities float32 [classes, D, H, W] of a model-grid image [D, H, W].

    ``predictor`` sees batches of ``params.roi_size`` windows (the image is padded with 0, the window's low end,
    where it is smaller than a window); MONAI's inferer places them and blends their overlaps.
    """
    import torch
    from monai.inferers.utils import sliding_window_inference

    def run(windows: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.asarray(predictor(windows.numpy().astype(np.float32, copy=False))))

    with torch.inference_mode():
        blended = sliding_window_inference(
            torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None, None], roi_size=params.roi_size,
            sw_batch_size=sw_batch_size, predictor=run, overlap=params.overlap, mode=blend, progress=False)
    probabilities: np.ndarray = torch.as_tensor(blended)[0].numpy()
    return probabilities


def keep_largest_components(labels: np.ndarray, classes: int) -> np.ndarray:
    """``labels`` with every structure (1 … classes - 1) cut to its largest face-connected part; the rest is 0."""
    from scipy import ndimage

    out = labels.copy()
    for index in range(1, classes):
        mask = labels == index
        components, count = ndimage.label(mask)
        if count > 1:
            sizes = np.bincount(components.ravel())
            sizes[0] = 0
            out[mask & (components != int(np.argmax(sizes)))] = 0
    return out


def source_labels(probabilities: np.ndarray, grid: ModelGrid, params: VolumePreprocessing) -> np.ndarray:
    """Source-grid labels (uint8) from model-grid probabilities [classes, D, H, W].

    The arg-max on the model grid, cut to each structure's largest part when ``params.largest_component_only``,
    mapped back onto the source voxels (nearest).
    """
    labels = np.argmax(probabilities, axis=0).astype(np.uint8)
    if params.largest_component_only:
        labels = keep_largest_components(labels, probabilities.shape[0])
    return labels_to_source_grid(labels, grid)


@dataclass(frozen=True)
class CtSegmentationOptions:
    """How to run a CT segmentation model.

    Attributes:
        sw_batch_size: Windows per backend call (at most the model's ``max_batch_size``).
        blend: How overlapping windows are blended: ``gaussian`` (centre-weighted) or ``constant``.
        max_pixel_bytes: Cap on the decoded pixels of the whole series.
        max_model_voxels: Cap on the voxels of the resampled model grid (``volume_too_large`` above it).
    """

    sw_batch_size: int = 4
    blend: Literal["gaussian", "constant"] = "gaussian"
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES
    max_model_voxels: int = 48 * 2**20


class CtSegmentationPipeline:
    """Runs a volumetric segmentation model over CT series.

    Args:
        backend: A backend for a segmentation model with ``volume`` preprocessing and a [-1, 1, D, H, W] input.
        options: Window batching, blending and size caps.

    Raises:
        InvalidInputError: ``wrong_task`` when the model is not a volumetric segmentation model.
    """

    def __init__(self, backend: Backend, options: CtSegmentationOptions | None = None) -> None:
        spec = backend.spec
        shape = spec.inputs[0].shape
        if spec.task is not Task.SEGMENTATION or spec.volume is None or len(shape) != 5 or shape[1] != 1:
            raise InvalidInputError(
                f"model {spec.key} is not a single-channel volumetric segmentation model (task {spec.task.value}, "
                f"input {list(shape)}, volume preprocessing {'set' if spec.volume else 'absent'})", code="wrong_task")
        self.backend = backend
        self.params: VolumePreprocessing = spec.volume
        self.options = options or CtSegmentationOptions()

    def _predict(self, windows: np.ndarray) -> np.ndarray:
        spec = self.backend.spec
        result: np.ndarray = self.backend.infer({spec.inputs[0].name: windows})[spec.outputs[0].name]
        return result

    def __call__(self, series: Sequence[DicomInstance] | Volume) -> CtSegmentation:
        """Segment one series; raises :class:`InvalidInputError` (with its reason code) when refused."""
        spec, timer = self.backend.spec, StageTimer()
        with timer.stage("contract"):
            if not isinstance(series, Volume) and spec.imaging is not None:
                check_series(list(series), spec.imaging)
        with timer.stage("decode"):
            volume = series if isinstance(series, Volume) else build_volume(list(series), self.options.max_pixel_bytes)
            if spec.imaging is not None:
                check_volume(volume, spec.imaging)
        with timer.stage("preprocess"):
            grid = model_grid(volume, self.params)
            if int(np.prod(grid.shape)) > self.options.max_model_voxels:
                raise InvalidInputError(f"the volume resamples to {list(grid.shape)} voxels, over the limit of "
                                        f"{self.options.max_model_voxels}", code="volume_too_large")
            image, grid = to_model_grid(volume, self.params)
        with timer.stage("infer"):
            batch = min(self.options.sw_batch_size, spec.max_batch_size)
            probabilities = sliding_window_probabilities(image, self._predict, self.params, sw_batch_size=batch,
                                                         blend=self.options.blend)
        with timer.stage("postprocess"):
            labels = source_labels(probabilities, grid, self.params)
            result = SegmentationResult(
                model=self.backend.metadata().model,
                input_sha256=hash_arrays({spec.inputs[0].name: image[None, None]}),
                structures=structure_volumes(labels, spec.labels, volume.spacing),
                spacing_mm=volume.spacing,
                intended_use=spec.intended_use,
                warnings=_warnings(labels, spec.labels, spec.not_for_diagnostic_use),
                inference_ms=timer.ms["infer_ms"],
            )
        return CtSegmentation(result=result, labels=labels, volume=volume, stage_ms=timer.ms)


def structure_volumes(labels: np.ndarray, names: Sequence[str],
                      spacing: tuple[float, float, float]) -> tuple[StructureVolume, ...]:
    """Voxel count and volume (mL) of every label but the background (index 0)."""
    counts = np.bincount(labels.ravel(), minlength=len(names))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    return tuple(StructureVolume(label=name, voxels=int(counts[i]), volume_ml=float(counts[i]) * voxel_ml)
                 for i, name in enumerate(names) if i > 0)


def check_volume(volume: Volume, contract: ImagingContract) -> None:
    """What the contract says about an assembled volume: modality, slice count, in-plane and slice spacing.

    The reason codes are those of :func:`~cds.pipelines.imaging.dicom_contract.check_series`, plus
    ``slice_spacing_out_of_range``.
    """
    allowed = [m.value for m in contract.modalities]
    if volume.modality.upper() not in allowed:
        raise InvalidInputError(f"model expects modality {'/'.join(allowed)}, got {volume.modality or 'none'}",
                                code="wrong_modality")
    slices = int(volume.voxels.shape[0])
    if slices < contract.min_slices or (contract.max_slices is not None and slices > contract.max_slices):
        raise InvalidInputError(f"model expects {contract.min_slices}-{contract.max_slices or 'any'} slices, got "
                                f"{slices}", code="wrong_slice_count")
    checks = ((contract.pixel_spacing_mm, volume.spacing[1:], "spacing_out_of_range", "pixel spacing"),
              (contract.slice_spacing_mm, volume.spacing[:1], "slice_spacing_out_of_range", "slice spacing"))
    for bounds, values, code, what in checks:
        if bounds is not None and not all(bounds[0] <= v <= bounds[1] for v in values):
            raise InvalidInputError(f"model expects {what} {bounds[0]}-{bounds[1]} mm, got "
                                    f"{[round(v, 3) for v in values]}", code=code)


def _warnings(labels: np.ndarray, names: Sequence[str], not_for_diagnostic_use: bool) -> tuple[str, ...]:
    """Structures not found, and structures cut by the first or last slice (their volume is a lower bound)."""
    warnings = ["not for diagnostic use"] if not_for_diagnostic_use else []
    present = set(np.unique(labels).tolist())
    edges = set(np.unique(labels[0]).tolist()) | set(np.unique(labels[-1]).tolist())
    for index, name in enumerate(names):
        if index == 0:
            continue
        if index not in present:
            warnings.append(f"{name}: not found")
        elif index in edges:
            warnings.append(f"{name}: reaches the first or last slice, so the series may not cover all of it "
                            "(its volume is a lower bound)")
    return tuple(warnings)
