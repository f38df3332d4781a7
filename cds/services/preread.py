"""Imaging pre-reads: route each series to the model whose contract takes it, write every output, report refusals.

:class:`PrereadRunner` is the one runner behind ``cds preread`` and the service's ``preread`` jobs: radiographs
image by image to the chest model (with the plausibility gate its imaging contract names), CT series whole to the
segmentation model; each outcome's outputs go where :class:`~cds.results.layout.OutputLayout` says, and one bad
image or series never stops the others. :func:`run_preread` is the job (outputs indexed for QIDO/WADO, every
outcome and refusal audited); :func:`finished_outcome` finds one outcome of a finished job for the routes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pydicom

from cds.errors import CdsError, InvalidInputError, ResultNotFoundError
from cds.interop.fhir_report import PATIENT_ID_SYSTEM
from cds.interop.outputs.radiograph import write_preread
from cds.interop.outputs.segmentation import write_segmentation
from cds.models.backend import Backend
from cds.models.registry import ModelRegistry
from cds.models.spec import ModelSpec
from cds.pipelines.imaging.ct_segmentation import CtSegmentationPipeline
from cds.pipelines.imaging.dicom_reader import DicomInstance, read_instance
from cds.pipelines.imaging.dicom_series import group_series
from cds.pipelines.imaging.plausibility import PlausibilityCheck, PlausibilityPolicy
from cds.pipelines.imaging.radiograph_preread import RadiographPrereadPipeline
from cds.pipelines.imaging.saliency import HeatmapMethod
from cds.results.jobs import (
    ClaimedJob,
    JobKind,
    JobRecord,
    OutcomeKind,
    PrereadOutcome,
    PrereadPayload,
    PrereadReport,
    Refusal,
)
from cds.results.layout import DICOM, OutputLayout
from cds.services.dicom_sender import queue_results
from cds.services.engine import BackendFactory, Engine
from cds.services.hl7_sender import queue_oru
from cds.settings import Settings
from cds.store import jobs
from cds.store.audit import Actor, AuditAction, AuditOutcome, record_event
from cds.store.audit_policy import record_first
from cds.store.dicom_index import AI_RESULT, index_dataset, patient_of_study


def _opened(stack: ExitStack, backend: Backend) -> Backend:
    """``backend``, loaded, and closed when ``stack`` closes."""
    stack.enter_context(closing(backend))
    backend.load()
    return backend


@dataclass(frozen=True)
class RadiographOptions:
    """How radiographs are pre-read at this site: heatmaps (method, occlusion grid) and the plausibility policy."""

    heatmaps: HeatmapMethod = HeatmapMethod.AUTO
    saliency_grid: int = 7
    plausibility_policy: PlausibilityPolicy = PlausibilityPolicy.REFUSE
    refuse_below: float = 0.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RadiographOptions:
        """The site's options from its settings."""
        return cls(heatmaps=settings.preread_heatmaps, saliency_grid=settings.preread_saliency_grid,
                   plausibility_policy=settings.plausibility_policy, refuse_below=settings.plausibility_refuse_below)


def radiograph_pipeline(models: ModelRegistry, spec: ModelSpec, stack: ExitStack, *, backends: BackendFactory,
                        options: RadiographOptions = RadiographOptions()) -> RadiographPrereadPipeline:  # fmt: skip
    """A radiograph pre-read pipeline with the plausibility gate its contract names; backends close with ``stack``.

    Raises:
        ModelNotFoundError: The plausibility model the contract names is not in the registry.
    """
    backend = _opened(stack, backends(spec))
    key = spec.imaging.plausibility_model if spec.imaging is not None else None
    gate = None
    if key is not None:
        name, version = key.split(":", 1)
        gate = PlausibilityCheck(_opened(stack, backends(models.get(name, version))),
                                 policy=options.plausibility_policy, refuse_below=options.refuse_below)
    return RadiographPrereadPipeline(backend, heatmaps=options.heatmaps, saliency_grid=options.saliency_grid,
                                     plausibility=gate)


def _uids(instances: Iterable[DicomInstance]) -> tuple[str, ...]:
    return tuple(uid for i in instances if (uid := str(i.dataset.get("SOPInstanceUID", "") or "")))


