"""Pre-read DICOM series with the registry's imaging models: the one runner behind `cds preread` and the service.

:func:`radiograph_pipeline` loads a chest radiograph model together with the plausibility gate its imaging contract
names. :class:`PrereadRunner` routes each series to the model whose contract takes its modality (radiographs image
by image, CT series whole), writes every output (JSON, FHIR, DICOM SR/SEG/secondary capture, PNG overlays) and
records each outcome or refusal with its reason code; one bad image or series never stops the others.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines.ct_segmentation import CtSegmentationPipeline
from cds.pipelines.dicom_reader import DicomInstance
from cds.pipelines.dicom_series import group_series
from cds.pipelines.plausibility import PlausibilityCheck
from cds.pipelines.preread_outputs import write_preread
from cds.pipelines.radiograph_preread import RadiographPrereadPipeline
from cds.pipelines.segmentation_outputs import write_segmentation
from cds.serving.backends import BaseBackend, create_backend

BackendFactory = Callable[[ModelSpec], BaseBackend]


def onnxruntime_backend(spec: ModelSpec) -> BaseBackend:
    """The default: the model in-process on ONNX Runtime."""
    return create_backend(BackendKind.ONNXRUNTIME, spec)


def radiograph_pipeline(models: ModelRegistry, spec: ModelSpec, stack: ExitStack, *, saliency_grid: int = 7,
                        backends: BackendFactory = onnxruntime_backend) -> RadiographPrereadPipeline:
    """A radiograph pre-read pipeline whose backends close with ``stack``.

    Raises:
        ModelNotFoundError: The plausibility model the contract names is not in the registry.
    """
    backend = stack.enter_context(backends(spec))
    key = spec.imaging.plausibility_model if spec.imaging is not None else None
    gate = None
    if key is not None:
        name, version = key.split(":", 1)
        gate = PlausibilityCheck(stack.enter_context(backends(models.get(name, version))))
    return RadiographPrereadPipeline(backend, saliency_grid=saliency_grid, plausibility=gate)


@dataclass(frozen=True)
class PrereadOutcome:
    """One pre-read image or series: where its outputs are and what the model said, in short."""

    kind: str  # "radiograph" or "ct"
    study_uid: str
    series_uid: str
    uid: str  # SOP Instance UID (radiograph) or Series Instance UID (CT): the outputs' folder name
    folder: str
    model: str  # name:version
    input_sha256: str
    summary: list[dict[str, object]]  # findings (label, probability, threshold, positive) or structures


@dataclass(frozen=True)
class Refusal:
    """An image or series that was not pre-read, with the reason code and sentence."""

    source: str
    reason: str
    message: str


@dataclass
class PrereadReport:
    """Everything one run did."""

    outcomes: list[PrereadOutcome] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """JSON-ready."""
        return {"outcomes": [asdict(o) for o in self.outcomes], "refusals": [asdict(r) for r in self.refusals]}


class PrereadRunner:
    """Routes series to models and writes their outputs under ``output``; a context manager that owns the backends.

    Args:
        models: The registry.
        radiograph: The chest radiograph model.
        ct: The CT segmentation model, or ``None`` for none.
        output: Root folder; each image or series gets a subfolder named by its UID.
        saliency_grid: Occlusion grid per side for radiograph heatmaps (0: none).
        backends: Makes each model's backend (default: ONNX Runtime in-process; the service passes its own, e.g.
            Triton, with its metrics attached).
    """

    def __init__(self, models: ModelRegistry, radiograph: ModelSpec, ct: ModelSpec | None, output: Path, *,
                 saliency_grid: int = 7, backends: BackendFactory = onnxruntime_backend) -> None:
        self.models, self.radiograph_spec, self.ct_spec = models, radiograph, ct
        self.output, self.saliency_grid = output, saliency_grid
        self._stack = ExitStack()
        self._backends = backends
        self._radiograph: RadiographPrereadPipeline | None = None
        self._ct: CtSegmentationPipeline | None = None

    def __enter__(self) -> PrereadRunner:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stack.close()

    def group(self, instances: Iterable[DicomInstance]) -> list[list[DicomInstance]]:
        """Series, in first-seen order."""
        return list(group_series(instances).values())

    def run_series(self, instances: Sequence[DicomInstance], report: PrereadReport) -> None:
        """Pre-read one series into ``report`` (outcomes or refusals; never raises a :class:`CdsError`)."""
        try:
            modality = str(instances[0].dataset.get("Modality", "") or "").upper()
            accepts = {name: {m.value for m in spec.imaging.modalities} if spec and spec.imaging else set()
                       for name, spec in (("radiograph", self.radiograph_spec), ("ct", self.ct_spec))}
            if self.ct_spec is not None and modality in accepts["ct"]:
                report.outcomes.append(self._ct_series(self.ct_spec, instances))
                return
            if modality not in accepts["radiograph"] and accepts["ct"]:
                wanted = "/".join(sorted(accepts["radiograph"] | accepts["ct"]))
                raise InvalidInputError(f"no model for modality {modality or 'none'}; the models expect {wanted}",
                                        code="wrong_modality")
        except CdsError as exc:
            where = instances[0].source if len(instances) == 1 else (
                f"series of {len(instances)} files starting {instances[0].source}")
            report.refusals.append(Refusal(where, exc.code, exc.message))
            return
        for instance in instances:
            try:
                report.outcomes.append(self._radiograph_image(instance))
            except CdsError as exc:  # one bad image never stops the series
                report.refusals.append(Refusal(instance.source, exc.code, exc.message))

    def _radiograph_image(self, instance: DicomInstance) -> PrereadOutcome:
        spec = self.radiograph_spec
        if self._radiograph is None:
            self._radiograph = radiograph_pipeline(self.models, spec, self._stack, saliency_grid=self.saliency_grid,
                                                   backends=self._backends)
        preread = self._radiograph(instance)
        source = preread.source
        folder = self.output / (source.sop_instance_uid or Path(instance.source).stem)
        write_preread(preread, folder, title=f"AI pre-read: {spec.name} {spec.version}")
        return PrereadOutcome("radiograph", source.study_uid, source.series_uid, folder.name, str(folder), spec.key,
                              preread.result.input_sha256,
                              [f.model_dump() for f in preread.result.findings])

    def _ct_series(self, spec: ModelSpec, instances: Sequence[DicomInstance]) -> PrereadOutcome:
        if self._ct is None:
            self._ct = CtSegmentationPipeline(self._stack.enter_context(self._backends(spec)))
        segmentation = self._ct(instances)
        volume = segmentation.volume
        folder = self.output / (volume.series_uid or "series")
        write_segmentation(segmentation, instances, folder, title=f"AI segmentation: {spec.name} {spec.version}",
                           not_for_diagnostic_use=spec.not_for_diagnostic_use)
        return PrereadOutcome("ct", volume.study_uid, volume.series_uid, folder.name, str(folder), spec.key,
                              segmentation.result.input_sha256,
                              [s.model_dump() for s in segmentation.result.structures])
