"""Patch preprocessing shared by training and serving: stain normalisation to a fixed target, then scaling.

A network trained on normalised patches must be served patches normalised the same way, to the same target, or its
scores mean nothing. So the preprocessing is data, not code scattered over two places: a
:class:`TilePreprocessing` (resolution, patch size, the stain target's fitted parameters, scaling) is written beside
the model in its registry folder (``preprocessing.json``), and :class:`TilePreprocessor` is the one function that
training (``training/pathology_tiles.py``) and the slide pipeline both call.

Per patch: resize to ``size`` if needed → stain-normalise to the target (Macenko or Reinhard, or nothing) →
scale to [0, 1] → subtract ``mean`` and divide by ``std`` per channel → float32 channels-first. A patch the
normaliser cannot fit (too little stain, or a single colour) is passed on unnormalised and flagged, in training as in
serving, rather than dropped or failing the slide.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cds.errors import InvalidInputError, InvalidSpecError
from cds.models.spec import ModelSpec
from cds.pipelines.pathology.slide import resize_rgb
from cds.pipelines.pathology.stain import MacenkoNormalizer, ReinhardNormalizer, StainNormalizer

PREPROCESSING_FILE = "preprocessing.json"  # beside a model's spec.yaml in the registry

Vector3 = tuple[float, float, float]


class StainMethod(StrEnum):
    """How patches are brought to the target's staining."""

    MACENKO = "macenko"
    REINHARD = "reinhard"
    NONE = "none"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StainTarget(_Frozen):
    """A stain normaliser's fitted target, as numbers (so it ships as JSON, not as a reference image).

    Attributes:
        method: Which normaliser.
        stain_matrix: Macenko: the target's haematoxylin and eosin optical-density vectors (rows).
        max_concentrations: Macenko: the target's maximum (99th percentile) concentration of each stain.
        lab_mean: Reinhard: the target's lαβ channel means.
        lab_std: Reinhard: the target's lαβ channel standard deviations.
    """

    method: StainMethod = StainMethod.NONE
    stain_matrix: tuple[Vector3, Vector3] | None = None
    max_concentrations: tuple[float, float] | None = None
    lab_mean: Vector3 | None = None
    lab_std: Vector3 | None = None

    @model_validator(mode="after")
    def _complete(self) -> StainTarget:
        needed = {StainMethod.MACENKO: ("stain_matrix", "max_concentrations"),
                  StainMethod.REINHARD: ("lab_mean", "lab_std"), StainMethod.NONE: ()}[self.method]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.method.value} stain target needs {missing}")
        return self

    @classmethod
    def fit(cls, method: StainMethod | str, reference: np.ndarray) -> StainTarget:
        """The target of ``method`` fitted on a reference patch (uint8 RGB)."""
        method = StainMethod(method)
        if method is StainMethod.MACENKO:
            macenko = MacenkoNormalizer().fit(reference)
            assert macenko.stain_matrix_ is not None and macenko.max_concentrations_ is not None
            rows = [(float(r[0]), float(r[1]), float(r[2])) for r in macenko.stain_matrix_]
            return cls(method=method, stain_matrix=(rows[0], rows[1]),
                       max_concentrations=(float(macenko.max_concentrations_[0]),
                                           float(macenko.max_concentrations_[1])))
        if method is StainMethod.REINHARD:
            reinhard = ReinhardNormalizer().fit(reference)
            assert reinhard.mean_ is not None and reinhard.std_ is not None
            return cls(method=method, lab_mean=_vector(reinhard.mean_), lab_std=_vector(reinhard.std_))
        return cls()

    def normalizer(self) -> StainNormalizer | None:
        """A fitted normaliser holding this target (``None`` for :attr:`StainMethod.NONE`)."""
        if self.method is StainMethod.MACENKO:
            macenko = MacenkoNormalizer()
            macenko.stain_matrix_ = np.asarray(self.stain_matrix, dtype=np.float64)
            macenko.max_concentrations_ = np.asarray(self.max_concentrations, dtype=np.float64)
            return macenko
        if self.method is StainMethod.REINHARD:
            reinhard = ReinhardNormalizer()
            reinhard.mean_ = np.asarray(self.lab_mean, dtype=np.float64)
            reinhard.std_ = np.asarray(self.lab_std, dtype=np.float64)
            return reinhard
        return None


