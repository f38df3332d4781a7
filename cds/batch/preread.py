"""``cds batch preread``: re-read an archive of radiographs on a Ray cluster with Ray Data.

Stages, streamed by Ray Data: the input URIs (those not yet done) → read and prepare on CPU tasks (the header read
defensively, the imaging contract checked, pixels decoded to the model's input) → the model on a pool of actors
(each loads its backends once; on GPUs when the cluster has them) → each input's outputs written by the actor that
read it, then the input marked done (:mod:`cds.batch.store`). A refused input is marked done with its reason, like
``refused.json`` of ``cds preread``. A task lost with its node is run again by Ray; its outputs have fixed names, so
nothing is written twice, and a re-run of a crashed job goes on from the marks.
"""

from __future__ import annotations

import functools
import pickle
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cds.batch.cluster import connect
from cds.batch.store import BatchOutput, BatchSummary, input_key, list_inputs, pending, read_input, summarise
from cds.errors import CdsError
from cds.interop.fhir_report import PATIENT_ID_SYSTEM

BATCH_ROWS = 8  # images per task and per actor call


@dataclass(frozen=True)
class PrereadJob:
    """What a batch pre-read runs: the model and how its outputs are made.

    Attributes:
        registry: The model registry folder (the same path on every node, or a shared one).
        model: The chest radiograph model, and its ``version`` (default: newest).
        saliency_grid: Occlusion grid per side for heatmaps (0: none).
        patient_system: The identifier system of DICOM Patient IDs, for the reports' subject.
    """

    registry: str
    model: str = "chest-xray-demo"
    version: str | None = None
    saliency_grid: int = 7
    patient_system: str = PATIENT_ID_SYSTEM


@functools.cache
def _spec(registry: str, model: str, version: str | None) -> Any:
    """The model's spec, read once per worker process (not once per batch)."""
    from cds.models.registry import ModelRegistry

    return ModelRegistry.from_directory(Path(registry)).get(model, version)


def prepare_batch(batch: dict[str, np.ndarray], job: PrereadJob) -> dict[str, np.ndarray]:
    """CPU stage: read each input and prepare it for the model; a refusal travels on as its reason."""
    from cds.pipelines.imaging.dicom_reader import read_instance
    from cds.pipelines.imaging.radiograph_preread import prepare_radiograph

    spec = _spec(job.registry, job.model, job.version)
    prepared, reasons, messages = [], [], []
    for uri in batch["uri"].tolist():
        try:
            instance = read_instance(read_input(uri), name=uri)
            ready = prepare_radiograph(instance, spec)
            if "PixelData" in ready.header:  # the decoded pixels travel on; the encoded ones are not needed
                del ready.header.PixelData
            prepared.append(pickle.dumps(ready))
            reasons.append("")
            messages.append("")
        except CdsError as exc:
            prepared.append(b"")
            reasons.append(exc.code)
            messages.append(exc.message)
    return {"uri": batch["uri"], "key": batch["key"], "prepared": np.array(prepared, dtype=object),
            "reason": np.array(reasons, dtype=object), "message": np.array(messages, dtype=object)}  # fmt: skip


