"""Group DICOM instances into studies and series, and build a CT/MR volume with its affine.

Slices are ordered by the projection of ImagePositionPatient on the slice normal (the cross product of the row and
column direction cosines of ImageOrientationPatient), never by InstanceNumber. Each slice's pixels go through its
own rescale slope and intercept (Hounsfield units for CT). A series with mixed orientations, duplicate positions or
a gap larger than 1.5 × the median slice spacing (a missing slice) is refused with a reason code.

The affine maps voxel indices (slice, row, column) to DICOM patient coordinates (LPS, millimetres).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.imaging.dicom_contract import pixel_spacing
from cds.pipelines.imaging.dicom_reader import DEFAULT_MAX_PIXEL_BYTES, DicomInstance, declared_samples
from cds.pipelines.imaging.pixel_values import MODALITY_FLOAT32
from cds.results.imaging import Volume

SeriesKey = tuple[str, str]  # (StudyInstanceUID, SeriesInstanceUID)


def group_series(instances: Iterable[DicomInstance]) -> dict[SeriesKey, list[DicomInstance]]:
    """Instances by (study, series) UID, in input order.

    An instance without a Series Instance UID is a group of its own (keyed by its place in the input), never put
    together with others that lack one.
    """
    groups: dict[SeriesKey, list[DicomInstance]] = defaultdict(list)
    for index, instance in enumerate(instances):
        ds = instance.dataset
        series = str(ds.get("SeriesInstanceUID", "") or "").strip() or f"#{index}"  # no UID: a series of one
        groups[(str(ds.get("StudyInstanceUID", "") or ""), series)].append(instance)
    return dict(groups)


def _vector(instance: DicomInstance, keyword: str, length: int) -> np.ndarray:
    value = instance.dataset.get(keyword)
    try:
        array = np.array([float(v) for v in value], dtype=np.float64) if value is not None else None
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{instance.source}: {keyword} is not numeric", code="invalid_geometry") from exc
    if array is None or array.shape != (length,):
        raise InvalidInputError(f"{instance.source}: {keyword} missing or malformed", code="invalid_geometry")
    return array


def _ordered(instances: list[DicomInstance]) -> tuple[list[DicomInstance], np.ndarray, np.ndarray, float]:
    """Instances sorted along the slice normal; (sorted, orientation 2x3, first position, slice spacing)."""
    orientation = _vector(instances[0], "ImageOrientationPatient", 6).reshape(2, 3)
    for instance in instances[1:]:
        if not np.allclose(_vector(instance, "ImageOrientationPatient", 6).reshape(2, 3), orientation, atol=1e-4):
            raise InvalidInputError(f"{instance.source}: slices of one series have different orientations",
                                    code="mixed_orientation")
    normal = np.cross(orientation[0], orientation[1])
    positions = np.array([_vector(i, "ImagePositionPatient", 3) for i in instances])
    distance = positions @ normal
    order = np.argsort(distance, kind="stable")
    steps = np.diff(distance[order])
    if len(steps) and steps.min() < 1e-3:
        raise InvalidInputError("two slices share one position along the slice normal", code="duplicate_slices")
    spacing = float(np.median(steps)) if len(steps) else float(instances[0].dataset.get("SliceThickness", 1.0) or 1.0)
    if len(steps) and steps.max() > 1.5 * spacing:
        gap = int(np.argmax(steps))
        raise InvalidInputError(
            f"slice gap of {steps.max():.2f} mm after slice {gap + 1} of {len(instances)} (median spacing "
            f"{spacing:.2f} mm): slices are missing", code="missing_slices")
    return [instances[i] for i in order], orientation, positions[order[0]], spacing


def build_volume(instances: list[DicomInstance], max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> Volume:
    """Stack one series' slices into a rescaled volume with its affine.

    Raises:
        InvalidInputError: ``empty_series``, ``image_too_large`` (whole series over the cap, before decoding),
            ``invalid_geometry``, ``spacing_unknown``, ``mixed_orientation``, ``duplicate_slices``, ``missing_slices``,
            ``inconsistent_slices`` (different sizes), or any reason from decoding a slice.
    """
    if not instances:
        raise InvalidInputError("no instances in the series", code="empty_series")
    total = sum(declared_samples(i) for i in instances) * np.dtype(np.float32).itemsize  # the volume itself
    if total > max_pixel_bytes:
        raise InvalidInputError(f"series needs {total / 2**20:.0f} MiB as float32 voxels, over the "
                                f"{max_pixel_bytes / 2**20:.0f} MiB limit", code="image_too_large")
    ordered, orientation, origin, spacing = _ordered(instances)
    voxels: np.ndarray | None = None
    for index, instance in enumerate(ordered):
        values = instance.pixels(max_pixel_bytes, MODALITY_FLOAT32)  # decoded and rescaled in the decoder process
        if voxels is None:
            voxels = np.empty((len(ordered), *values.shape), dtype=np.float32)
        elif values.shape != voxels.shape[1:]:
            raise InvalidInputError(f"{instance.source}: slice shape {values.shape} differs from {voxels.shape[1:]}",
                                    code="inconsistent_slices")
        voxels[index] = values
    assert voxels is not None
    spacing_rc = pixel_spacing(ordered[0].dataset)
    if spacing_rc is None:
        raise InvalidInputError(f"{ordered[0].source}: a volume needs its pixel spacing, and the series states none "
                                "usable (Pixel Spacing and Imager Pixel Spacing absent, zero or negative)",
                                code="spacing_unknown")  # fmt: skip
    row_spacing, column_spacing = spacing_rc
    normal = np.cross(orientation[0], orientation[1])
    affine = np.eye(4)
    # voxel (k, i, j): k along the normal, i down the rows (column direction cosine), j along a row
    affine[:3, 0] = normal * spacing
    affine[:3, 1] = orientation[1] * row_spacing
    affine[:3, 2] = orientation[0] * column_spacing
    affine[:3, 3] = origin
    ds = ordered[0].dataset
    return Volume(
        voxels=voxels,
        affine=affine,
        spacing=(spacing, row_spacing, column_spacing),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        modality=str(ds.get("Modality", "")),
        sop_instance_uids=tuple(str(i.dataset.get("SOPInstanceUID", "")) for i in ordered),
    )
