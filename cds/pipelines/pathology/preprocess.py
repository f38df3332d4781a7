"""Patch preprocessing shared by training and serving: stain normalisation to a fixed target, then scaling.

What to do is data (:class:`~cds.models.tile_preprocessing.TilePreprocessing`, shipped as ``preprocessing.json``
beside the model); this module does it. :func:`fit_stain_target` fits a target on a reference patch (training),
:func:`stain_normalizer` turns a target back into a fitted normaliser, and :class:`TilePreprocessor` is the one
function that training (``training/pathology_tiles.py``) and the slide pipeline both call.

Per patch: resize to ``size`` if needed → stain-normalise to the target (Macenko or Reinhard, or nothing) →
scale to [0, 1] → subtract ``mean`` and divide by ``std`` per channel → float32 channels-first. A patch the
normaliser cannot fit (too little stain, or a single colour) is passed on unnormalised and flagged, in training as in
serving, rather than dropped or failing the slide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cds.errors import InvalidInputError
from cds.models.tile_preprocessing import StainMethod, StainTarget, TilePreprocessing, Vector3
from cds.pipelines.pathology.slide import resize_rgb
from cds.pipelines.pathology.stain import MacenkoNormalizer, ReinhardNormalizer, StainNormalizer


def _vector(values: np.ndarray) -> Vector3:
    return float(values[0]), float(values[1]), float(values[2])


def fit_stain_target(method: StainMethod | str, reference: np.ndarray) -> StainTarget:
    """The target of ``method`` fitted on a reference patch (uint8 RGB)."""
    method = StainMethod(method)
    if method is StainMethod.MACENKO:
        macenko = MacenkoNormalizer().fit(reference)
        assert macenko.stain_matrix_ is not None and macenko.max_concentrations_ is not None
        rows = [(float(r[0]), float(r[1]), float(r[2])) for r in macenko.stain_matrix_]
        return StainTarget(method=method, stain_matrix=(rows[0], rows[1]),
                           max_concentrations=(float(macenko.max_concentrations_[0]),
                                               float(macenko.max_concentrations_[1])))
    if method is StainMethod.REINHARD:
        reinhard = ReinhardNormalizer().fit(reference)
        assert reinhard.mean_ is not None and reinhard.std_ is not None
        return StainTarget(method=method, lab_mean=_vector(reinhard.mean_), lab_std=_vector(reinhard.std_))
    return StainTarget()


def stain_normalizer(target: StainTarget) -> StainNormalizer | None:
    """A fitted normaliser holding ``target`` (``None`` for :attr:`StainMethod.NONE`)."""
    if target.method is StainMethod.MACENKO:
        macenko = MacenkoNormalizer()
        macenko.stain_matrix_ = np.asarray(target.stain_matrix, dtype=np.float64)
        macenko.max_concentrations_ = np.asarray(target.max_concentrations, dtype=np.float64)
        return macenko
    if target.method is StainMethod.REINHARD:
        reinhard = ReinhardNormalizer()
        reinhard.mean_ = np.asarray(target.lab_mean, dtype=np.float64)
        reinhard.std_ = np.asarray(target.lab_std, dtype=np.float64)
        return reinhard
    return None


@dataclass(frozen=True)
class PreprocessedTiles:
    """Model input for a batch of patches.

    Attributes:
        pixels: float32 [N, 3, size, size].
        unnormalised: bool [N], True where the stain normaliser could not fit the patch (passed on as it was).
    """

    pixels: np.ndarray
    unnormalised: np.ndarray


class TilePreprocessor:
    """The one preprocessing function of training and serving (see the module docstring).

    :meth:`__call__` does both steps; training keeps the stain-normalised patches (uint8, four times smaller than
    model input) from :meth:`normalise` and scales each one with :meth:`to_input` when it is used.

    Args:
        preprocessing: What to do; the normaliser is built from its stain target once.
    """

    def __init__(self, preprocessing: TilePreprocessing) -> None:
        self.preprocessing = preprocessing
        self._normalizer = stain_normalizer(preprocessing.stain)
        std = np.asarray(preprocessing.std, np.float32).reshape(1, 3, 1, 1)
        self._scale = 1.0 / (255.0 * std)
        self._offset = np.asarray(preprocessing.mean, np.float32).reshape(1, 3, 1, 1) / std

    def __call__(self, tiles: np.ndarray) -> PreprocessedTiles:
        """``tiles`` (uint8 [N, H, W, 3] RGB) as model input."""
        normalised, unnormalised = self.normalise(tiles)
        return PreprocessedTiles(pixels=self.to_input(normalised), unnormalised=unnormalised)

    def normalise(self, tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Step 1: resize to ``size`` and stain-normalise: (uint8 [N, size, size, 3], bool [N] not normalised).

        Raises:
            InvalidInputError: ``not_rgb`` for anything but uint8 RGB patches.
        """
        if tiles.dtype != np.uint8 or tiles.ndim != 4 or tiles.shape[3] != 3:
            raise InvalidInputError(f"expected uint8 [N, H, W, 3] RGB patches, got {tiles.dtype} "
                                    f"{list(tiles.shape)}", code="not_rgb")
        size = self.preprocessing.size
        out = np.empty((len(tiles), size, size, 3), np.uint8)
        unnormalised = np.zeros(len(tiles), bool)
        for index, tile in enumerate(tiles):
            out[index] = resize_rgb(tile, size, size)
            if self._normalizer is not None:
                try:
                    out[index] = self._normalizer.transform(out[index])
                except InvalidInputError:  # too little stain, or one colour: keep the patch as it is
                    unnormalised[index] = True
        return out, unnormalised

    def to_input(self, tiles: np.ndarray) -> np.ndarray:
        """Step 2: uint8 [N, size, size, 3] → float32 [N, 3, size, size], ``(pixel / 255 - mean) / std``."""
        out = tiles.transpose(0, 3, 1, 2).astype(np.float32, order="C")
        out *= self._scale
        out -= self._offset
        return out