class PrereadActor:
    """Model stage: one per actor, backends loaded once; pre-reads prepared images and writes their outputs."""

    def __init__(self, job: PrereadJob, output: str, gpu: bool) -> None:
        import functools
        from contextlib import ExitStack

        from cds.models.registry import ModelRegistry
        from cds.models.spec import BackendKind
        from cds.services.preread import RadiographOptions, radiograph_pipeline
        from cds.serving.backends import create_backend
        from cds.serving.backends.onnxruntime import OnnxRuntimeOptions

        self.job, self.output = job, BatchOutput(output)
        self._stack = ExitStack()
        models = ModelRegistry.from_directory(Path(job.registry))
        self.spec = models.get(job.model, job.version)
        # On a GPU the default providers (TensorRT, CUDA, then CPU); on CPU one thread, as the actor has one core.
        options = OnnxRuntimeOptions() if gpu else OnnxRuntimeOptions(providers=("CPUExecutionProvider",),
                                                                      intra_op_threads=1, inter_op_threads=1)
        backends: Callable[..., Any] = functools.partial(create_backend, BackendKind.ONNXRUNTIME, options=options)
        self.pipeline = radiograph_pipeline(models, self.spec, self._stack, backends=backends,
                                            options=RadiographOptions(saliency_grid=job.saliency_grid))  # fmt: skip

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Pre-read a batch of prepared images (or pass their refusals on); mark each input done."""
        statuses, reasons = [], []
        for uri, key, prepared, reason, message in zip(batch["uri"], batch["key"], batch["prepared"], batch["reason"],
                                                        batch["message"], strict=True):  # fmt: skip
            record: dict[str, Any] = {"uri": str(uri), "key": str(key)}
            if not reason:
                try:
                    record |= self._preread(pickle.loads(prepared))  # noqa: S301 - made by prepare_batch above
                except CdsError as exc:
                    reason, message = exc.code, exc.message
            if reason:
                record |= {"status": "refused", "reason": str(reason), "message": str(message)}
            self.output.mark_done(str(key), record)
            statuses.append(record["status"])
            reasons.append(record.get("reason", ""))
        return {"uri": batch["uri"], "status": np.array(statuses, dtype=object),
                "reason": np.array(reasons, dtype=object)}  # fmt: skip

    def _preread(self, prepared: Any) -> dict[str, Any]:
        from cds.interop.outputs.radiograph import write_preread

        preread = self.pipeline.run(prepared)
        uid = preread.source.sop_instance_uid or input_key(preread.source.name)
        title = f"AI pre-read: {self.spec.name} {self.spec.version}"
        local = self.output.local(uid)
        if local is not None:  # written in place: the same names again if this runs twice
            write_preread(preread, local, title=title, patient_system=self.job.patient_system)
            where = str(local)
        else:  # staged, then put on the object store
            with tempfile.TemporaryDirectory() as folder:
                write_preread(preread, Path(folder), title=title, patient_system=self.job.patient_system)
                where = self.output.put_folder(Path(folder), uid)
        result = preread.result
        return {"status": "done", "uid": uid, "outputs": where, "model": result.model.key,
                "input_sha256": result.input_sha256,
                "positive": [f.label for f in result.findings if f.positive]}  # fmt: skip


def run_preread_batch(source: str, output: str, job: PrereadJob, *, address: str | None = None,
                      actors: int | None = None,
                      progress: Callable[[int], object] | None = None) -> BatchSummary:  # fmt: skip
    """Pre-read every radiograph under ``source`` into ``output`` on the Ray cluster at ``address`` (or a local one).

    Args:
        source: A folder, file or URI of DICOM files.
        output: A folder or URI for the outputs (one folder per image, ``index.json``, the done marks).
        job: The model and output options.
        address: The cluster; ``None`` starts a local one.
        actors: The most model actors; default one per GPU, else half the CPUs (the rest read and decode). The pool
            shrinks when nodes are lost and grows back when they return.
        progress: Called with the number of inputs finished, as they finish.
    """
    import ray

    cluster = connect(address)
    store = BatchOutput(output)
    uris = list_inputs(source)
    rows = pending(store, uris)
    if rows:
        gpu = cluster.gpus > 0
        pool = actors or (cluster.gpus if gpu else max(1, cluster.cpus // 2))
        dataset: Any = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // BATCH_ROWS))
        dataset = dataset.map_batches(prepare_batch, fn_kwargs={"job": job}, batch_size=BATCH_ROWS,
                                      batch_format="numpy", num_cpus=1)  # fmt: skip
        dataset = dataset.map_batches(PrereadActor, fn_constructor_kwargs={"job": job, "output": output, "gpu": gpu},
                                      batch_size=BATCH_ROWS, batch_format="numpy", compute=ray.data.ActorPoolStrategy(
                                          min_size=1, max_size=pool), num_gpus=1 if gpu else 0,
                                      num_cpus=0 if gpu else 1)  # fmt: skip
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            if progress is not None:
                progress(len(batch["uri"]))
    return summarise(store, len(uris), len(uris) - len(rows), cluster)
