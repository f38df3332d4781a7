"""Measure every requested model on every requested backend: one row per (model, backend, batch size).

A backend that cannot run a model here (absent hardware or provider, no torch weights) becomes a ``skipped``
entry with its reason; a backend that fails while loading for such a reason too (e.g. a provider that is listed
but does not load). Anything else that goes wrong is a ``failed`` entry, and the run's exit status says so.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness.backends import (
    GPU_VARIANTS,
    VARIANTS,
    Environment,
    not_engaged,
    options_for,
    triton_server,
    unavailable,
    variant_context,
)
from benchmarks.harness.flops import device_peak, gflop_per_item
from benchmarks.harness.measure import (
    CudaMemory,
    HostMemory,
    OtherLoad,
    children_rss_mb,
    fixed_shape,
    measure,
    sample_inputs,
)
from cds.errors import BackendUnavailableError, MissingDependencyError
from cds.models.spec import BackendKind, ModelSpec
from cds.serving.backends import create_backend


@dataclass(frozen=True)
class Settings:
    """How each point is measured.

    Attributes:
        batches: Batch sizes, ascending.
        iterations: Timed calls per point (fewer when ``max_seconds`` runs out first).
        warmup: Untimed calls before them.
        max_seconds: Time cap per point (0: none).
        lift_batch_limit: Raise each model's ``max_batch_size`` to the largest batch, so every batch is one engine
            call; otherwise batches above it are skipped (serving would split them into calls of that size).
        command: The exact command line, stored on every row.
        device: The device name the report is filed under (for the fraction-of-peak column).
    """

    batches: tuple[int, ...]
    iterations: int
    warmup: int
    max_seconds: float
    lift_batch_limit: bool
    command: str
    device: str


@dataclass
class Outcome:
    """Rows measured, variants skipped (with reasons), failures, and what the Triton server was."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    triton: dict[str, object] = field(default_factory=dict)


def bench_spec(spec: ModelSpec, settings: Settings) -> ModelSpec:
    """``spec``, with its ``max_batch_size`` raised to the largest batch when ``lift_batch_limit`` is set."""
    largest = max(settings.batches)
    if settings.lift_batch_limit and largest > spec.max_batch_size:
        return spec.model_copy(update={"max_batch_size": largest})
    return spec


def batches_for(spec: ModelSpec, settings: Settings) -> list[int]:
    """The requested batch sizes that ``spec`` runs as one engine call."""
    return [b for b in settings.batches if b <= spec.max_batch_size]


def run_all(specs: list[ModelSpec], variants: list[str], env: Environment, settings: Settings) -> Outcome:
    """Measure ``variants`` × ``specs``; Triton last, with one server for all models."""
    outcome = Outcome()
    runnable = []
    for spec in specs:
        try:
            for tensor in spec.inputs:
                fixed_shape(spec, tensor.shape)
        except ValueError as exc:
            outcome.skipped += [{"model": spec.key, "backend": v, "reason": str(exc)} for v in variants]
            continue
        bench = bench_spec(spec, settings)
        above = [b for b in settings.batches if b > bench.max_batch_size]
        if above:
            reason = (
                f"batch {', '.join(map(str, above))} > the model's max_batch_size {bench.max_batch_size}, which "
                "serving splits into calls of that size (--lift-batch-limit measures them as one engine call)"
            )
            outcome.skipped.append({"model": bench.key, "backend": "all", "reason": reason})
        if len(above) < len(settings.batches):
            runnable.append(bench)
    for spec in runnable:
        for name in (v for v in variants if VARIANTS[v] is not BackendKind.TRITON):
            _run_variant(name, spec, env, settings, outcome, {})
    if "triton" in variants:
        _run_triton(runnable, env, settings, outcome)
    return outcome


def _run_triton(specs: list[ModelSpec], env: Environment, settings: Settings, outcome: Outcome) -> None:
    reason = unavailable("triton", specs[0], env) if specs else None
    if reason is not None or not specs:
        outcome.skipped += [{"model": s.key, "backend": "triton", "reason": str(reason)} for s in specs]
        return
    with tempfile.TemporaryDirectory(prefix="cds-bench-triton-") as scratch:
        try:
            with triton_server(specs, env, Path(scratch)) as server:
                outcome.triton = {**server, "server_rss_mb": children_rss_mb() if not env.triton_url else None}
                for spec in specs:
                    _run_variant("triton", spec, env, settings, outcome, {"url": str(server["url"])})
        except BackendUnavailableError as exc:
            outcome.skipped += [{"model": s.key, "backend": "triton", "reason": f"server: {exc}"} for s in specs]


