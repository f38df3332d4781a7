"""Declarative description of one model version: :class:`ModelSpec` and its parts.

A spec is loaded from ``spec.yaml`` in the model version's folder of the registry. Relative paths in the file
(artifacts, model card) are resolved against that folder when the spec is loaded, so a spec in memory always
holds absolute paths.
"""

from __future__ import annotations

import re
from enum import Enum, StrEnum
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cds.errors import InvalidInputError
from cds.models.tensors import TensorSpec

E = TypeVar("E", bound=Enum)

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class Task(StrEnum):
    """What a model does."""

    CLASSIFICATION = "classification"  # independent probability per label, thresholded per label
    SEGMENTATION = "segmentation"
    RISK = "risk"


class Urgency(StrEnum):
    """How soon a positive finding of a label needs a reader (worklist triage), most urgent first.

    ``critical``: life-threatening if missed for hours (e.g. pneumothorax); a study is critical only when such a
    label reaches its ``critical_thresholds`` value. ``urgent``: to be read the same day (effusion, pneumonia, a
    mass, a fracture). ``routine``: everything else, and every label of a spec that names no urgency.
    """

    CRITICAL = "critical"
    URGENT = "urgent"
    ROUTINE = "routine"

    @property
    def rank(self) -> int:
        """0 for critical, 1 for urgent, 2 for routine (sort key: most urgent first)."""
        return list(Urgency).index(self)


class Modality(StrEnum):
    """Input modality: DICOM modality codes, plus ``tabular`` for structured data."""

    CR = "CR"
    DX = "DX"
    CT = "CT"
    MR = "MR"
    SM = "SM"  # slide microscopy
    OT = "OT"  # other, e.g. generated patches
    ECG = "ECG"  # electrocardiogram waveforms
    TABULAR = "tabular"


class BackendKind(StrEnum):
    """The inference engines a model can run on."""

    ONNXRUNTIME = "onnxruntime"
    TORCH = "torch"
    TRITON = "triton"


class Architecture(StrEnum):
    """Network definitions the torch backend and training know how to build (see :mod:`cds.models.nets`)."""

    DENSENET = "monai.DenseNet"
    DENSENET121 = "monai.DenseNet121"
    UNET = "monai.UNet"  # 2-D or 3-D segmentation (``spatial_dims``)
    SEGRESNET = "monai.SegResNet"


class Activation(StrEnum):
    """Activation appended to a network's raw output."""

    NONE = "none"
    SIGMOID = "sigmoid"
    SOFTMAX = "softmax"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ArtifactSpec(_Frozen):
    """A file the model needs, pinned by its sha256."""

    path: Path
    sha256: str = Field(pattern=SHA256_PATTERN)

    @field_validator("path")
    @classmethod
    def _resolve(cls, path: Path, info: ValidationInfo) -> Path:
        return _resolve_path(path, info)


class NetworkSpec(_Frozen):
    """How to build the torch network whose weights a :class:`TorchArtifactSpec` holds."""

    architecture: Architecture
    params: dict[str, int | float | bool | str | tuple[int, ...]] = Field(default_factory=dict)
    output_activation: Activation = Activation.NONE


class TorchArtifactSpec(ArtifactSpec):
    """A ``state_dict`` file plus the network definition it belongs to."""

    network: NetworkSpec


class Artifacts(_Frozen):
    """The files of one model version. ONNX is required; the fp16 ONNX copy and torch weights are optional."""

    onnx: ArtifactSpec
    onnx_fp16: ArtifactSpec | None = None
    torch: TorchArtifactSpec | None = None


class FeatureSpec(_Frozen):
    """One named column of a tabular model's input vector (for risk models).

    Attributes:
        name: Field name in JSON and cohort files.
        unit: UCUM unit.
        description: What it is.
        valid: Range seen in training; outside it the model is not applied (``out_of_range``).
        plausible: Physiological limits; outside them the value is refused as impossible.
        reference: Value used to show the feature's contribution (typically the training mean).
    """

    name: str = Field(min_length=1)
    unit: str
    description: str
    valid: tuple[float, float] | None = None
    plausible: tuple[float, float] | None = None
    reference: float | None = None


