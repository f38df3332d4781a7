"""Stain normalisation of H&E patches: Macenko (2009) and Reinhard (2001), with a ``fit`` / ``transform`` API.

Labs stain differently, scanners see differently; a classifier should not have to learn either. Both normalisers
are fitted on a target (reference) patch and then map any patch towards its appearance.

**Macenko** (Macenko et al., "A method for normalizing histology slides for quantitative analysis", ISBI 2009).
By the Beer-Lambert law, optical density ``OD = -ln(I / I0)`` is linear in the stain concentrations:
``OD = C · S`` with ``S`` the 2 × 3 matrix of the haematoxylin and eosin OD vectors. Pixels whose OD norm is below
``beta`` (glass) are discarded; the plane of the two largest eigenvectors of the remaining ODs' covariance holds
both stain vectors; projected onto it, each pixel has an angle, and the ``alpha`` and ``100 - alpha`` percentile
angles give the two stain directions (haematoxylin is the one absorbing more red). Concentrations come from least
squares, scaled so that their 99th percentiles match the target's, and are recomposed with the target's matrix.

**Reinhard** (Reinhard et al., "Color transfer between images", 2001): each channel of the decorrelated lαβ colour
space (Ruderman's: RGB → LMS cone space → log10 → lαβ) is shifted and scaled to the target's mean and standard
deviation.
"""

from __future__ import annotations

import functools
from typing import Protocol

import numpy as np

from cds.errors import InvalidInputError

_REFERENCE_H = np.array([0.65, 0.70, 0.29])  # Ruifrok & Johnston's haematoxylin OD vector, for orientation only


def _check_rgb(tile: np.ndarray) -> np.ndarray:
    if tile.dtype != np.uint8 or tile.ndim != 3 or tile.shape[2] != 3:
        raise InvalidInputError(f"expected a uint8 H×W×3 RGB tile, got {tile.dtype} {list(tile.shape)}",
                                code="not_rgb")
    return tile


def optical_density(tile: np.ndarray, light: float) -> np.ndarray:
    """Optical density ``-ln(I / light)`` of each pixel, float64 [N, 3] (zero intensities taken as 1)."""
    od: np.ndarray = _od_table(light)[_check_rgb(tile).reshape(-1, 3)]
    return od


@functools.lru_cache(maxsize=8)
def _od_table(light: float) -> np.ndarray:
    """Optical density of each 8-bit intensity: a lookup is several times faster than a logarithm per pixel."""
    table: np.ndarray = -np.log(np.maximum(np.arange(256, dtype=np.float64), 1.0) / light)
    table.flags.writeable = False
    return table


def _from_optical_density(od: np.ndarray, shape: tuple[int, ...], light: float) -> np.ndarray:
    rgb: np.ndarray = np.clip(np.rint(light * np.exp(-od)), 0, 255)
    return rgb.astype(np.uint8).reshape(shape)


class StainNormalizer(Protocol):
    """What both normalisers offer: fit on a target patch, then map patches to its appearance."""

    def fit(self, target: np.ndarray) -> StainNormalizer:
        """Learn the target's stain statistics from a uint8 RGB patch."""
        ...

    def transform(self, tile: np.ndarray) -> np.ndarray:
        """``tile`` (uint8 RGB) rendered with the target's staining."""
        ...


