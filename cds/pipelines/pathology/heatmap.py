"""The tumour heatmap: patch probabilities painted over the slide's thumbnail.

Each thumbnail pixel takes the probability of the patch whose level-0 square contains the pixel's centre, so the
map lines up with the slide whatever the patch size and pyramid level; pixels outside every scored patch stay as
the thumbnail shows them. Colours run from blue (0) through yellow (0.5) to red (1), blended at ``alpha``; patches
at or above the operating threshold are blended more strongly, so the called area stands out without outlines
cluttering a small map.
"""

from __future__ import annotations

import numpy as np

from cds.results.slide import ProbabilityGrid

_STOPS = np.array([[40.0, 80.0, 255.0], [255.0, 220.0, 0.0], [230.0, 20.0, 20.0]])  # at 0, 0.5 and 1


def heatmap_at(grid: ProbabilityGrid, width: int, height: int) -> np.ndarray:
    """The grid resampled to a ``width`` × ``height`` image of the whole slide: float32, NaN where unscored."""
    width0, height0 = grid.dimensions
    rows, columns = grid.values.shape
    column = np.floor((np.arange(width) + 0.5) * (width0 / width) / grid.extent0).astype(np.int64)
    row = np.floor((np.arange(height) + 0.5) * (height0 / height) / grid.extent0).astype(np.int64)
    padded = np.full((rows + 1, columns + 1), np.nan, np.float32)  # the extra row and column: outside the grid
    padded[:rows, :columns] = grid.values
    result: np.ndarray = padded[np.ix_(np.minimum(row, rows), np.minimum(column, columns))]
    return result


def colour(probability: np.ndarray) -> np.ndarray:
    """float32 [..., 3] RGB of probabilities in [0, 1] on the blue → yellow → red scale."""
    p = np.clip(np.nan_to_num(probability, nan=0.0), 0.0, 1.0)[..., None] * 2.0
    low = _STOPS[0] + (_STOPS[1] - _STOPS[0]) * np.minimum(p, 1.0)
    high = _STOPS[1] + (_STOPS[2] - _STOPS[1]) * np.maximum(p - 1.0, 0.0)
    result: np.ndarray = np.where(p <= 1.0, low, high).astype(np.float32)
    return result


def overlay(thumbnail: np.ndarray, heat: np.ndarray, *, threshold: float, alpha: float = 0.45) -> np.ndarray:
    """uint8 RGB: ``thumbnail`` with ``heat`` (same height and width; NaN = leave as is) blended in.

    Patches at or above ``threshold`` are blended more strongly (``alpha`` + 0.25) so the called area stands out.
    """
    scored = ~np.isnan(heat)
    weight = np.where(scored, alpha + 0.25 * (np.nan_to_num(heat, nan=0.0) >= threshold), 0.0)[..., None]
    blended = thumbnail.astype(np.float32) * (1.0 - weight) + colour(heat) * weight
    result: np.ndarray = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return result