class ImagingContract(_Frozen):
    r"""What a DICOM study must be for an imaging model to read it; checked before any pixel is decoded.

    Attributes:
        modalities: Accepted DICOM Modality values (e.g. CR and DX for a radiograph model).
        body_parts: Accepted BodyPartExamined values; checked only when the tag is present (it often is not).
        views: Accepted ViewPosition values (e.g. PA, AP); checked only when present.
        photometric: Accepted PhotometricInterpretation values.
        min_rows: Smallest image height in pixels.
        min_columns: Smallest image width in pixels.
        min_slices: Fewest slices (1 for projection images).
        max_slices: Most slices (``None``: no limit beyond the pixel-size cap).
        pixel_spacing_mm: Accepted in-plane pixel spacing range, checked when the image states its spacing (Pixel
            Spacing, else Imager Pixel Spacing; ``0\0``, negative or absent values mean "unknown", as many CR
            systems write them).
        spacing_required: The model needs the physical spacing: an image that does not state it is refused
            (``spacing_unknown``). Off by default: a projection radiograph model reads pixels, not millimetres.
        plausibility_model: Registry key (``name:version``) of a one-label classifier that must score the decoded
            image at or above its threshold, because tags can lie (e.g. a CT slice tagged CR CHEST); below it the
            image is refused with ``implausible_image``.
        slice_spacing_mm: Accepted spacing between slices of a series (derived from their positions, so checked
            once the series is assembled into a volume).
    """

    modalities: tuple[Modality, ...] = Field(min_length=1)
    body_parts: tuple[str, ...] = ()
    views: tuple[str, ...] = ()
    photometric: tuple[str, ...] = ("MONOCHROME1", "MONOCHROME2")
    min_rows: int = Field(default=1, ge=1)
    min_columns: int = Field(default=1, ge=1)
    min_slices: int = Field(default=1, ge=1)
    max_slices: int | None = Field(default=None, ge=1)
    pixel_spacing_mm: tuple[float, float] | None = None
    spacing_required: bool = False
    plausibility_model: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]*:[0-9A-Za-z.+-]+$")
    slice_spacing_mm: tuple[float, float] | None = None


class VolumePreprocessing(_Frozen):
    """How a volumetric model's input is made from a CT/MR volume, and how the model is run over it.

    The volume is reoriented so that its voxel axes run (slice, row, column) = (superior, posterior, patient's
    left), resampled to ``spacing_mm``, clipped to ``window`` and scaled to [0, 1] (low → 0, high → 1); the model
    then runs on ``roi_size`` windows that overlap by ``overlap`` and whose outputs are blended into one map, whose
    arg-max labels go back onto the source voxels. Training reads its volumes the same way
    (:mod:`cds.pipelines.imaging.ct_volume`).

    Attributes:
        spacing_mm: Voxel spacing of the model grid (slice, row, column), in millimetres.
        window: Intensity window ``(low, high)`` in the volume's units (Hounsfield units for CT).
        roi_size: Sliding-window size (slice, row, column) in model-grid voxels.
        overlap: Fraction by which neighbouring windows overlap, in [0, 1).
        largest_component_only: Keep only the largest connected part of each structure (for labels that are one
            object each, such as organs); the rest becomes background.
    """

    spacing_mm: tuple[float, float, float]
    window: tuple[float, float]
    roi_size: tuple[int, int, int]
    overlap: float = Field(default=0.25, ge=0.0, lt=1.0)
    largest_component_only: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> VolumePreprocessing:
        if min(self.spacing_mm) <= 0 or min(self.roi_size) < 1:
            raise ValueError(f"spacing_mm and roi_size must be positive, got {self.spacing_mm}, {self.roi_size}")
        if self.window[0] >= self.window[1]:
            raise ValueError(f"window low must be below high, got {self.window}")
        return self


class WaveformInput(_Frozen):
    """What an ECG model accepts and how a recording becomes its input.

    Applied by :mod:`cds.pipelines.ecg.preprocess` in training and serving alike: the recording (checked against
    ``sampling_hz``, ``min_s`` and ``max_s``) is resampled to ``model_hz``, band-passed, clipped to ±``clip_mv``
    and cut into windows of ``window_s`` every ``stride_s`` (the last window ending with the recording); the model
    scores each window and the probabilities are averaged.

    Attributes:
        leads: Input channels, in order.
        sampling_hz: Accepted recording rates (inclusive range).
        min_s: Shortest recording read.
        max_s: Longest recording read.
        model_hz: Rate the model reads.
        window_s: Window length.
        stride_s: Step between windows.
        band_hz: Band-pass edges (Hz).
        clip_mv: Amplitude limit (mV).
    """

    leads: tuple[str, ...] = Field(min_length=1)
    sampling_hz: tuple[float, float] = (250.0, 2000.0)
    min_s: float = Field(default=8.0, gt=0)
    max_s: float = Field(default=60.0, gt=0)
    model_hz: float = Field(default=125.0, gt=0)
    window_s: float = Field(default=8.0, gt=0)
    stride_s: float = Field(default=4.0, gt=0)
    band_hz: tuple[float, float] = (0.5, 40.0)
    clip_mv: float = Field(default=5.0, gt=0)

    @property
    def window_samples(self) -> int:
        """Samples in one window at ``model_hz``."""
        return round(self.window_s * self.model_hz)

    @model_validator(mode="after")
    def _consistent(self) -> WaveformInput:
        if not 0 < self.band_hz[0] < self.band_hz[1] < self.model_hz / 2:
            raise ValueError(f"band_hz {self.band_hz} must lie between 0 and half of model_hz {self.model_hz:g}")
        if not self.min_s <= self.max_s or self.window_s > self.min_s:
            raise ValueError(f"need window_s {self.window_s:g} <= min_s {self.min_s:g} <= max_s {self.max_s:g}")
        return self


