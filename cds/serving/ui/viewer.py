"""What the study viewer shows beside the pixels, and where its pictures come from.

An outcome is one entry of a finished pre-read job's result (``uid``, ``kind``, ``model``, ``summary``); the job's
payload names the stored source files and the outputs folder. Radiograph heatmaps are read from the pre-read's
overlay PNGs (``heatmap-<label>.png``, named as :mod:`cds.pipelines.preread_outputs` names them) and CT outlines from
its DICOM SEG (``segmentation-seg.dcm``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from cds.errors import CdsError, InvalidInputError, ModelNotFoundError
from cds.models.registry import ModelRegistry
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
    threshold: float
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


class ViewerPublic(BaseModel):
    """Everything the study viewer shows beside the pixels."""

    job_id: str
    uid: str
    kind: str
    study_uid: str
    series_uid: str
    patient_id: str
    model: ModelInfo
    findings: list[FindingView]
    structures: list[StructureView]
    image: ImageView
    outlines: bool


def image_of(outcome: dict[str, Any], payload: dict[str, Any]) -> sources.ViewerImage:
    """The outcome's source: the radiograph, or the CT series."""
    files = tuple(str(f) for f in payload.get("files", []))
    if outcome["kind"] == "ct":
        return sources.ct_series(files, outcome["uid"])
    return sources.radiograph_image(files, outcome["uid"])


def _outputs(payload: dict[str, Any], uid: str) -> Path:
    return Path(payload["output"]) / uid


def segmentation_of(outcome: dict[str, Any], payload: dict[str, Any],
                    image: sources.ViewerImage) -> sources.Segmentation | None:
    """The CT outcome's label volume on ``image``'s slices; ``None`` for a radiograph or without a SEG."""
    seg = _outputs(payload, outcome["uid"]) / "segmentation-seg.dcm"
    if outcome["kind"] != "ct" or not seg.is_file():
        return None
    return sources.segmentation(str(seg), image.sop_instance_uids)


def heatmap_file(payload: dict[str, Any], uid: str, label: str) -> Path:
    """Where the pre-read wrote ``label``'s overlay (it exists only for positive findings)."""
    safe = "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()
    return _outputs(payload, uid) / f"heatmap-{safe}.png"


def heatmap_of(outcome: dict[str, Any], payload: dict[str, Any], label: str) -> np.ndarray:
    """float32 [S, S] in [0, 1]: the heatmap of a positive finding, on the model's input grid.

    Raises:
        ModelNotFoundError: ``heatmap_not_found`` (404): no such finding, or no heatmap for it (it is negative).
    """
    from PIL import Image

    file = heatmap_file(payload, outcome["uid"], label)
    labels = [f["label"] for f in outcome["summary"] if "probability" in f]
    if label not in labels or not file.is_file():
        shown = [name for name in labels if heatmap_file(payload, outcome["uid"], name).is_file()]
        raise ModelNotFoundError(f"no heatmap for {label!r}; heatmaps: {', '.join(shown) or 'none'}",
                                 code="heatmap_not_found")
    with Image.open(file) as overlay:
        return render.heatmap_from_overlay(np.asarray(overlay.convert("RGB")))


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


def model_info(registry: ModelRegistry, key: str) -> ModelInfo:
    """The registry's word on ``name:version``; a model no longer registered keeps the caveat on."""
    name, _, version = key.partition(":")
    try:
        spec = registry.get(name, version or None)
    except CdsError:
        return ModelInfo(key=key, name=name, version=version, intended_use="unknown: the model is no longer "
                         "registered", not_for_diagnostic_use=True, model_card="")  # fmt: skip
    return ModelInfo(key=spec.key, name=spec.name, version=spec.version, intended_use=spec.intended_use,
                     not_for_diagnostic_use=spec.not_for_diagnostic_use, model_card=spec.model_card.name)


def build_view(registry: ModelRegistry, job_id: str, outcome: dict[str, Any], payload: dict[str, Any],
               patient_id: str) -> ViewerPublic:
    """The viewer's data for one outcome of pre-read ``job_id``."""
    uid = outcome["uid"]
    image = image_of(outcome, payload)
    seg = segmentation_of(outcome, payload, image)
    findings = [FindingView(label=f["label"], probability=f["probability"], threshold=f["threshold"],
                            positive=f["positive"], ratio=f["probability"] / f["threshold"] if f["threshold"] else None,
                            heatmap=heatmap_file(payload, uid, f["label"]).is_file())
                for f in outcome["summary"] if "probability" in f]  # fmt: skip
    segments = {label: number for number, label in seg.segments} if seg is not None else {}
    structures = [StructureView(label=s["label"], volume_ml=s.get("volume_ml"), segment=segments.get(s["label"]),
                                colour=render.colour(segments[s["label"]]) if s["label"] in segments else None)
                  for s in outcome["summary"] if "probability" not in s]  # fmt: skip
    slices, height, width = image.values.shape
    low, high = image.value_range
    geometry = ImageView(width=width, height=height, slices=slices,
                         initial_slice=seg.busiest_slice() if seg is not None else 0, window=image.default_window[0],
                         level=image.default_window[1], min=low, max=high, units=image.units)  # fmt: skip
    return ViewerPublic(job_id=job_id, uid=uid, kind=outcome["kind"], study_uid=outcome["study_uid"],
                        series_uid=outcome["series_uid"], patient_id=patient_id,
                        model=model_info(registry, outcome["model"]), findings=findings, structures=structures,
                        image=geometry, outlines=seg is not None)