class PrereadRunner:
    """Routes series to models and writes their outputs under ``output``; a context manager that owns the backends.

    Args:
        models: The registry.
        radiograph: The chest radiograph model.
        ct: The CT segmentation model, or ``None`` for none.
        output: Root folder; each image or series gets the layout of its UID.
        backends: Makes each model's backend (the engine's factory in the service; ONNX Runtime in the CLI).
        options: How radiographs are pre-read (heatmaps, plausibility policy).
        patient_system: The identifier system of DICOM Patient IDs, for the reports' subject.
    """

    def __init__(self, models: ModelRegistry, radiograph: ModelSpec, ct: ModelSpec | None, output: Path, *,
                 backends: BackendFactory, options: RadiographOptions = RadiographOptions(),
                 patient_system: str = PATIENT_ID_SYSTEM) -> None:  # fmt: skip
        self.models, self.radiograph_spec, self.ct_spec = models, radiograph, ct
        self.patient_system = patient_system
        self.output, self.options = output, options
        self._stack = ExitStack()
        self._backends = backends
        self._radiograph: RadiographPrereadPipeline | None = None
        self._ct: CtSegmentationPipeline | None = None

    def __enter__(self) -> PrereadRunner:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stack.close()

    def layout(self, outcome: PrereadOutcome) -> OutputLayout:
        """Where ``outcome``'s files are."""
        return OutputLayout.of_outcome(self.output, outcome.uid)

    def group(self, instances: Iterable[DicomInstance], report: PrereadReport) -> list[list[DicomInstance]]:
        """Series, in first-seen order.

        An instance whose SOP Instance UID came before is refused into ``report`` (``duplicate_instance``), so that
        no two inputs write the same outputs.
        """
        first: dict[str, str] = {}
        unique = []
        for instance in instances:
            uid = str(instance.dataset.get("SOPInstanceUID", "") or "")
            if uid and uid in first:
                report.refusals.append(Refusal(
                    source=instance.source, reason="duplicate_instance", sop_instance_uids=(uid,),
                    files=(instance.source,), message=f"the same SOP Instance UID as {first[uid]}; pre-read once"))
                continue
            first.setdefault(uid, instance.source)
            unique.append(instance)
        return list(group_series(unique).values())

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
            report.refusals.append(Refusal(source=where, reason=exc.code, message=exc.message,
                                           sop_instance_uids=_uids(instances),
                                           files=tuple(i.source for i in instances)))  # fmt: skip
            return
        for instance in instances:
            try:
                report.outcomes.append(self._radiograph_image(instance))
            except CdsError as exc:  # one bad image never stops the series
                report.refusals.append(Refusal(source=instance.source, reason=exc.code, message=exc.message,
                                               sop_instance_uids=_uids([instance]), files=(instance.source,)))

    def _radiograph_image(self, instance: DicomInstance) -> PrereadOutcome:
        spec = self.radiograph_spec
        if self._radiograph is None:
            self._radiograph = radiograph_pipeline(self.models, spec, self._stack, options=self.options,
                                                   backends=self._backends)
        preread = self._radiograph(instance)
        source = preread.source
        uid = source.sop_instance_uid or Path(instance.source).stem
        write_preread(preread, OutputLayout.of_outcome(self.output, uid).folder,
                      title=f"AI pre-read: {spec.name} {spec.version}", patient_system=self.patient_system)
        return PrereadOutcome(kind=OutcomeKind.RADIOGRAPH, study_uid=source.study_uid, series_uid=source.series_uid,
                              uid=uid, model=preread.result.model.key, input_sha256=preread.result.input_sha256,
                              summary=preread.result.findings)  # fmt: skip

    def _ct_series(self, spec: ModelSpec, instances: Sequence[DicomInstance]) -> PrereadOutcome:
        if self._ct is None:
            self._ct = CtSegmentationPipeline(_opened(self._stack, self._backends(spec)))
        segmentation = self._ct(instances)
        volume = segmentation.volume
        uid = volume.series_uid or "series"
        folder = OutputLayout.of_outcome(self.output, uid).folder
        write_segmentation(segmentation, [i.dataset for i in instances], folder,
                           title=f"AI segmentation: {spec.name} {spec.version}",
                           not_for_diagnostic_use=spec.not_for_diagnostic_use,
                           patient_system=self.patient_system)  # fmt: skip
        return PrereadOutcome(kind=OutcomeKind.CT, study_uid=volume.study_uid, series_uid=volume.series_uid, uid=uid,
                              model=segmentation.result.model.key, input_sha256=segmentation.result.input_sha256,
                              summary=segmentation.result.structures)  # fmt: skip


