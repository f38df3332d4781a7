"""Volume preprocessing shared by training and serving: onto a volumetric model's grid, and labels back again.

One way to do each step, used by the CT segmentation pipeline and by the training code that makes its inputs:

1. **Reorient** (:func:`canonical_axes`): transpose and flip the voxel axes so that they run (slice, row, column) =
   (superior, posterior, patient's left), the order of an ordinary axial series. Exact, no interpolation.
2. **Resample** (:func:`resample`) to the model's spacing: trilinear for intensities, nearest for labels. The new
   size along each axis is ``round(size × spacing / target)``; voxel centres are aligned (``align_corners=False``
   geometry, ``nearest-exact`` for labels), so upsampling labels and mapping them back returns them unchanged.
3. **Window** (:func:`window`): clip to ``(low, high)`` and scale linearly to [0, 1].

:func:`to_model_grid` runs all three and returns a :class:`ModelGrid` that remembers what was done;
:func:`labels_to_model_grid` maps a label volume the same way (for training) and :func:`labels_to_source_grid`
maps a model-grid label volume back onto the source voxels (nearest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cds.errors import InvalidInputError
from cds.models.spec import VolumePreprocessing
from cds.results.imaging import Volume

# canonical voxel axis i runs along LPS world axis CANONICAL_WORLD[i]: slice → z (superior), row → y (posterior),
# column → x (patient's left)
CANONICAL_WORLD = (2, 1, 0)
Shape3 = tuple[int, int, int]
Spacing3 = tuple[float, float, float]


@dataclass(frozen=True)
class ModelGrid:
    """Where a source volume's voxels went on the model grid.

    Attributes:
        axes: Source voxel axis that becomes canonical axis 0, 1, 2 (a ``np.transpose`` order).
        flips: Whether each canonical axis is flipped after the transpose.
        source_shape: Shape of the source volume (its own axis order).
        canonical_shape: Shape after reorientation, before resampling.
        canonical_spacing: Spacing (mm) after reorientation.
        shape: Shape on the model grid.
        spacing: Spacing (mm) of the model grid.
    """

    axes: Shape3
    flips: tuple[bool, bool, bool]
    source_shape: Shape3
    canonical_shape: Shape3
    canonical_spacing: Spacing3
    shape: Shape3
    spacing: Spacing3


def canonical_axes(affine: np.ndarray) -> tuple[Shape3, tuple[bool, bool, bool]]:
    """Transpose order and flips that bring voxel axes to (superior, posterior, patient's left).

    Each voxel axis is matched to the LPS world axis it runs closest to.

    Raises:
        InvalidInputError: ``oblique_orientation`` when two voxel axes run closest to one world axis.
    """
    directions = np.asarray(affine, dtype=np.float64)[:3, :3]
    world = [int(np.argmax(np.abs(directions[:, axis]))) for axis in range(3)]
    if sorted(world) != [0, 1, 2]:
        raise InvalidInputError(f"cannot match the voxel axes to patient axes (directions {directions.T.tolist()})",
                                code="oblique_orientation")
    axes = tuple(world.index(target) for target in CANONICAL_WORLD)
    flips = tuple(bool(directions[CANONICAL_WORLD[i], axes[i]] < 0) for i in range(3))
    return (axes[0], axes[1], axes[2]), (flips[0], flips[1], flips[2])


def _reorient(array: np.ndarray, axes: Shape3, flips: tuple[bool, bool, bool]) -> np.ndarray:
    out = np.transpose(array, axes)
    flipped = tuple(i for i in range(3) if flips[i])
    return np.ascontiguousarray(np.flip(out, axis=flipped) if flipped else out)


def model_shape(shape: Shape3, spacing: Spacing3, target: Spacing3) -> Shape3:
    """Size of the resampled grid: ``round(size × spacing / target)`` per axis, at least 1."""
    sizes = [max(1, int(round(n * s / t))) for n, s, t in zip(shape, spacing, target, strict=True)]
    return (sizes[0], sizes[1], sizes[2])


def resample(array: np.ndarray, shape: Shape3, *, labels: bool = False) -> np.ndarray:
    """``array`` [D, H, W] resampled to ``shape``: trilinear (float32) or, for ``labels``, nearest (same dtype)."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - torch's own alias

    if tuple(array.shape) == tuple(shape):
        return array.astype(array.dtype if labels else np.float32, copy=True)
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    with torch.inference_mode():
        if labels:
            out = F.interpolate(tensor, size=shape, mode="nearest-exact")
        else:
            out = F.interpolate(tensor, size=shape, mode="trilinear", align_corners=False)
    result: np.ndarray = out[0, 0].numpy()
    return result.astype(array.dtype) if labels else result


def window(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    """``values`` clipped to ``bounds = (low, high)`` and scaled to [0, 1] (float32)."""
    low, high = bounds
    scaled: np.ndarray = (np.asarray(values, dtype=np.float32) - np.float32(low)) / np.float32(high - low)
    result: np.ndarray = np.clip(scaled, 0.0, 1.0).astype(np.float32)
    return result


def model_grid(volume: Volume, params: VolumePreprocessing) -> ModelGrid:
    """Where ``volume`` goes on the model grid (no voxel is touched)."""
    axes, flips = canonical_axes(volume.affine)
    source = tuple(int(n) for n in volume.voxels.shape)
    if len(source) != 3:
        raise InvalidInputError(f"expected a 3-D volume, got shape {list(source)}", code="not_a_volume")
    canonical = (source[axes[0]], source[axes[1]], source[axes[2]])
    spacing = (float(volume.spacing[axes[0]]), float(volume.spacing[axes[1]]), float(volume.spacing[axes[2]]))
    target = params.spacing_mm
    return ModelGrid(axes=axes, flips=flips, source_shape=(source[0], source[1], source[2]),
                     canonical_shape=canonical, canonical_spacing=spacing,
                     shape=model_shape(canonical, spacing, target), spacing=target)


def to_model_grid(volume: Volume, params: VolumePreprocessing) -> tuple[np.ndarray, ModelGrid]:
    """The model's input image, float32 [D, H, W] in [0, 1], and the grid that maps it back."""
    grid = model_grid(volume, params)
    canonical = _reorient(volume.voxels, grid.axes, grid.flips)
    return window(resample(canonical, grid.shape), params.window), grid


def labels_to_model_grid(labels: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """A label volume on the source grid (same shape as the source voxels) mapped onto the model grid (nearest)."""
    if tuple(labels.shape) != grid.source_shape:
        raise InvalidInputError(f"labels of shape {list(labels.shape)} for a volume of {list(grid.source_shape)}",
                                code="label_shape")
    return resample(_reorient(labels, grid.axes, grid.flips), grid.shape, labels=True)


def labels_to_source_grid(labels: np.ndarray, grid: ModelGrid) -> np.ndarray:
    """A model-grid label volume mapped back onto the source voxels (nearest), in the source's axis order."""
    if tuple(labels.shape) != grid.shape:
        raise InvalidInputError(f"labels of shape {list(labels.shape)} for a model grid of {list(grid.shape)}",
                                code="label_shape")
    canonical = resample(labels, grid.canonical_shape, labels=True)
    flipped = tuple(i for i in range(3) if grid.flips[i])
    if flipped:
        canonical = np.flip(canonical, axis=flipped)
    return np.ascontiguousarray(np.transpose(canonical, np.argsort(grid.axes)))