def _run_variant(
    name: str, spec: ModelSpec, env: Environment, settings: Settings, outcome: Outcome, extra: dict[str, str]
) -> None:
    reason = unavailable(name, spec, env)
    if reason is not None:
        outcome.skipped.append({"model": spec.key, "backend": name, "reason": reason})
        return
    options = options_for(name, spec, env, extra.get("url", ""))
    uses_torch = VARIANTS[name] is BackendKind.TORCH
    on_gpu = (env.gpu and uses_torch) or (name in GPU_VARIANTS and env.cuda_devices > 0)
    memory: HostMemory | CudaMemory = CudaMemory(uses_torch) if on_gpu else HostMemory()
    print(f"{spec.key} on {name}: loading", file=sys.stderr)
    try:
        with variant_context(name, env) as notes:
            memory.set_baseline()
            with create_backend(VARIANTS[name], spec, options) as backend:
                fell_back = not_engaged(name, backend.metadata().details)
                if fell_back:
                    outcome.skipped.append({"model": spec.key, "backend": name, "reason": fell_back})
                    return
                outcome.rows += _points(name, spec, backend, memory, settings, notes)
    except (BackendUnavailableError, MissingDependencyError) as exc:
        outcome.skipped.append({"model": spec.key, "backend": name, "reason": str(exc)})
    except Exception as exc:  # noqa: BLE001 - one failing variant must not lose the others' results
        outcome.failed.append({"model": spec.key, "backend": name, "error": f"{type(exc).__name__}: {exc}"})


def _points(
    name: str, spec: ModelSpec, backend: Any, memory: HostMemory | CudaMemory, settings: Settings,
    notes: dict[str, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per batch size for a loaded backend."""
    rng = np.random.default_rng(0)
    meta = backend.metadata()
    gflop = gflop_per_item(spec.artifacts.onnx.path)
    peak = device_peak(settings.device)
    batches = batches_for(spec, settings)
    load = OtherLoad()
    if name == "tensorrt":  # the smallest and largest shapes first: one engine profile covers every point
        for batch in (batches[0], batches[-1]):
            backend.infer(sample_inputs(spec, batch, rng))
    rows = []
    for batch in batches:
        inputs = sample_inputs(spec, batch, rng)
        memory.reset_peak()
        load.start()
        timing = measure(
            lambda inputs=inputs: backend.infer(inputs), batch, settings.iterations, settings.warmup,
            settings.max_seconds,
        )  # fmt: skip
        row = {
            "model": spec.key, "backend": name, "engine": VARIANTS[name].value, "device": meta.device,
            "precision": meta.precision, "details": {**meta.details, **notes}, "batch": batch,
            "iterations": timing.iterations,
            "warmup": timing.warmup, "seconds": timing.seconds, "items_per_s": timing.items_per_s,
            "p50_ms": timing.p50_ms, "p95_ms": timing.p95_ms, "p99_ms": timing.p99_ms,
            "peak_memory_mb": memory.peak_mb(), "memory": memory.kind, "gflop_per_item": gflop,
            "other_load_cores": load.cores(), "command": settings.command,
        }  # fmt: skip
        row.update(_fraction_of_peak(row, peak))
        rows.append(row)
        print(f"  batch {batch:>4}: {timing.items_per_s:>10.1f} items/s  p50 {timing.p50_ms:.2f} ms", file=sys.stderr)
    return rows


def _fraction_of_peak(row: dict[str, Any], peak: tuple[str, float] | None) -> dict[str, object]:
    """Achieved TFLOP/s and, on a GPU with a known peak, the fraction of its dense fp16 peak."""
    gflop = row["gflop_per_item"]
    if gflop is None:
        return {"tflop_per_s": None, "fraction_of_peak": None}
    tflops = row["items_per_s"] * gflop / 1000
    on_gpu = str(row["device"]).startswith("cuda")
    fraction = tflops / peak[1] if on_gpu and peak is not None else None
    return {"tflop_per_s": tflops, "fraction_of_peak": fraction}
