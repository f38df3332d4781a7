"""ONNX Runtime backend: the default, in-process engine (CPU here; CUDA and TensorRT where a GPU is present)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import BackendUnavailableError, InvalidSpecError, MissingDependencyError
from cds.models.backend import BackendHealth
from cds.models.registry import verify_artifact
from cds.models.spec import BackendKind, ModelSpec
from cds.models.tensors import DYNAMIC
from cds.serving.backends.base import BaseBackend, as_contiguous
from cds.serving.backends.devices import cuda_device_count

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
GPU_PROVIDERS = (TENSORRT, CUDA)


class Precision(StrEnum):
    """Which ONNX artifact runs: the fp32 model, or the fp16 copy (GPU providers only)."""

    FP32 = "fp32"
    FP16 = "fp16"


@dataclass(frozen=True)
class OnnxRuntimeOptions:
    """How to run a model on ONNX Runtime.

    Attributes:
        providers: Execution providers in order of preference; those not present on this machine (or needing
            a GPU that is absent) are skipped. Names must be known to ONNX Runtime.
        intra_op_threads: Threads inside one operator; 0 lets ONNX Runtime choose.
        inter_op_threads: Threads across operators; 0 lets ONNX Runtime choose.
        warmup_runs: Batch-1 runs at load time, so the first request does not pay for lazy initialisation.
        precision: ``fp16`` loads the model's fp16 artifact (and lets TensorRT build fp16 engines).
        io_binding: Bind inputs and outputs to the device explicitly; ``None`` turns it on when a GPU provider
            runs the model.
        device_id: GPU ordinal for CUDA and TensorRT.
        tensorrt_cache_dir: Where TensorRT keeps built engines between runs; ``None`` disables the cache.
        allow_spinning: Let idle threads spin for work (ONNX Runtime's own default is on). Off by default here: in
            a service, sessions (the pre-read's gate and model), the web server and the database take turns on
            the same cores, and a spinning session steals them (measured: chest pre-read 3.1 → 9.0 images/s
            end to end on 2 shared cores, benchmarks/results). Turn it on for a dedicated inference box.
        tensorrt_fp16: Let TensorRT build fp16 engines from the fp32 model (no fp16 artifact needed).
        tensorrt_max_batch: Largest batch of the TensorRT optimisation profile (min 1, optimum ``min(32, max)``);
            ``None`` uses the spec's ``max_batch_size``. Inputs with other dynamic dimensions get no profile.
    """

    providers: tuple[str, ...] = (TENSORRT, CUDA, CPU)
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    warmup_runs: int = 1
    precision: Precision = Precision.FP32
    io_binding: bool | None = None
    device_id: int = 0
    tensorrt_cache_dir: Path | None = None
    allow_spinning: bool = False
    tensorrt_fp16: bool = False
    tensorrt_max_batch: int | None = None


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError("ONNX Runtime is not installed: pip install onnxruntime-gpu") from exc
    return onnxruntime


def select_providers(requested: tuple[str, ...], available: list[str], gpus: int) -> list[str]:
    """The requested providers that can run here, in the requested order.

    Raises:
        BackendUnavailableError: A name ONNX Runtime does not know, or none of the requested can run.
    """
    ort = _import_ort()
    known = set(ort.get_all_providers())
    unknown = [p for p in requested if p not in known]
    if unknown:
        raise BackendUnavailableError(
            f"unknown ONNX Runtime providers {unknown}; known: {sorted(known)}", code="unknown_provider"
        )
    usable = [p for p in requested if p in available and (p not in GPU_PROVIDERS or gpus > 0)]
    if not usable:
        raise BackendUnavailableError(
            f"none of the requested providers {list(requested)} can run here "
            f"(installed: {available}; CUDA devices: {gpus})",
            code="no_provider",
        )
    return usable


def tensorrt_profile(spec: ModelSpec, max_batch: int) -> dict[str, str]:
    """TensorRT optimisation-profile options covering batch 1..``max_batch`` (optimum ``min(32, max_batch)``).

    Without a profile TensorRT builds for the first shape it sees and rebuilds when another batch size arrives.
    Empty when an input has a dynamic dimension besides the batch (TensorRT then profiles on its own).
    """
    if any(DYNAMIC in t.shape[1:] for t in spec.inputs):
        return {}

    def shapes(batch: int) -> str:
        return ",".join(f"{t.name}:{'x'.join(str(d) for d in (batch, *t.shape[1:]))}" for t in spec.inputs)

    return {"trt_profile_min_shapes": shapes(1), "trt_profile_opt_shapes": shapes(min(32, max_batch)),
            "trt_profile_max_shapes": shapes(max_batch)}  # fmt: skip


class OnnxRuntimeBackend(BaseBackend):
    """Runs a registered model's ONNX artifact with ONNX Runtime.

    Args:
        spec: The model version.
        options: Providers, threads, warm-up, precision and IO binding.
    """

    kind = BackendKind.ONNXRUNTIME

    def __init__(self, spec: ModelSpec, options: OnnxRuntimeOptions | None = None, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.options = options or OnnxRuntimeOptions()
        self._session: Any = None
        self._providers: list[str] = []
        self._io_binding = False

    def _load(self) -> str:
        ort = _import_ort()
        opts = self.options
        kind = "onnx_fp16" if opts.precision is Precision.FP16 else "onnx"
        artifact = self._spec.artifact(kind)
        if artifact is None:
            raise InvalidSpecError(f"model {self._spec.key} has no {kind} artifact", code="artifact_absent")
        path = verify_artifact(artifact)
        providers = select_providers(opts.providers, ort.get_available_providers(), cuda_device_count())
        if opts.precision is Precision.FP16 and not any(p in GPU_PROVIDERS for p in providers):
            raise BackendUnavailableError(
                "the fp16 model needs the CUDA or TensorRT provider; this machine offers only "
                f"{providers}. Use precision fp32 here.",
                code="fp16_needs_gpu",
            )
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = opts.intra_op_threads
        session_options.inter_op_num_threads = opts.inter_op_threads
        session_options.log_severity_level = 3
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if not opts.allow_spinning:
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            session_options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(
                str(path), sess_options=session_options, providers=[(p, self._provider_options(p)) for p in providers]
            )
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            raise BackendUnavailableError(f"ONNX Runtime cannot load {path}: {exc}") from exc
        self._providers = list(self._session.get_providers())
        self._check_graph_matches_spec()
        self._io_binding = opts.io_binding if opts.io_binding is not None else self._on_gpu
        self._warm_up()
        log.info("loaded %s on ONNX Runtime with %s", self._spec.key, self._providers)
        return artifact.sha256

    @property
    def _on_gpu(self) -> bool:
        return bool(self._providers) and self._providers[0] in GPU_PROVIDERS

    def _provider_options(self, provider: str) -> dict[str, Any]:
        opts = self.options
        if provider == CUDA:
            return {"device_id": opts.device_id}
        if provider == TENSORRT:
            trt: dict[str, Any] = {"device_id": opts.device_id,
                                   "trt_fp16_enable": opts.precision is Precision.FP16 or opts.tensorrt_fp16}
            trt.update(tensorrt_profile(self._spec, opts.tensorrt_max_batch or self._spec.max_batch_size))
            if opts.tensorrt_cache_dir is not None:
                opts.tensorrt_cache_dir.mkdir(parents=True, exist_ok=True)
                trt.update(trt_engine_cache_enable=True, trt_engine_cache_path=str(opts.tensorrt_cache_dir))
            return trt
        return {}

    def _check_graph_matches_spec(self) -> None:
        graph_inputs = {i.name for i in self._session.get_inputs()}
        graph_outputs = {o.name for o in self._session.get_outputs()}
        spec_inputs = {t.name for t in self._spec.inputs}
        spec_outputs = {t.name for t in self._spec.outputs}
        if graph_inputs != spec_inputs or not spec_outputs <= graph_outputs:
            raise InvalidSpecError(
                f"ONNX graph of {self._spec.key} has inputs {sorted(graph_inputs)} and outputs "
                f"{sorted(graph_outputs)}, but the spec declares inputs {sorted(spec_inputs)} and outputs "
                f"{sorted(spec_outputs)}",
                code="spec_graph_mismatch",
            )

    def _warm_up(self) -> None:
        if self.options.warmup_runs <= 0:
            return
        if any(DYNAMIC in t.shape[1:] for t in self._spec.inputs):
            log.info("skipping warm-up of %s: its inputs have dynamic non-batch dimensions", self._spec.key)
            return
        dummy = {t.name: np.zeros((1, *t.shape[1:]), dtype=t.dtype.numpy) for t in self._spec.inputs}
        for _ in range(self.options.warmup_runs):
            self._run(dummy)

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        names = [t.name for t in self._spec.outputs]
        feeds = {name: as_contiguous(array) for name, array in inputs.items()}
        if not self._io_binding:
            return dict(zip(names, self._session.run(names, feeds), strict=True))
        device = "cuda" if self._on_gpu else "cpu"
        binding = self._session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        for name in names:
            binding.bind_output(name, device, self.options.device_id if self._on_gpu else 0)
        self._session.run_with_iobinding(binding)
        return dict(zip(names, binding.copy_outputs_to_cpu(), strict=True))

    def _close(self) -> None:
        self._session = None

    def _device(self) -> str:
        return f"cuda:{self.options.device_id}" if self._on_gpu else "cpu"

    def _precision(self) -> str:
        return self.options.precision.value

    def _details(self) -> dict[str, str]:
        return {"providers": ",".join(self._providers), "io_binding": str(self._io_binding).lower()}

    def _health(self) -> BackendHealth:
        if self._session is None:
            return BackendHealth(ready=False, reason="no session")
        return BackendHealth(ready=True)
