"""A pathology patch classifier's preprocessing: where patches are cut and how their pixels are transformed.

A network trained on stain-normalised patches must be served patches normalised the same way, to the same target,
or its scores mean nothing. So the preprocessing is data shipped with the model: a :class:`TilePreprocessing`
(resolution, patch size, the stain target's fitted parameters, scaling) is written beside the model in its registry
folder (``preprocessing.json``) and its sha256 goes into every slide result. Fitting a target and applying it are
in :mod:`cds.pipelines.pathology.preprocess`, the one place training and serving both call.
"""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cds.errors import InvalidInputError, InvalidSpecError
from cds.models.spec import ModelSpec

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