def _vector(values: np.ndarray) -> Vector3:
    return float(values[0]), float(values[1]), float(values[2])


class TilePreprocessing(_Frozen):
    """How a patch becomes model input: where it is cut (resolution, size) and how its pixels are transformed.

    Attributes:
        mpp: Resolution the model was trained at, microns per pixel.
        size: Patch side in pixels (the model input's spatial size).
        stain: The stain-normalisation target.
        mean: Subtracted from each channel after scaling to [0, 1].
        std: Each channel is divided by it afterwards.
    """

    mpp: float = Field(default=0.5, gt=0)
    size: int = Field(default=224, ge=8)
    stain: StainTarget = Field(default_factory=StainTarget)
    mean: Vector3 = (0.0, 0.0, 0.0)
    std: Vector3 = (1.0, 1.0, 1.0)

    @model_validator(mode="after")
    def _positive_std(self) -> TilePreprocessing:
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        return self

    @property
    def sha256(self) -> str:
        """Hash of the canonical JSON form: which preprocessing a result used."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def value_range(self) -> tuple[float, float]:
        """Range of the model input values this preprocessing can produce."""
        lows = [(0.0 - m) / s for m, s in zip(self.mean, self.std, strict=True)]
        highs = [(1.0 - m) / s for m, s in zip(self.mean, self.std, strict=True)]
        return min(lows), max(highs)

    def write(self, path: Path) -> Path:
        """Write as JSON (the registry file)."""
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def read(cls, path: Path) -> TilePreprocessing:
        """Read a ``preprocessing.json``.

        Raises:
            InvalidSpecError: Not readable or not a valid preprocessing document.
        """
        try:
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError) as exc:
            raise InvalidSpecError(f"cannot read tile preprocessing {path}: {exc}") from exc


def load_preprocessing(spec: ModelSpec, given: TilePreprocessing | None = None,
                       ) -> tuple[TilePreprocessing, tuple[str, ...]]:
    """The preprocessing to serve a pathology model with, and warnings about it.

    ``given`` when set, else ``preprocessing.json`` in the model's registry folder. A model without one (e.g. brought
    in with ``cds models import``) gets 0.5 µm/px, its input size, no stain normalisation and [0, 1] scaling, and a
    warning saying so.

    Raises:
        InvalidInputError: ``wrong_task`` when the model's input is not [-1, 3, S, S]; ``preprocessing_mismatch``
            when the preprocessing's patch size is not S.
        InvalidSpecError: The shipped file is not valid.
    """
    shape = spec.inputs[0].shape
    if len(shape) != 4 or shape[1] != 3 or shape[2] != shape[3] or shape[2] < 1:
        raise InvalidInputError(f"model {spec.key} does not take square RGB patches [-1, 3, S, S]; its input is "
                                f"{list(shape)}", code="wrong_task")
    warnings: tuple[str, ...] = ()
    beside = spec.artifacts.onnx.path.parent / PREPROCESSING_FILE
    if given is not None:
        preprocessing = given
    elif beside.is_file():
        preprocessing = TilePreprocessing.read(beside)
    else:
        preprocessing = TilePreprocessing(size=int(shape[2]))
        warnings = (f"model {spec.key} ships no {PREPROCESSING_FILE}: patches cut at 0.5 µm/px, not stain-normalised, "
                    "scaled to [0, 1]",)
    if preprocessing.size != shape[2]:
        raise InvalidInputError(f"preprocessing cuts {preprocessing.size}-pixel patches, model {spec.key} takes "
                                f"{shape[2]}", code="preprocessing_mismatch")
    return preprocessing, warnings


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
        self._normalizer = preprocessing.stain.normalizer()
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
