"""The four ratios of one run: ONNX Runtime vs torch eager, micro-batcher vs serial batch-1, Triton vs in-process
ONNX Runtime, and end-to-end DICOM → result vs model-only.

The first and third read the rows the run measured (and the third adds an in-process run with the server's
thread count, so that only serving differs); the batcher and end-to-end ratios measure for themselves.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness.backends import Environment, options_for
from benchmarks.harness.batcher import BatcherOptions, MicroBatcher
from benchmarks.harness.measure import OtherLoad, measure, sample_inputs
from benchmarks.harness.runner import Settings, bench_spec
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.serving.backends import OnnxRuntimeOptions, create_backend
from cds.serving.backends.onnxruntime import CPU

NAMES = ("onnxruntime-vs-torch", "batcher", "triton", "end-to-end")
DICOM_SEED = 500  # generated radiographs for the end-to-end ratio (training uses other seeds)


def onnxruntime_vs_torch(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and batch: ONNX Runtime items/s ÷ torch eager items/s, both on the same device kind."""
    by_key = {(r["model"], r["backend"], r["batch"]): r for r in rows}
    found = []
    for (model, backend, batch), torch_row in by_key.items():
        if backend != "torch":
            continue
        ort_name = "onnxruntime-cuda" if str(torch_row["device"]).startswith("cuda") else "onnxruntime"
        ort_row = by_key.get((model, ort_name, batch))
        if ort_row is not None:
            found.append({"model": model, "batch": batch, "onnxruntime": ort_name,
                          "onnxruntime_items_per_s": ort_row["items_per_s"],
                          "torch_items_per_s": torch_row["items_per_s"],
                          "ratio": ort_row["items_per_s"] / torch_row["items_per_s"]})  # fmt: skip
    return found


def batcher_gain(spec: ModelSpec, env: Environment, settings: Settings, callers: int, requests: int) -> dict[str, Any]:
    """Batch-1 requests from ``callers`` concurrent asyncio callers through :class:`MicroBatcher` vs serial calls.

    Both sides run the same in-process ONNX Runtime backend (CUDA when present) on the same single item; each
    side stops at ``requests`` requests or ``settings.max_seconds``, whichever comes first.
    """
    name = "onnxruntime-cuda" if env.gpu and "CUDAExecutionProvider" in env.ort_providers else "onnxruntime"
    item = sample_inputs(spec, 1, np.random.default_rng(1))
    load = OtherLoad()
    load.start()
    with create_backend(BackendKind.ONNXRUNTIME, spec, options_for(name, spec, env)) as backend:
        serial = measure(lambda: backend.infer(item), 1, requests, settings.warmup, settings.max_seconds)
        options = BatcherOptions()
        batched = asyncio.run(_concurrent(backend, item, callers, requests, settings.max_seconds, options))
    return {"model": spec.key, "backend": name, "callers": callers, "batcher": {
        "max_batch_size": min(options.max_batch_size, spec.max_batch_size), "max_delay_ms": options.max_delay_s * 1000},
        "serial_requests": serial.iterations, "serial_items_per_s": serial.items_per_s, "serial_p50_ms": serial.p50_ms,
        **batched, "ratio": batched["batched_items_per_s"] / serial.items_per_s,
        "other_load_cores": load.cores()}  # fmt: skip


async def _concurrent(
    backend: Any, item: dict[str, np.ndarray], callers: int, requests: int, max_seconds: float, options: BatcherOptions
) -> dict[str, Any]:
    latencies: list[float] = []
    async with MicroBatcher(backend, options) as batcher:
        await asyncio.gather(*(batcher.infer(item) for _ in range(callers)))  # warm-up: one full round
        calls_before = batcher.stats.backend_calls
        deadline = time.perf_counter() + max_seconds if max_seconds > 0 else math.inf
        budget = iter(range(max(requests, callers)))

        async def caller() -> None:
            while time.perf_counter() < deadline and next(budget, None) is not None:
                tic = time.perf_counter()
                await batcher.infer(item)
                latencies.append(time.perf_counter() - tic)

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - start
        calls = batcher.stats.backend_calls - calls_before
    ms = np.array(latencies) * 1000
    return {"batched_requests": len(latencies), "batched_items_per_s": len(latencies) / elapsed,
            "batched_p50_ms": float(np.percentile(ms, 50)), "batched_p99_ms": float(np.percentile(ms, 99)),
            "backend_calls": calls, "mean_batch": len(latencies) / max(calls, 1)}  # fmt: skip


