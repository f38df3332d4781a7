"""Check a DICOM image or series against a model's :class:`~cds.models.spec.ImagingContract` before inference.

Only header attributes are read, so a study that does not fit is refused before any pixel is decoded. Each
refusal is an :class:`~cds.errors.InvalidInputError` with a reason code and a sentence naming what the model
expects and what arrived, e.g. ``wrong_modality: model expects CR/DX, got MR``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cds.errors import InvalidInputError
from cds.models.spec import ImagingContract
from cds.pipelines.imaging.dicom_reader import DicomInstance


def _text(instance: DicomInstance, keyword: str) -> str:
    return str(instance.dataset.get(keyword, "") or "").strip().upper()


def _one_of(instance: DicomInstance, keyword: str, allowed: Sequence[str], code: str, what: str,
            *, required: bool) -> None:
    value = _text(instance, keyword)
    if not value and not required:
        return
    if value not in {a.upper() for a in allowed}:
        raise InvalidInputError(f"model expects {what} {'/'.join(allowed)}, got {value or 'none'} ({instance.source})",
                                code=code)


def check_instance(instance: DicomInstance, contract: ImagingContract) -> None:
    """Modality, body part, view, photometric interpretation, size and pixel spacing of one image."""
    _one_of(instance, "Modality", [m.value for m in contract.modalities], "wrong_modality", "modality",
            required=True)
    if contract.body_parts:
        _one_of(instance, "BodyPartExamined", contract.body_parts, "wrong_body_part", "body part", required=False)
    if contract.views:
        _one_of(instance, "ViewPosition", contract.views, "wrong_view", "view", required=False)
    _one_of(instance, "PhotometricInterpretation", contract.photometric, "wrong_photometric",
            "photometric interpretation", required=True)
    rows, columns = int(instance.dataset.get("Rows", 0) or 0), int(instance.dataset.get("Columns", 0) or 0)
    if rows < contract.min_rows or columns < contract.min_columns:
        raise InvalidInputError(
            f"model needs at least {contract.min_rows}x{contract.min_columns} pixels, got {rows}x{columns} "
            f"({instance.source})", code="image_too_small")
    spacing = pixel_spacing(instance.dataset)
    if spacing is None:
        if contract.spacing_required:
            raise InvalidInputError(f"model needs the physical pixel spacing, and the image states none (Pixel Spacing "
                                    f"and Imager Pixel Spacing absent, zero or negative) ({instance.source})",
                                    code="spacing_unknown")  # fmt: skip
        return
    if contract.pixel_spacing_mm is not None:
        low, high = contract.pixel_spacing_mm
        if not all(low <= v <= high for v in spacing):
            raise InvalidInputError(f"model expects pixel spacing {low}-{high} mm, got {list(spacing)} "
                                    f"({instance.source})", code="spacing_out_of_range")  # fmt: skip


def pixel_spacing(header: Any) -> tuple[float, float] | None:
    r"""Row and column spacing in mm of a DICOM header: Pixel Spacing, else Imager Pixel Spacing, else None.

    ``0\0`` (which many CR systems write), negative, non-finite, malformed or absent values mean "unknown".
    """
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        try:
            values = [float(v) for v in header.get(keyword) or ()]  # one value (not iterable): unknown
        except (TypeError, ValueError):
            continue
        if len(values) == 2 and all(math.isfinite(v) and v > 0 for v in values):
            return values[0], values[1]
    return None


def check_series(instances: Sequence[DicomInstance], contract: ImagingContract) -> None:
    """Every instance, plus the slice count."""
    if not contract.min_slices <= len(instances) <= (contract.max_slices or len(instances)):
        limit = f"{contract.min_slices}-{contract.max_slices}" if contract.max_slices else f">= {contract.min_slices}"
        raise InvalidInputError(f"model expects {limit} slices, got {len(instances)}", code="wrong_slice_count")
    for instance in instances:
        check_instance(instance, contract)