class MacenkoNormalizer:
    """Macenko stain normalisation (see the module docstring).

    Args:
        beta: OD norm below which a pixel counts as glass and is left out of the fit.
        alpha: Percentile (and ``100 - alpha``) of the angles that give the stain directions.
        light: Transmitted light intensity ``I0`` (255 for white-balanced 8-bit scans).
        max_percentile: Percentile of the concentrations used as each stain's maximum.
        min_pixels: Least number of stained pixels a patch needs for a stain matrix to be fitted.

    Attributes:
        stain_matrix_: Target's [2, 3] stain OD vectors (rows: haematoxylin, eosin), unit length.
        max_concentrations_: Target's [2] maximum concentrations.
    """

    def __init__(self, *, beta: float = 0.15, alpha: float = 1.0, light: float = 255.0,
                 max_percentile: float = 99.0, min_pixels: int = 500) -> None:
        self.beta = beta
        self.alpha = alpha
        self.light = light
        self.max_percentile = max_percentile
        self.min_pixels = min_pixels
        self.stain_matrix_: np.ndarray | None = None
        self.max_concentrations_: np.ndarray | None = None

    def stain_matrix(self, tile: np.ndarray) -> np.ndarray:
        """The [2, 3] haematoxylin and eosin OD vectors of ``tile``.

        Raises:
            InvalidInputError: ``insufficient_tissue`` (fewer than ``min_pixels`` stained pixels) or
                ``degenerate_stain`` (the stained pixels span one colour, not two stains).
        """
        od = optical_density(tile, self.light)
        return self._stain_matrix(od, self._stained(od))

    def _stained(self, od: np.ndarray) -> np.ndarray:
        """Which of the pixels (bool [N]) have an OD norm of at least ``beta``: stained, not glass."""
        stained: np.ndarray = np.einsum("ij,ij->i", od, od) >= self.beta**2
        return stained

    def _stain_matrix(self, od: np.ndarray, stained_mask: np.ndarray) -> np.ndarray:
        stained = od[stained_mask]
        if len(stained) < self.min_pixels:
            raise InvalidInputError(f"{len(stained)} stained pixels (OD ≥ {self.beta}) of {len(od)}; at least "
                                    f"{self.min_pixels} are needed to fit a stain matrix", code="insufficient_tissue")
        _, vectors = np.linalg.eigh(np.cov(stained, rowvar=False))
        plane = vectors[:, 1:3]  # eigenvectors of the two largest eigenvalues
        plane = plane * np.where(plane.sum(axis=0) < 0, -1.0, 1.0)  # point into positive OD
        projected = stained @ plane
        angles = np.arctan2(projected[:, 1], projected[:, 0])
        low, high = np.percentile(angles, [self.alpha, 100 - self.alpha])
        first = plane @ np.array([np.cos(low), np.sin(low)])
        second = plane @ np.array([np.cos(high), np.sin(high)])
        first, second = first / np.linalg.norm(first), second / np.linalg.norm(second)
        if float(first @ second) > np.cos(np.deg2rad(3.0)):
            raise InvalidInputError("the stained pixels show a single colour (stain directions within 3°); cannot "
                                    "separate haematoxylin from eosin", code="degenerate_stain")
        if first[0] < second[0] or (first[0] == second[0] and first @ _REFERENCE_H < second @ _REFERENCE_H):
            first, second = second, first
        return np.stack([first, second])

    def concentrations(self, tile: np.ndarray, stain_matrix: np.ndarray) -> np.ndarray:
        """Per-pixel stain concentrations, float64 [N, 2], by least squares on ``OD = C · stain_matrix``."""
        return _solve(optical_density(tile, self.light), stain_matrix)

    def _max_concentrations(self, concentrations: np.ndarray, stained_mask: np.ndarray) -> np.ndarray:
        maxima: np.ndarray = np.maximum(np.percentile(concentrations[stained_mask], self.max_percentile, axis=0),
                                        1e-6)
        return maxima

    def fit(self, target: np.ndarray) -> MacenkoNormalizer:
        """Learn the target patch's stain matrix and maximum concentrations."""
        od = optical_density(target, self.light)
        stained = self._stained(od)
        matrix = self._stain_matrix(od, stained)
        self.max_concentrations_ = self._max_concentrations(_solve(od, matrix), stained)
        self.stain_matrix_ = matrix
        return self

    def transform(self, tile: np.ndarray) -> np.ndarray:
        """``tile`` with its stains separated, rescaled to the target's maxima and recomposed with its matrix.

        The optical density is computed once and shared by the three steps (fit the tile's stains, solve for
        concentrations, find their maxima): this runs once per patch of every slide.
        """
        if self.stain_matrix_ is None or self.max_concentrations_ is None:
            raise InvalidInputError("fit the normaliser on a target tile before transforming", code="not_fitted")
        od = optical_density(tile, self.light)
        stained = self._stained(od)
        concentrations = _solve(od, self._stain_matrix(od, stained))
        scale = self.max_concentrations_ / self._max_concentrations(concentrations, stained)
        return _from_optical_density((concentrations * scale) @ self.stain_matrix_, tile.shape, self.light)


def _solve(od: np.ndarray, stain_matrix: np.ndarray) -> np.ndarray:
    """Least-squares concentrations [N, 2] of ``od = C · stain_matrix``, through the 3 × 2 pseudo-inverse."""
    solution: np.ndarray = od @ np.linalg.pinv(stain_matrix)
    return solution


_RGB_TO_LMS = np.array([[0.3811, 0.5783, 0.0402],
                        [0.1967, 0.7244, 0.0782],
                        [0.0241, 0.1288, 0.8444]])
_LMS_TO_LAB = np.diag([1 / np.sqrt(3), 1 / np.sqrt(6), 1 / np.sqrt(2)]) @ np.array([[1.0, 1.0, 1.0],
                                                                                   [1.0, 1.0, -2.0],
                                                                                   [1.0, -1.0, 0.0]])


def rgb_to_lab(tile: np.ndarray) -> np.ndarray:
    """Ruderman's lαβ of uint8 RGB pixels, float64 [N, 3] (RGB scaled to [1/255, 1] so the log is finite)."""
    rgb = np.maximum(_check_rgb(tile).reshape(-1, 3).astype(np.float64), 1.0) / 255.0
    return np.asarray(np.log10(rgb @ _RGB_TO_LMS.T) @ _LMS_TO_LAB.T)


def lab_to_rgb(lab: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 RGB of lαβ pixels, the exact inverse of :func:`rgb_to_lab` before rounding."""
    lms = 10.0 ** (lab @ np.linalg.inv(_LMS_TO_LAB).T)
    rgb = lms @ np.linalg.inv(_RGB_TO_LMS).T * 255.0
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8).reshape(shape)


class ReinhardNormalizer:
    """Reinhard colour transfer: per-channel mean and standard deviation matched in lαβ space.

    Attributes:
        mean_: Target's lαβ channel means [3].
        std_: Target's lαβ channel standard deviations [3].
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.std_: np.ndarray | None = None

    def fit(self, target: np.ndarray) -> ReinhardNormalizer:
        """Learn the target's lαβ means and standard deviations."""
        lab = rgb_to_lab(target)
        self.mean_, self.std_ = lab.mean(axis=0), lab.std(axis=0)
        return self

    def transform(self, tile: np.ndarray) -> np.ndarray:
        """``tile`` with each lαβ channel shifted and scaled to the target's statistics."""
        if self.mean_ is None or self.std_ is None:
            raise InvalidInputError("fit the normaliser on a target tile before transforming", code="not_fitted")
        lab = rgb_to_lab(tile)
        std = lab.std(axis=0)
        scaled = (lab - lab.mean(axis=0)) * np.where(std > 1e-9, self.std_ / np.maximum(std, 1e-9), 1.0) + self.mean_
        return lab_to_rgb(scaled, tile.shape)
