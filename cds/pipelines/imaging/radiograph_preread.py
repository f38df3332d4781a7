"""Chest radiograph pre-read: one DICOM CR/DX image → contract check → findings → heatmaps for positive findings.

Heatmaps come from the same forward pass when the model exports class activation maps
(:mod:`cds.models.activation_maps`), else from occlusion (:mod:`cds.pipelines.imaging.saliency`).

Refusals happen before inference: the model's imaging contract (modality, body part, view, photometric, size,
spacing) is checked from the header alone, then the pixels are decoded under the size limits of
:mod:`cds.pipelines.imaging.dicom_reader`, then the plausibility gate the contract names (if any) checks that the pixels
are what the model was trained on, since tags can lie. The result carries the model's identity, the sha256 of the
exact model input, the source study/series/instance UIDs and the time taken per stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from cds.errors import InvalidInputError
from cds.models.activation_maps import ACTIVATION_MAPS
from cds.models.backend import Backend
from cds.models.spec import ModelSpec, Task
from cds.pipelines.classification import TensorClassificationPipeline
from cds.pipelines.imaging.dicom_contract import check_instance
from cds.pipelines.imaging.dicom_reader import DicomInstance
from cds.pipelines.imaging.plausibility import PlausibilityCheck
from cds.pipelines.imaging.radiograph import MODEL_RANGE, display_pixels, to_model_input
from cds.pipelines.imaging.saliency import (
    HeatmapMethod,
    localises,
    occlusion_heatmaps,
    probability_scaled,
    upsample_map,
)
from cds.pipelines.timing import StageTimer
from cds.results.imaging import RadiographPreread, SourceImage


class RadiographPrereadPipeline:
    """Runs a chest radiograph classifier over DICOM images.

    Args:
        backend: A loaded backend for a classification model with one input [-1, 1, S, S].
        heatmaps: How positive findings are localised: class activation maps from the model's own
            ``activation_maps`` output (``cam``: no extra inference), occlusion (``occlusion``: ``saliency_grid²``
            extra inferences), ``auto`` (CAM when the model exports maps, else occlusion) or ``off``.
        saliency_grid: Occlusion grid per side; 0 turns heatmaps off whatever ``heatmaps`` says.
        plausibility: The gate for the model named by its contract's ``plausibility_model``; required when the
            contract names one (the pipeline fails closed), refused when it names another model.

    Raises:
        InvalidInputError: ``wrong_task``, ``plausibility_model_mismatch``, or ``no_activation_maps`` when ``cam``
            is asked of a model without that output.
    """

    def __init__(self, backend: Backend, *, heatmaps: HeatmapMethod = HeatmapMethod.AUTO, saliency_grid: int = 7,
                 plausibility: PlausibilityCheck | None = None) -> None:
        spec = backend.spec
        shape = spec.inputs[0].shape
        if spec.task is not Task.CLASSIFICATION or len(shape) != 4 or shape[1] != 1 or shape[2] != shape[3]:
            raise InvalidInputError(
                f"model {spec.key} is not a single-channel square image classifier (input {list(shape)})",
                code="wrong_task",
            )
        required = spec.imaging.plausibility_model if spec.imaging is not None else None
        given = plausibility.backend.spec.key if plausibility is not None else None
        if required != given:
            raise InvalidInputError(
                f"model {spec.key} requires plausibility gate {required or 'none'}, got {given or 'none'}",
                code="plausibility_model_mismatch",
            )
        self.plausibility = plausibility
        self.backend = backend
        self.size = int(shape[2])
        self.saliency_grid = saliency_grid
        self.classifier = TensorClassificationPipeline(backend)
        has_maps = any(t.name == ACTIVATION_MAPS for t in spec.outputs)
        if heatmaps is HeatmapMethod.CAM and not has_maps:
            raise InvalidInputError(f"model {spec.key} has no {ACTIVATION_MAPS!r} output for class activation maps; "
                                    "use occlusion heatmaps", code="no_activation_maps")
        if heatmaps is HeatmapMethod.AUTO:
            heatmaps = HeatmapMethod.CAM if has_maps else HeatmapMethod.OCCLUSION
        self.heatmaps = HeatmapMethod.OFF if saliency_grid <= 0 else heatmaps

    def _probabilities(self, batch: np.ndarray) -> np.ndarray:
        spec = self.backend.spec
        result: np.ndarray = self.backend.infer({spec.inputs[0].name: batch})[spec.outputs[0].name]
        return result

    def __call__(self, instance: DicomInstance) -> RadiographPreread:
        """Pre-read one image; raises :class:`InvalidInputError` (with its reason code) when refused."""
        return self.run(prepare_radiograph(instance, self.backend.spec))

    def run(self, prepared: PreparedRadiograph) -> RadiographPreread:
        """The model's part of a pre-read (plausibility gate, findings, heatmaps) on a prepared image.

        Raises:
            InvalidInputError: ``implausible_image`` from the gate, or ``wrong_size`` when the image was prepared
                for another model size.
        """
        if prepared.model_input.shape[-1] != self.size:
            raise InvalidInputError(f"image prepared at {prepared.model_input.shape[-1]} px for a {self.size}-px model",
                                    code="wrong_size")  # fmt: skip
        timer = StageTimer()
        pixels, model_input = prepared.pixels, prepared.model_input
        plausibility: float | None = None
        warnings: tuple[str, ...] = ()
        if self.plausibility is not None:
            with timer.stage("plausibility"):
                verdict = self.plausibility.judge(pixels, source=prepared.source.name)
                plausibility, warnings = verdict.score, verdict.warnings
        with timer.stage("infer"):
            inputs = self.classifier.preprocess(model_input[None])
            outputs, elapsed_ms = self.classifier.infer(inputs)
            result = self.classifier.postprocess(inputs, outputs, elapsed_ms)[0]
            if warnings:
                result = result.model_copy(update={"warnings": (*result.warnings, *warnings)})
        with timer.stage("saliency"):
            positives = [i for i, finding in enumerate(result.findings) if finding.positive]
            heatmaps: dict[str, np.ndarray] = {}
            if positives and self.heatmaps is not HeatmapMethod.OFF:
                if self.heatmaps is HeatmapMethod.CAM:
                    maps = [upsample_map(outputs[ACTIVATION_MAPS][0, i], (self.size, self.size)) for i in positives]
                else:
                    maps = list(occlusion_heatmaps(self._probabilities, model_input, positives,
                                                   grid=self.saliency_grid))
                heatmaps = {result.findings[i].label: probability_scaled(m, result.findings[i].probability)
                            for i, m in zip(positives, maps, strict=True) if localises(m)}  # the fixed 0-1 scale
                unexplained = [result.findings[i].label for i in positives if result.findings[i].label not in heatmaps]
                if unexplained:  # said in words, never drawn as an empty picture
                    note = (f"no localisation for {', '.join(unexplained)}: its {self.heatmaps.value} map points to "
                            "no region of the image")
                    result = result.model_copy(update={"warnings": (*result.warnings, note)})
        low, high = MODEL_RANGE
        image = (model_input[0] - low) / (high - low)
        return RadiographPreread(result=result, source=prepared.source, image=image.astype(np.float32),
                                 heatmaps=heatmaps, heatmap_method=self.heatmaps.value,
                                 stage_ms=prepared.stage_ms | timer.ms, plausibility=plausibility,
                                 header=prepared.header,
                                 not_for_diagnostic_use=self.backend.spec.not_for_diagnostic_use)  # fmt: skip


@dataclass(frozen=True)
class PreparedRadiograph:
    """An image checked against the model's contract and decoded: the CPU part of a pre-read, before the model.

    Attributes:
        pixels: The display pixels (for the plausibility gate).
        model_input: The model's input, [1, S, S].
        source: The source's UIDs and name.
        header: The source's DICOM attributes (for outputs that reference it).
        stage_ms: Time taken per stage so far.
    """

    pixels: np.ndarray
    model_input: np.ndarray
    source: SourceImage
    header: Dataset
    stage_ms: dict[str, float] = field(default_factory=dict)


def prepare_radiograph(instance: DicomInstance, spec: ModelSpec) -> PreparedRadiograph:
    """Check ``instance`` against ``spec``'s imaging contract and decode it to the model's input.

    Raises:
        InvalidInputError: The contract's reason (modality, view, size, ...) or a decoding limit.
    """
    timer = StageTimer()
    with timer.stage("decode"):
        if spec.imaging is not None:
            check_instance(instance, spec.imaging)
        pixels = display_pixels(instance)
    with timer.stage("preprocess"):
        model_input = to_model_input(pixels, int(spec.inputs[0].shape[2]))
    ds = instance.dataset
    source = SourceImage(
        study_uid=str(ds.get("StudyInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        modality=str(ds.get("Modality", "")),
        name=instance.source,
    )
    return PreparedRadiograph(pixels=pixels, model_input=model_input, source=source, header=ds, stage_ms=timer.ms)
