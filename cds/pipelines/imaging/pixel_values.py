"""Conversions of decoded pixels that run in the decoder process, each with the peak memory it adds per sample.

The pixel budget of :func:`cds.pipelines.imaging.dicom_reader.decode_pixels` counts these, so a file that is small
stored but huge as float32 (or float64 on the way) is refused before it is decoded, and the intermediates live and
die in the decoder process, under its address-space limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.imaging.dicom_reader import Conversion


def _modality_float32(pixels: np.ndarray, dataset: Any) -> np.ndarray:
    from pydicom.pixels.processing import apply_modality_lut

    return np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float32)


def _modality_extent(pixels: np.ndarray, dataset: Any) -> np.ndarray:
    if pixels.ndim != 2:
        raise InvalidInputError(f"expected one grey-level frame, got pixel array of shape {pixels.shape}",
                                code="not_greyscale")
    values = _modality_float32(pixels, dataset)
    return np.array([values.shape[0], values.shape[1], values.min(), values.max()], dtype=np.float64)


def _display(pixels: np.ndarray, dataset: Any) -> np.ndarray:
    from pydicom.pixels.processing import apply_modality_lut, apply_voi_lut

    if pixels.ndim != 2:
        raise InvalidInputError(f"expected one grey-level frame, got pixel array of shape {pixels.shape}",
                                code="not_greyscale")
    values = np.asarray(apply_voi_lut(apply_modality_lut(pixels, dataset), dataset), dtype=np.float32)
    if str(dataset.get("PhotometricInterpretation", "MONOCHROME2")) == "MONOCHROME1":
        np.subtract(values.max(), values, out=values)
    low, high = float(values.min()), float(values.max())
    values -= low
    values /= max(high - low, 1e-6)
    return values


MODALITY_FLOAT32 = Conversion(_modality_float32, work_bytes_per_sample=8 + 4)
"""Modality LUT (rescale slope and intercept) applied: float32 in the modality's units (HU for CT)."""

MODALITY_EXTENT = Conversion(_modality_extent, work_bytes_per_sample=8 + 4)
"""Of one grey-level frame, only ``[rows, columns, lowest, highest]`` in modality values (float64 [4]): what the
viewer needs to set its window, without sending the frame's pixels back from the decoder process. Raises
``not_greyscale`` for colour or multi-frame pixels."""

DISPLAY = Conversion(_display, work_bytes_per_sample=8 + 8 + 4)
"""One grey-level frame for display and models: modality LUT, then the VOI LUT or window when the file has one,
MONOCHROME1 inverted so that bright means dense, scaled to [0, 1] over its own range (float32 [H, W]).
Raises ``not_greyscale`` for colour or multi-frame pixels."""
