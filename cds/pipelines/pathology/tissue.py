"""Where the tissue is: a mask computed at low magnification, before any patch is read at full resolution.

Stained tissue is coloured and glass is grey-white, so the HSV saturation of a thumbnail separates them: Otsu's
threshold on the saturation histogram of the whole thumbnail splits the two populations. Two guards keep an empty
slide empty: the threshold never goes below ``min_saturation`` (on a blank slide Otsu would otherwise split sensor
noise), and a pixel whose every channel is brighter than ``glass_brightness`` is glass whatever its saturation.
A 3 × 3 closing joins tissue broken by pale stroma; components smaller than ``min_object_pixels`` (dust, debris) are
removed and holes smaller than that filled.

A blank slide gives an empty mask; turning that into a "no tissue found" result is the caller's job, never a score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cds.errors import InvalidInputError
from cds.pipelines.pathology.slide import Slide


@dataclass(frozen=True)
class TissueOptions:
    """How tissue is told from glass.

    Attributes:
        thumbnail_side: Longer side of the thumbnail the mask is computed on, in pixels.
        min_saturation: Floor of the saturation threshold (0-1), whatever Otsu says.
        glass_brightness: A pixel whose R, G and B all exceed this (0-255) is glass.
        min_object_pixels: Components (and holes) smaller than this many mask pixels are removed (filled).
    """

    thumbnail_side: int = 1024
    min_saturation: float = 0.07
    glass_brightness: int = 235
    min_object_pixels: int = 16


@dataclass(frozen=True)
class TissueMask:
    """A tissue mask and how it maps onto the slide.

    Attributes:
        mask: bool [rows, columns], True where there is tissue.
        scale: Level-0 pixels per mask pixel, ``(x, y)``.
        threshold: The saturation threshold used (0-1).
    """

    mask: np.ndarray
    scale: tuple[float, float]
    threshold: float

    @property
    def empty(self) -> bool:
        """True when no tissue was found (a blank slide)."""
        return not bool(self.mask.any())

    @property
    def fraction(self) -> float:
        """Share of the slide covered by tissue (0-1)."""
        return float(self.mask.mean()) if self.mask.size else 0.0

    def integral(self) -> np.ndarray:
        """Summed-area table of the mask, int64 [rows + 1, columns + 1], for O(1) box sums."""
        table = np.zeros((self.mask.shape[0] + 1, self.mask.shape[1] + 1), dtype=np.int64)
        table[1:, 1:] = self.mask.astype(np.int64).cumsum(axis=0).cumsum(axis=1)
        return table

    def box_fraction(self, table: np.ndarray, x0: float, y0: float, width0: float, height0: float) -> float:
        """Tissue fraction of a level-0 box, from :meth:`integral`'s table (at least one mask pixel is looked at)."""
        rows, columns = self.mask.shape
        left = int(np.clip(np.floor(x0 / self.scale[0]), 0, columns - 1))
        top = int(np.clip(np.floor(y0 / self.scale[1]), 0, rows - 1))
        right = int(np.clip(np.ceil((x0 + width0) / self.scale[0]), left + 1, columns))
        bottom = int(np.clip(np.ceil((y0 + height0) / self.scale[1]), top + 1, rows))
        total = table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]
        return float(total) / ((bottom - top) * (right - left))


def saturation(rgb: np.ndarray) -> np.ndarray:
    """HSV saturation of uint8 RGB pixels, float32 in [0, 1] (0 for black)."""
    pixels = rgb.astype(np.float32)
    high, low = pixels.max(axis=-1), pixels.min(axis=-1)
    return np.where(high > 0, (high - low) / np.maximum(high, 1.0), 0.0).astype(np.float32)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of values in [0, 1]: the cut that maximises the between-class variance of the histogram."""
    counts, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    counts = counts.astype(np.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1e-12)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1e-12)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def tissue_mask(rgb: np.ndarray, options: TissueOptions | None = None) -> tuple[np.ndarray, float]:
    """Tissue mask of a low-magnification RGB image and the saturation threshold used.

    Raises:
        InvalidInputError: ``not_rgb`` when ``rgb`` is not uint8 H×W×3.
    """
    options = options or TissueOptions()
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InvalidInputError(f"expected uint8 H×W×3 RGB, got {rgb.dtype} {list(rgb.shape)}", code="not_rgb")
    sat = saturation(rgb)
    glass = (rgb > options.glass_brightness).all(axis=-1)
    threshold = max(otsu_threshold(sat), options.min_saturation)
    mask = (sat > threshold) & ~glass
    mask = ndimage.binary_closing(mask, structure=np.ones((3, 3), dtype=bool), border_value=0) | mask
    mask = _drop_small(mask, options.min_object_pixels)
    holes = _drop_small(~mask, options.min_object_pixels)
    return ~holes, threshold


def _drop_small(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """``mask`` without its 8-connected components smaller than ``min_pixels``."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    keep = sizes >= min_pixels
    keep[0] = False
    result: np.ndarray = keep[labels]
    return result


def detect_tissue(slide: Slide, options: TissueOptions | None = None) -> TissueMask:
    """The tissue mask of ``slide``, computed on a thumbnail (read in bounded memory)."""
    options = options or TissueOptions()
    return tissue_from_thumbnail(slide.thumbnail(options.thumbnail_side), slide.dimensions, options)


def tissue_from_thumbnail(thumbnail: np.ndarray, dimensions: tuple[int, int],
                          options: TissueOptions | None = None) -> TissueMask:
    """The tissue mask of a slide whose level 0 is ``dimensions`` (width, height), from a thumbnail already read.

    The slide pipeline reads one thumbnail and uses it twice: for the mask and as its heatmap's background.
    """
    mask, threshold = tissue_mask(thumbnail, options)
    width0, height0 = dimensions
    return TissueMask(mask=mask, scale=(width0 / mask.shape[1], height0 / mask.shape[0]), threshold=threshold)