def run_preread(engine: Engine, job: ClaimedJob) -> PrereadReport:
    """Pre-read the job's stored instances (the job handler).

    Every outcome's DICOM outputs (SR, SEG, captures) join the index QIDO/WADO serve from; every outcome and every
    refusal is audited with the model's key and the input's hash. A job in which nothing could be pre-read fails
    for good with the first refusal's reason.

    Raises:
        InvalidInputError: ``invalid_payload``, or the first refusal's reason when nothing was pre-read.
    """
    payload = job.payload_as(PrereadPayload)
    report, instances = PrereadReport(), []
    for stored in payload.instances:
        try:
            instances.append(read_instance(stored.path, name=stored.path.name))
        except CdsError as exc:
            report.refusals.append(Refusal(source=stored.path.name, reason=exc.code, message=exc.message,
                                           sop_instance_uids=(stored.sop_instance_uid,), files=(stored.path.name,)))
    models, ct = engine.registry, payload.ct_model
    with PrereadRunner(models, models.get(payload.model), models.get(ct) if ct else None, payload.output,
                       options=RadiographOptions.from_settings(engine.settings), backends=engine.backends,
                       patient_system=engine.settings.patient_id_system) as runner:
        for series in runner.group(instances, report):
            runner.run_series(series, report)
    actor = Actor(job.actor, job.role)
    with engine.database.session() as session:
        for outcome in report.outcomes:
            layout = runner.layout(outcome)
            results = [layout.path(output) for output in layout.present(outcome.labels) if output.media_type == DICOM]
            for path in results:  # SR, SEG, captures: QIDO/WADO serve them
                index_dataset(session, pydicom.dcmread(path, stop_before_pixels=True), path, origin=AI_RESULT,
                              site=job.site)
            now = dt.datetime.now(dt.UTC)  # to the PACS and the HIS, from the outbox, written with the read
            sent_to = queue_results(session, engine.settings, results, study_uid=outcome.study_uid, site=job.site,
                                    now=now)  # fmt: skip
            queue_oru(session, engine.settings, outcome, job_id=job.id, site=job.site, now=now)
            record_event(session, AuditAction.IMAGING_PREREAD, actor, f"ImagingStudy/{outcome.study_uid}",
                         model=outcome.model, input_sha256=outcome.input_sha256,
                         detail={"series": outcome.series_uid, "kind": outcome.kind.value, "uid": outcome.uid,
                                 "sent_to": sent_to})  # fmt: skip
        for refusal in report.refusals:
            record_event(session, AuditAction.IMAGING_PREREAD, actor, "ImagingStudy/unknown",
                         outcome=AuditOutcome.REFUSED, detail={"reason": refusal.reason})
    if not report.outcomes:
        first = report.refusals[0] if report.refusals else Refusal(source="", reason="empty_input",
                                                                   message="nothing to pre-read")
        raise InvalidInputError(f"{first.source}: {first.message}", code=first.reason)
    return report


@dataclass(frozen=True)
class FinishedOutcome:
    """One outcome of a finished pre-read, with its job and the study's patient (as the DICOM index holds it)."""

    job: JobRecord
    payload: PrereadPayload
    outcome: PrereadOutcome
    patient_id: str

    @property
    def layout(self) -> OutputLayout:
        """Where the outcome's files are."""
        return OutputLayout.of_outcome(self.payload.output, self.outcome.uid)


def finished_outcome(engine: Engine, job_id: str, uid: str) -> FinishedOutcome:
    """Outcome ``uid`` of the finished pre-read ``job_id``.

    Raises:
        JobNotFoundError: No such pre-read job (404).
        InvalidInputError: ``job_not_done`` (422).
        ResultNotFoundError: ``outcome_not_found``: the job has no outcome ``uid`` (404).
    """
    with engine.database.session() as session:
        job = jobs.read_job(session, job_id, kind=JobKind.PREREAD, done=True)
        outcome = job.outcome_as(PrereadReport).outcome(uid)
        if outcome is None:
            raise ResultNotFoundError(f"pre-read {job_id} has no outcome {uid!r}", code="outcome_not_found")
        patient = patient_of_study(session, outcome.study_uid)
    return FinishedOutcome(job, job.payload_as(PrereadPayload), outcome, patient)


def patients_of(engine: Engine, job: JobRecord) -> set[str]:
    """The Patient IDs (as the DICOM index holds them) of every study a pre-read job stored."""
    studies = {stored.study_uid for stored in job.payload_as(PrereadPayload).instances}
    with engine.database.session() as session:
        return {patient_of_study(session, study) for study in studies}


VIEWS = frozenset({AuditAction.IMAGING_VIEWER_OPEN, AuditAction.IMAGING_VIEWER_RENDER})


def record_outcome_event(engine: Engine, action: AuditAction, actor: Actor, read: FinishedOutcome,
                         **detail: Any) -> None:  # fmt: skip
    """Audit ``actor``'s ``action`` on one outcome (its study, model and input hash).

    Opening the viewer and drawing its pictures (:data:`VIEWS`) are audited the first time in the actor's session
    and window per outcome, not on every re-draw (window/level, slice, heatmap:
    :func:`cds.store.audit_policy.record_first`); every other action every time.
    """
    outcome = read.outcome
    event: dict[str, Any] = {"model": outcome.model, "input_sha256": outcome.input_sha256,
                             "detail": {"job": read.job.id, "uid": outcome.uid, **detail}}
    resource = f"ImagingStudy/{outcome.study_uid}"
    with engine.database.session() as session:
        if action in VIEWS:
            record_first(session, action, actor, resource, seen=f"{read.job.id}/{outcome.uid}", **event)
        else:
            record_event(session, action, actor, resource, **event)
