"""What the study viewer shows beside the pixels, and where its pictures come from.

An outcome is one :class:`~cds.results.jobs.PrereadOutcome` of a finished pre-read
(:class:`~cds.services.preread.FinishedOutcome`); its job names the stored source instances and its layout the
output files. A radiograph finding's heatmap is the raw map the pre-read saved
(:meth:`~cds.results.layout.OutputLayout.heatmap_values`), and CT outlines come from its DICOM SEG.
"""

from __future__ import annotations

import json

import numpy as np
from pydantic import BaseModel

from cds.errors import CdsError, InvalidInputError, OutputNotFoundError
from cds.interop.outputs.radiograph import FLOORS, PEAK_SCALE, PROBABILITY_SCALE
from cds.models.registry import ModelRegistry
from cds.results.jobs import OutcomeKind
from cds.results.layout import OutputLayout
from cds.services.preread import FinishedOutcome
from cds.serving.ui import render, sources


class ModelInfo(BaseModel):
    """The model that produced the outcome and what its card says about use."""

    key: str
    name: str
    version: str
    intended_use: str
    not_for_diagnostic_use: bool
    model_card: str  # file name; GET /v1/models/{name}?version= serves the text


class FindingView(BaseModel):
    """A finding's probability against its operating threshold; ``heatmap`` when a layer exists."""

    label: str
    probability: float
    threshold: float | None
    positive: bool
    ratio: float | None
    heatmap: bool


class StructureView(BaseModel):
    """A segmented structure: its volume and its outline colour."""

    label: str
    volume_ml: float | None
    segment: int | None
    colour: str | None


class ImageView(BaseModel):
    """Geometry and default display of the source image (values in ``units``: HU for CT)."""

    width: int
    height: int
    slices: int
    initial_slice: int
    window: float
    level: float
    min: float
    max: float
    units: str
    sop_instance_uids: list[str]  # one per slice, in display order: the WADO-RS instances the browser loads


class ViewerPublic(BaseModel):
    """Everything the study viewer shows beside the pixels."""

    job_id: str
    uid: str
    kind: str
    study_uid: str
    series_uid: str
    patient_id: str
    patient_name: str | None = None  # from the image's header: ideographic group first, as people read it
    patient_birth_date: str | None = None  # ISO 8601
    patient_sex: str | None = None  # M, F, O
    model: ModelInfo
    findings: list[FindingView]
    structures: list[StructureView]
    image: ImageView
    outlines: bool
    heatmap_method: str | None  # "cam" or "occlusion" as the pre-read wrote it; None for outputs without the field
    heatmap_scale: str  # "probability" (a map's maximum is its finding's probability) or "peak" (older outputs)
    heatmap_floor: float  # heat at or below this is not drawn (on that scale)


def image_of(read: FinishedOutcome) -> sources.ViewerImage:
    """The outcome's source: the radiograph, or the CT series."""
    if read.outcome.kind is OutcomeKind.CT:
        return sources.ct_series(read.payload.instances, read.outcome.uid)
    return sources.radiograph_image(read.payload.instances, read.outcome.uid)


def summary_of(read: FinishedOutcome) -> sources.ImageSummary:
    """What the viewer is told of the outcome's source before it loads the pixels (a radiograph: once per file)."""
    if read.outcome.kind is OutcomeKind.CT:
        return sources.summary(image_of(read))
    return sources.radiograph_summary(read.payload.instances, read.outcome.uid)


def segmentation_of(read: FinishedOutcome, sop_instance_uids: tuple[str, ...]) -> sources.Segmentation | None:
    """The CT outcome's label volume on the slices ``sop_instance_uids``; ``None`` for a radiograph or without a SEG."""
    seg = read.layout.path(OutputLayout.SEGMENTATION)
    if read.outcome.kind is not OutcomeKind.CT or not seg.is_file():
        return None
    return sources.segmentation(str(seg), sop_instance_uids)


def _result_field(read: FinishedOutcome, name: str) -> str | None:
    path = read.layout.path(OutputLayout.RESULT)
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get(name)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _heatmap_method(read: FinishedOutcome) -> str | None:
    return _result_field(read, "heatmap_method")


def heatmap_scale(read: FinishedOutcome) -> str:
    """``"probability"`` for maps on the fixed probability scale; ``"peak"`` for outputs written before it.

    Older maps are served as saved (each scaled to its own peak) and marked so, never mixed silently with the others.
    """
    return PROBABILITY_SCALE if _result_field(read, "heatmap_scale") == PROBABILITY_SCALE else PEAK_SCALE