class ModelSpec(_Frozen):
    """Everything the engine needs to know about one model version.

    Attributes:
        name: Registry name; also used as the Triton model name.
        version: Version string (e.g. ``1.0.0``).
        task: What the model does.
        modality: What kind of input it was trained on.
        description: One or two sentences on what it outputs.
        intended_use: Who may use its output, for what, and with which caveats.
        intended_use_zh: The same in Simplified Chinese, for readers whose workspace is in Chinese (optional:
            without it they read the English; see :meth:`intended_use_in`).
        inputs: Input tensor contract.
        outputs: Output tensor contract.
        labels: Output labels (classification) or classes (segmentation).
        thresholds: Operating threshold per label, chosen on a validation split.
        urgency: Urgency class per label for worklist triage; a label not named is routine.
        critical_thresholds: For critical labels, the high-confidence probability at or above which a positive
            finding makes its study critical (at least the label's threshold); a critical label without one uses
            its operating threshold. Below it a positive critical-class finding counts as urgent.
        max_batch_size: Largest batch the model is served with.
        artifacts: The files, pinned by sha256.
        model_card: Path of the Markdown model card.
        training_run: Identifier of the training run that produced the artifacts (e.g. an MLflow run id).
        not_for_diagnostic_use: Whether results must carry the "not for diagnostic use" caveat.
        features: For tabular models, the named columns of the first input, in order.
        outcome: For risk models, what the predicted probability is of.
        imaging: For imaging models, what a study must be to be read (checked before inference).
        volume: For volumetric models, how a volume becomes model input (resampling, window, sliding window).
        waveform: For ECG models, what a recording must be and how it becomes model input.
    """

    name: str = Field(pattern=NAME_PATTERN)
    version: str = Field(pattern=r"^[0-9A-Za-z][0-9A-Za-z.+-]*$")
    task: Task
    modality: Modality
    description: str = Field(min_length=1)
    intended_use: str = Field(min_length=1)
    intended_use_zh: str | None = Field(default=None, min_length=1)
    inputs: tuple[TensorSpec, ...] = Field(min_length=1)
    outputs: tuple[TensorSpec, ...] = Field(min_length=1)
    labels: tuple[str, ...] = ()
    thresholds: dict[str, float] = Field(default_factory=dict)
    urgency: dict[str, Urgency] = Field(default_factory=dict)
    critical_thresholds: dict[str, float] = Field(default_factory=dict)
    max_batch_size: int = Field(default=64, ge=1, le=4096)
    artifacts: Artifacts
    model_card: Path
    training_run: str | None = None
    not_for_diagnostic_use: bool = True
    features: tuple[FeatureSpec, ...] = ()
    outcome: str = ""
    imaging: ImagingContract | None = None
    volume: VolumePreprocessing | None = None
    waveform: WaveformInput | None = None

    @field_validator("model_card")
    @classmethod
    def _resolve_card(cls, path: Path, info: ValidationInfo) -> Path:
        return _resolve_path(path, info)

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        for group, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [t.name for t in tensors]
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate tensor names in {group}: {names}")
        unknown = sorted(set(self.thresholds) - set(self.labels))
        if unknown:
            raise ValueError(f"thresholds for unknown labels {unknown}; labels are {list(self.labels)}")
        bad = {k: v for k, v in self.thresholds.items() if not 0.0 <= v <= 1.0}
        if bad:
            raise ValueError(f"thresholds must lie in [0, 1], got {bad}")
        self._check_urgency()
        if self.features and self.inputs[0].shape[1:] != (len(self.features),):
            raise ValueError(
                f"{len(self.features)} features need a first input of shape [-1, {len(self.features)}], "
                f"got {list(self.inputs[0].shape)}"
            )
        if self.task is Task.CLASSIFICATION:
            first = self.outputs[0]
            if len(first.shape) != 2 or first.shape[1] != len(self.labels):
                raise ValueError(
                    f"a classification model's first output must be [-1, {len(self.labels)}] "
                    f"(one column per label), got {list(first.shape)}"
                )
        if self.task is Task.SEGMENTATION:
            self._check_segmentation()
        return self

    def _check_urgency(self) -> None:
        """Urgency and critical thresholds name known labels; a critical threshold belongs to a critical label."""
        for field, named in (("urgency", self.urgency), ("critical_thresholds", self.critical_thresholds)):
            unknown = sorted(set(named) - set(self.labels))
            if unknown:
                raise ValueError(f"{field} for unknown labels {unknown}; labels are {list(self.labels)}")
        for label, value in self.critical_thresholds.items():
            if self.urgency.get(label) is not Urgency.CRITICAL:
                raise ValueError(f"critical_thresholds names {label!r}, whose urgency is "
                                 f"{self.urgency.get(label, Urgency.ROUTINE).value}, not critical")
            floor = self.thresholds.get(label, 0.0)
            if not floor <= value <= 1.0:
                raise ValueError(f"the critical threshold of {label!r} must lie in [{floor:g}, 1] (at least its "
                                 f"operating threshold), got {value:g}")

    def finding_urgency(self, label: str, probability: float, positive: bool) -> Urgency | None:
        """How urgent one finding of this model is: ``None`` when it is not positive.

        A positive finding takes its label's urgency, except that a critical label below its critical threshold
        (the operating threshold when it has none) counts as urgent: positive, but not the high-confidence call.
        """
        if not positive:
            return None
        urgency = self.urgency.get(label, Urgency.ROUTINE)
        if urgency is Urgency.CRITICAL:
            bar = self.critical_thresholds.get(label, self.thresholds.get(label, 0.0))
            return Urgency.CRITICAL if probability >= bar else Urgency.URGENT
        return urgency

    def _check_segmentation(self) -> None:
        """One output channel per class, class 0 the background, spatial dimensions as the input's."""
        image, first = self.inputs[0], self.outputs[0]
        if not self.labels or self.labels[0] != "background":
            raise ValueError(f"a segmentation model's labels must start with 'background', got {list(self.labels)}")
        spatial = image.shape[2:]
        if len(spatial) < 2 or len(first.shape) != len(image.shape) or first.shape[1] != len(self.labels):
            raise ValueError(
                f"a segmentation model's first output must be [-1, {len(self.labels)}, *spatial] (one channel per "
                f"label) for an input [-1, channels, *spatial], got input {list(image.shape)} and output "
                f"{list(first.shape)}"
            )
        if self.volume is not None:
            fixed = [(d, r) for d, r in zip(spatial, self.volume.roi_size, strict=False) if d != -1]
            if len(spatial) != 3 or any(d != r for d, r in fixed):
                raise ValueError(
                    f"volume.roi_size {list(self.volume.roi_size)} does not fit the input {list(image.shape)} "
                    "(expected [-1, channels, slices, rows, columns] with fixed sizes equal to the roi)"
                )

    def intended_use_in(self, language: str) -> str:
        """The intended use in ``language`` (a BCP 47 tag; any ``zh`` one is Chinese) where given, else in English."""
        if language.lower().split("-")[0] == "zh" and self.intended_use_zh:
            return self.intended_use_zh
        return self.intended_use

    @property
    def key(self) -> str:
        """``name:version``, the registry key."""
        return f"{self.name}:{self.version}"

    def artifact(self, kind: str) -> ArtifactSpec | None:
        """The artifact of a kind (``onnx``, ``onnx_fp16`` or ``torch``), or ``None`` when absent."""
        if kind not in Artifacts.model_fields:
            raise KeyError(f"unknown artifact kind {kind!r}; known: {sorted(Artifacts.model_fields)}")
        value: ArtifactSpec | None = getattr(self.artifacts, kind)
        return value


def _resolve_path(path: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if path.is_absolute() or base is None:
        return path
    return (Path(base) / path).resolve()


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders ``1.10.0`` after ``1.9.0`` and numbers before text."""
    parts = re.split(r"[.+-]", version)
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


def coerce_enum(enum_class: type[E], value: E | str) -> E:
    """``value`` as a member of ``enum_class``.

    Raises:
        InvalidInputError: Not a member; the message lists the allowed values.
    """
    try:
        return enum_class(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum_class)
        raise InvalidInputError(
            f"{value!r} is not a valid {enum_class.__name__}; allowed: {allowed}", code="invalid_choice"
        ) from None
