"""The backends the harness measures, what each needs to run here, and the options it runs with.

Every variant goes through :func:`cds.serving.backends.create_backend` with the repository's own option types,
so what is measured is what serving runs:

============== ========================================================================================
torch          eager; fp32 on the CPU, on a GPU ``--gpu-precision`` autocast (fp16/bf16) + channels-last
torch-compiled the same wrapped in ``torch.compile`` (inductor); on a GPU with CUDA graphs
onnxruntime    ONNX Runtime, CPU execution provider
onnxruntime-   ONNX Runtime CUDA execution provider with IO binding; the model's fp16 artifact when it ships
cuda           one and ``--gpu-precision`` is fp16
tensorrt       ONNX Runtime TensorRT execution provider (CUDA for what TensorRT cannot take), IO binding,
               engines cached in ``$TMPDIR/cds-tensorrt-cache``, one optimisation profile over batch
               1..max; fp16 engines (from the fp32 model when no fp16 artifact ships) with ``--gpu-precision fp16``
triton         a real Triton server over HTTP (a local one started for the run, or ``--triton-url``)
============== ========================================================================================
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cds.models.spec import BackendKind, ModelSpec
from cds.serving.backends import BackendOptions, OnnxRuntimeOptions, TorchOptions, TritonOptions
from cds.serving.backends.devices import cuda_device_count
from cds.serving.backends.onnxruntime import CPU, CUDA, TENSORRT, Precision
from cds.serving.backends.torch import TorchPrecision

VARIANTS: dict[str, BackendKind] = {
    "torch": BackendKind.TORCH,
    "torch-compiled": BackendKind.TORCH,
    "onnxruntime": BackendKind.ONNXRUNTIME,
    "onnxruntime-cuda": BackendKind.ONNXRUNTIME,
    "tensorrt": BackendKind.ONNXRUNTIME,
    "triton": BackendKind.TRITON,
}
GPU_VARIANTS = ("onnxruntime-cuda", "tensorrt")
TENSORRT_CACHE = Path(tempfile.gettempdir()) / "cds-tensorrt-cache"


@dataclass(frozen=True)
class Environment:
    """What this machine offers the backends.

    Attributes:
        cuda_devices: CUDA devices the driver sees.
        torch_cuda: Whether the installed torch can use them.
        ort_providers: ONNX Runtime's available execution providers.
        compiler: The C++ compiler ``torch.compile`` needs on the CPU, if any.
        gpu_precision: Reduced precision for the GPU paths (``fp16`` or ``bf16``).
        triton_url: An external Triton server to measure instead of starting a local one.
    """

    cuda_devices: int
    torch_cuda: bool
    ort_providers: tuple[str, ...]
    compiler: str | None
    gpu_precision: str = "fp16"
    triton_url: str | None = None

    @classmethod
    def probe(cls, gpu_precision: str = "fp16", triton_url: str | None = None) -> Environment:
        """Look at this machine."""
        import onnxruntime
        import torch

        return cls(
            cuda_devices=cuda_device_count(),
            torch_cuda=bool(torch.cuda.is_available()),
            ort_providers=tuple(onnxruntime.get_available_providers()),
            compiler=shutil.which("g++") or shutil.which("c++") or shutil.which("clang++"),
            gpu_precision=gpu_precision,
            triton_url=triton_url,
        )

    @property
    def gpu(self) -> bool:
        """Whether torch runs on a GPU here."""
        return self.cuda_devices > 0 and self.torch_cuda


def unavailable(name: str, spec: ModelSpec, env: Environment) -> str | None:
    """Why variant ``name`` cannot run ``spec`` on this machine, or ``None`` when it can."""
    kind = VARIANTS[name]
    if kind is BackendKind.TORCH:
        if spec.artifacts.torch is None:
            return f"{spec.key} ships no torch weights (ONNX only)"
        if name == "torch-compiled" and not env.gpu and env.compiler is None:
            return "torch.compile on the CPU needs a C++ compiler; none found"
    if name in GPU_VARIANTS:
        provider = CUDA if name == "onnxruntime-cuda" else TENSORRT
        if env.cuda_devices == 0:
            return "no CUDA device (the driver reports none)"
        if provider not in env.ort_providers:
            return f"this ONNX Runtime build has no {provider} (available: {', '.join(env.ort_providers)})"
    if kind is BackendKind.TRITON:
        try:
            import tritonclient.http  # noqa: F401
        except ImportError:
            return "tritonclient is not installed"
    return None


def options_for(name: str, spec: ModelSpec, env: Environment, triton_url: str = "") -> BackendOptions:
    """The backend options variant ``name`` runs ``spec`` with on this machine."""
    if VARIANTS[name] is BackendKind.TORCH:
        if not env.gpu:
            return TorchOptions(device="cpu", compile=name == "torch-compiled")
        return TorchOptions(
            device="cuda",
            precision=TorchPrecision(env.gpu_precision),
            channels_last=True,
            compile=name == "torch-compiled",
        )
    if name == "onnxruntime":
        return OnnxRuntimeOptions(providers=(CPU,))
    if name in GPU_VARIANTS:
        fp16 = env.gpu_precision == "fp16" and spec.artifacts.onnx_fp16 is not None
        providers = (CUDA,) if name == "onnxruntime-cuda" else (TENSORRT, CUDA)
        return OnnxRuntimeOptions(
            providers=providers,
            precision=Precision.FP16 if fp16 else Precision.FP32,
            io_binding=True,
            tensorrt_cache_dir=TENSORRT_CACHE if name == "tensorrt" else None,
            tensorrt_fp16=env.gpu_precision == "fp16",  # fp16 engines even from an fp32-only model
        )
    return TritonOptions(url=triton_url)


def not_engaged(name: str, details: dict[str, str]) -> str | None:
    """Why a loaded ONNX Runtime variant does not run on the provider it asked for (it fell back), or ``None``."""
    wanted = {"onnxruntime-cuda": CUDA, "tensorrt": TENSORRT}.get(name)
    providers = details.get("providers", "").split(",")
    if wanted is not None and providers[0] != wanted:
        return f"{wanted} is listed but did not load (the session runs on {', '.join(providers)})"
    return None


@contextlib.contextmanager
def variant_context(name: str, env: Environment) -> Iterator[dict[str, str]]:
    """Process-wide settings a variant needs while it runs; yields notes for its results.

    ``torch-compiled`` on a GPU turns on inductor's CUDA graphs (what ``mode="reduce-overhead"`` does), as
    :class:`TorchOptions` has no compile mode.
    """
    if name != "torch-compiled" or not env.gpu:
        yield {}
        return
    from torch._inductor import config

    previous = config.triton.cudagraphs
    config.triton.cudagraphs = True
    try:
        yield {"cuda_graphs": "true"}
    finally:
        config.triton.cudagraphs = previous


@contextlib.contextmanager
def triton_server(specs: list[ModelSpec], env: Environment, scratch: Path) -> Iterator[dict[str, object]]:
    """A Triton server serving ``specs``; yields its URL and a description.

    With ``env.triton_url`` that server is used as it is (it must already serve the models). Otherwise each
    model is exported with the repository writer into ``scratch`` and a local server is started through the
    repository's launcher, then stopped on exit.
    """
    if env.triton_url:
        yield {"url": env.triton_url, "server": f"external Triton at {env.triton_url}"}
        return
    from cds.serving.triton.launcher import TritonServer
    from cds.serving.triton.repository import TritonRepositoryOptions, export_model_repository, read_model_config

    repository = scratch / "triton-repository"
    configs = {}
    for spec in specs:
        folder = export_model_repository(spec, repository, TritonRepositoryOptions(max_batch_size=spec.max_batch_size))
        config = read_model_config(folder)
        configs[spec.key] = (
            f"max_batch_size {config.max_batch_size}, dynamic batching "
            f"{config.dynamic_batching.max_queue_delay_microseconds} us, "
            f"{sum(g.count for g in config.instance_group)} instance(s)"
        )
    with TritonServer(repository) as server:
        yield {
            "url": server.http_url,
            "server": "local tritonserver of nvidia-pytriton started by cds.serving.triton.launcher: its Python "
            "backend runs each model on ONNX Runtime CPU with pytriton_server.py's default intra-op threads (1)",
            "models": configs,
        }