def _has_heatmap(read: FinishedOutcome, label: str) -> bool:
    return read.layout.path(OutputLayout.heatmap_values(label)).is_file()


def heatmap_of(read: FinishedOutcome, label: str) -> np.ndarray:
    """float32 [S, S] in [0, 1]: the heatmap of a positive finding, on the model's input grid, as the pre-read saved it.

    On the fixed probability scale (its maximum is the finding's probability) unless :func:`heatmap_scale` says
    ``"peak"``.

    Raises:
        OutputNotFoundError: ``heatmap_not_found`` (404): no such finding, or no heatmap for it (it is negative).
    """
    labels = [f.label for f in read.outcome.findings]
    if label not in labels or not _has_heatmap(read, label):
        shown = [name for name in labels if _has_heatmap(read, name)]
        raise OutputNotFoundError(f"no heatmap for {label!r}; heatmaps: {', '.join(shown) or 'none'}",
                                  code="heatmap_not_found")
    heat: np.ndarray = np.load(read.layout.path(OutputLayout.heatmap_values(label)), allow_pickle=False)
    return heat.astype(np.float32, copy=False)


def slice_of(image: sources.ViewerImage, index: int) -> np.ndarray:
    """Slice ``index`` of ``image``.

    Raises:
        InvalidInputError: ``slice_out_of_range`` (422).
    """
    if index >= len(image.values):
        raise InvalidInputError(f"slice {index} of a series of {len(image.values)} (0 to {len(image.values) - 1})",
                                code="slice_out_of_range")
    pixels: np.ndarray = image.values[index]
    return pixels


def model_info(registry: ModelRegistry, key: str, language: str = "en") -> ModelInfo:
    """The registry's word on ``name:version`` (intended use in ``language`` where given); caveat on if unknown."""
    name, _, version = key.partition(":")
    try:
        spec = registry.get(name, version or None)
    except CdsError:
        return ModelInfo(key=key, name=name, version=version, intended_use="unknown: the model is no longer "
                         "registered", not_for_diagnostic_use=True, model_card="")  # fmt: skip
    return ModelInfo(key=spec.key, name=spec.name, version=spec.version, intended_use=spec.intended_use_in(language),
                     not_for_diagnostic_use=spec.not_for_diagnostic_use, model_card=spec.model_card.name)


def build_view(registry: ModelRegistry, read: FinishedOutcome, language: str = "en") -> ViewerPublic:
    """The viewer's data for one outcome of a finished pre-read (the model's intended use in ``language``)."""
    outcome = read.outcome
    image = summary_of(read)
    seg = segmentation_of(read, image.sop_instance_uids)
    findings = [FindingView(label=f.label, probability=f.probability, threshold=f.threshold, positive=f.positive,
                            ratio=f.ratio, heatmap=_has_heatmap(read, f.label)) for f in outcome.findings]
    segments = {label: number for number, label in seg.segments} if seg is not None else {}
    structures = [StructureView(label=s.label, volume_ml=s.volume_ml, segment=segments.get(s.label),
                                colour=render.colour(segments[s.label]) if s.label in segments else None)
                  for s in outcome.structures]  # fmt: skip
    low, high = image.value_range
    geometry = ImageView(width=image.columns, height=image.rows, slices=image.slices,
                         initial_slice=seg.busiest_slice() if seg is not None else 0, window=image.default_window[0],
                         level=image.default_window[1], min=low, max=high, units=image.units,
                         sop_instance_uids=list(image.sop_instance_uids))  # fmt: skip
    scale = heatmap_scale(read)
    patient = sources.shown_patient(read.payload.instances, image.sop_instance_uids[0])
    return ViewerPublic(job_id=read.job.id, uid=outcome.uid, kind=outcome.kind.value, study_uid=outcome.study_uid,
                        series_uid=outcome.series_uid, patient_id=read.patient_id, patient_name=patient.name,
                        patient_birth_date=patient.birth_date, patient_sex=patient.sex,
                        model=model_info(registry, outcome.model, language), findings=findings, structures=structures,
                        image=geometry, outlines=seg is not None, heatmap_method=_heatmap_method(read),
                        heatmap_scale=scale, heatmap_floor=FLOORS[scale])
