"""Helpers that write small TIFF pyramids with known content, for the pathology tests."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import tifffile

from cds.pipelines.pathology.tissue import TissueMask
from training.data.he_slide import GeneratedSlide
from training.data.he_tiles import Layout


def block_mean(image: np.ndarray, factor: int) -> np.ndarray:
    """Mean over factor × factor blocks, edges padded with white: what a reduced level should hold."""
    pad_y, pad_x = -image.shape[0] % factor, -image.shape[1] % factor
    padded = np.pad(image.astype(np.float64), ((0, pad_y), (0, pad_x), (0, 0)), constant_values=255)
    h, w = padded.shape[0] // factor, padded.shape[1] // factor
    return padded.reshape(h, factor, w, factor, 3).mean(axis=(1, 3))


def write_pyramid(path: Path, image: np.ndarray, *, tile: int = 128, levels: int = 3, mpp: float | None = 0.5,
                  pyramid: Literal["subifds", "pages"] = "subifds", compression: str = "zlib") -> list[np.ndarray]:
    """Write ``image`` as a tiled pyramid (factor 2 per level) and return the exact level arrays written."""
    arrays = [image]
    for _ in range(1, levels):
        arrays.append(np.rint(block_mean(arrays[-1], 2)).astype(np.uint8))
    options: dict[str, object] = {"tile": (tile, tile), "photometric": "rgb", "compression": compression}
    with tifffile.TiffWriter(path) as tif:
        for index, array in enumerate(arrays):
            extra: dict[str, object] = {}
            if mpp is not None:
                extra = {"resolution": (1e4 / (mpp * 2**index),) * 2, "resolutionunit": "CENTIMETER"}
            if index == 0 and pyramid == "subifds":
                extra["subifds"] = levels - 1
            if index > 0:
                extra["subfiletype"] = 1
            tif.write(array, **options, **extra)  # type: ignore[arg-type]
    return arrays


def tumour_layout(width: int, height: int, *, cells: int = 64) -> Layout:
    """A rectangle of tissue with a round tumour in its left half: ground truth with plenty of both classes."""
    cell = max(width, height) / cells
    rows, columns = math.ceil(height / cell), math.ceil(width / cell)
    yy, xx = np.mgrid[0:rows, 0:columns].astype(np.float32)
    tissue = ((yy >= 0.15 * rows) & (yy < 0.85 * rows) & (xx >= 0.08 * columns) & (xx < 0.92 * columns))
    tumour = ((yy - 0.5 * rows) ** 2 + (xx - 0.32 * columns) ** 2 <= (0.3 * min(rows, columns)) ** 2) & tissue
    return Layout(tissue.astype(np.float32), tumour.astype(np.float32), cell)


def patch_truth(slide: GeneratedSlide, x0: float, y0: float, extent0: float) -> float:
    """Share of a level-0 box that the generator made tumour."""
    mask = TissueMask(mask=slide.tumour_mask, scale=(slide.mask_scale, slide.mask_scale), threshold=0.0)
    return mask.box_fraction(mask.integral(), x0, y0, extent0, extent0)