def triton_overhead(rows: list[dict[str, Any]], specs: list[ModelSpec], settings: Settings) -> list[dict[str, Any]]:
    """Per model and batch: Triton items/s ÷ in-process ONNX Runtime items/s.

    ``ratio`` compares with an in-process session on one intra-op thread, as the local server runs its
    sessions, so only serving differs (HTTP, serialisation, the server's batcher and Python backend);
    ``ratio_vs_default_threads`` compares with the run's ``onnxruntime`` row (ONNX Runtime's default threads).
    """
    by_key = {(r["model"], r["backend"], r["batch"]): r for r in rows}
    found = []
    for spec in (bench_spec(s, settings) for s in specs):
        batches = [b for b in settings.batches if (spec.key, "triton", b) in by_key]
        if not batches:
            continue
        options = OnnxRuntimeOptions(providers=(CPU,), intra_op_threads=1, inter_op_threads=1)
        rng = np.random.default_rng(2)
        with create_backend(BackendKind.ONNXRUNTIME, spec, options) as backend:
            for batch in batches:
                inputs = sample_inputs(spec, batch, rng)
                load = OtherLoad()
                load.start()
                one = measure(lambda inputs=inputs: backend.infer(inputs), batch, settings.iterations,
                              settings.warmup, settings.max_seconds)  # fmt: skip
                triton = by_key[(spec.key, "triton", batch)]["items_per_s"]
                default = by_key.get((spec.key, "onnxruntime", batch))
                versus_default = triton / default["items_per_s"] if default else None
                found.append({"model": spec.key, "batch": batch, "triton_items_per_s": triton,
                              "in_process_1_thread_items_per_s": one.items_per_s, "ratio": triton / one.items_per_s,
                              "ratio_vs_default_threads": versus_default,
                              "other_load_cores": load.cores()})  # fmt: skip
    return found


def end_to_end(models: ModelRegistry, spec: ModelSpec, settings: Settings, images: int, size: int) -> dict[str, Any]:
    """Chest pre-read from DICOM bytes to findings (saliency off) vs the same model alone at batch 1.

    ``images`` generated CR files of ``size``² pixels (``training.data``) are read from memory through
    :func:`cds.pipelines.imaging.dicom_reader.read_instance` and the pipeline that
    :func:`cds.services.preread.radiograph_pipeline` builds (contract check, decode, plausibility gate,
    preprocess, infer, postprocess). The model-only figure is the same backend (default ONNX Runtime options,
    as the pipeline uses) on one random valid input per call.
    """
    from cds.pipelines.imaging.dicom_reader import read_instance
    from cds.pipelines.imaging.saliency import HeatmapMethod
    from cds.services.preread import RadiographOptions, radiograph_pipeline
    from training.data.chest_xray import render
    from training.data.dicom_files import write_radiograph

    with tempfile.TemporaryDirectory(prefix="cds-bench-dicom-") as scratch:
        data = [write_radiograph(Path(scratch) / f"{i}.dcm", render(size, DICOM_SEED, i)[0]).read_bytes()
                for i in range(images)]  # fmt: skip
    stages: list[dict[str, float]] = []
    files = itertools.cycle(enumerate(data))

    def one() -> None:
        index, raw = next(files)
        stages.append(pipeline(read_instance(raw, name=f"{index}.dcm")).stage_ms)

    load = OtherLoad()
    load.start()
    with ExitStack() as stack:
        pipeline = radiograph_pipeline(models, spec, stack, options=RadiographOptions(heatmaps=HeatmapMethod.OFF),
                                       backends=functools.partial(create_backend, BackendKind.ONNXRUNTIME))
        providers = pipeline.backend.metadata().details.get("providers", "")
        full = measure(one, 1, images, max(1, settings.warmup), settings.max_seconds)
    timed = stages[-full.iterations :]
    item = sample_inputs(spec, 1, np.random.default_rng(3))
    with create_backend(BackendKind.ONNXRUNTIME, spec) as backend:
        alone = measure(lambda: backend.infer(item), 1, settings.iterations, settings.warmup, settings.max_seconds)
    return {"model": spec.key, "providers": providers, "images": full.iterations, "image_size": size,
            "end_to_end_items_per_s": full.items_per_s, "end_to_end_p50_ms": full.p50_ms,
            "model_only_items_per_s": alone.items_per_s, "model_only_p50_ms": alone.p50_ms,
            "ratio": full.items_per_s / alone.items_per_s, "other_load_cores": load.cores(),
            "stage_ms": {k: float(np.mean([s.get(k, 0.0) for s in timed])) for k in timed[0]}}  # fmt: skip
