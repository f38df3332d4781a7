"""``python -m benchmarks run``: every shipped model on every backend present, plus the four ratios.

    python -m benchmarks run [--models a,b] [--backends torch,onnxruntime,...] [--batch 1,8,32,128]
                             [--iterations 50] [--warmup 5] [--max-seconds 30] [--results-dir DIR]

Writes ``<results-dir>/<device>-<date>.json`` (every row names the device, library versions and this command),
``.md`` (the table and ratios) and ``.png`` (throughput vs batch size per backend, one panel per model). Backends
that cannot run here (no GPU, no TensorRT, no torch weights for a model) are listed as skipped with the reason.
The exit status is 1 when a backend failed for another reason, 0 otherwise; nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from benchmarks.harness import ratios
from benchmarks.harness.backends import VARIANTS, Environment
from benchmarks.harness.flops import device_peak
from benchmarks.harness.plot import plot_throughput
from benchmarks.harness.report import host, markdown, versions
from benchmarks.harness.runner import Settings, run_all
from benchmarks.reporting import RESULTS, command_line, device_name, slug, write_results
from cds.errors import CdsError
from cds.models.registry import ModelRegistry
from cds.models.spec import ModelSpec
from cds.settings import Settings as CdsSettings


def parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    top = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="measure models × backends × batch sizes, and the ratios")
    run.add_argument("--models", default="", help="comma-separated name or name:version (default: every model)")
    run.add_argument("--backends", default=",".join(VARIANTS), help=f"comma-separated, from {', '.join(VARIANTS)}")
    run.add_argument("--batch", default="1,8,32,128", help="comma-separated batch sizes")
    run.add_argument("--iterations", type=int, default=50, help="timed calls per point")
    run.add_argument("--warmup", type=int, default=5, help="untimed calls before them")
    run.add_argument("--max-seconds", type=float, default=30.0, help="time cap per point (0: none)")
    run.add_argument(
        "--lift-batch-limit",
        action="store_true",
        help="raise each model's max_batch_size to the largest --batch (one engine call per batch)",
    )
    run.add_argument("--gpu-precision", choices=("fp16", "bf16"), default="fp16", help="reduced precision on GPUs")
    run.add_argument("--triton-url", default=None, help="measure this running Triton (HTTP host:port) instead "
                     "of starting a local one; it must serve the models")  # fmt: skip
    run.add_argument("--ratios", default=",".join(ratios.NAMES), help=f"subset of {', '.join(ratios.NAMES)}, "
                     "or none")  # fmt: skip
    run.add_argument("--callers", type=int, default=64, help="concurrent callers for the batcher ratio")
    run.add_argument("--batcher-requests", type=int, default=1024, help="requests per side of the batcher ratio")
    run.add_argument("--e2e-model", default="chest-xray-demo", help="radiograph model of the end-to-end ratio")
    run.add_argument("--e2e-images", type=int, default=16, help="generated CR files for the end-to-end ratio")
    run.add_argument("--e2e-size", type=int, default=1024, help="their rows and columns")
    run.add_argument("--results-dir", type=os.path.abspath, default=str(RESULTS), help="where results go")
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the command; return the exit status."""
    args = parser().parse_args(argv)
    registry = ModelRegistry.from_directory(CdsSettings().registry_dir)
    names = [n for n in args.models.split(",") if n] or registry.names()
    try:
        specs = [registry.get(*n.split(":", 1)) for n in names]
    except CdsError as exc:
        raise SystemExit(str(exc)) from exc
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in VARIANTS] + [
        r for r in args.ratios.split(",") if r and r != "none" and r not in ratios.NAMES
    ]
    if unknown:
        raise SystemExit(f"unknown backends or ratios {unknown}; backends: {list(VARIANTS)}, ratios: {ratios.NAMES}")
    device = device_name()
    settings = Settings(batches=tuple(sorted({int(b) for b in args.batch.split(",")})), iterations=args.iterations,
                        warmup=args.warmup, max_seconds=args.max_seconds, lift_batch_limit=args.lift_batch_limit,
                        command=command_line("benchmarks", argv), device=device)  # fmt: skip
    env = Environment.probe(args.gpu_precision, args.triton_url)
    report: dict[str, Any] = {
        "benchmark": "harness", "device": device, "date": dt.date.today().isoformat(), "command": settings.command,
        "versions": versions(), "host": host(),
        "environment": {"cuda_devices": env.cuda_devices, "torch_cuda": env.torch_cuda,
                        "onnxruntime_providers": list(env.ort_providers), "gpu_precision": env.gpu_precision},
        "settings": {"batches": list(settings.batches), "iterations": settings.iterations, "warmup": settings.warmup,
                     "max_seconds": settings.max_seconds, "lift_batch_limit": settings.lift_batch_limit},
    }  # fmt: skip
    peak = device_peak(device)
    report["peak"] = {"label": peak[0], "tflops": peak[1]} if peak else None
    outcome = run_all(specs, backends, env, settings)
    report.update(results=outcome.rows, skipped=outcome.skipped, failed=outcome.failed, triton=outcome.triton)
    report["ratios"], report["ratios_skipped"] = _ratios(args, registry, specs, env, settings, outcome.rows)
    report["load_average_after"] = list(os.getloadavg())
    stem = f"{slug(device)}-{report['date']}"
    report["plot"] = _plot(outcome.rows, args.results_dir, stem, f"{device}, {report['date']}: {settings.command}")
    write_results("", report, markdown(report), results_dir=Path(args.results_dir))
    return 1 if outcome.failed else 0


def _ratios(args: argparse.Namespace, registry: ModelRegistry, specs: list[ModelSpec], env: Environment,
            settings: Settings, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    wanted = {r for r in args.ratios.split(",") if r in ratios.NAMES}
    found: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if "onnxruntime-vs-torch" in wanted:
        found["onnxruntime_vs_torch"] = ratios.onnxruntime_vs_torch(rows)
        if not found["onnxruntime_vs_torch"]:
            skipped["onnxruntime-vs-torch"] = "no model was measured on both torch and ONNX Runtime"
    if "batcher" in wanted:
        measured = {r["model"] for r in rows}
        found["batcher"] = [ratios.batcher_gain(s, env, settings, args.callers, args.batcher_requests)
                            for s in specs if s.key in measured]  # fmt: skip
        if not found["batcher"]:
            skipped["batcher"] = "no model was measured in this run"
    if "triton" in wanted:
        found["triton"] = ratios.triton_overhead(rows, specs, settings)
        if not found["triton"]:
            skipped["triton"] = "no Triton rows in this run (add triton to --backends)"
    if "end-to-end" in wanted:
        try:
            found["end_to_end"] = ratios.end_to_end(
                registry, registry.get(args.e2e_model), settings, args.e2e_images, args.e2e_size
            )
        except CdsError as exc:
            skipped["end-to-end"] = f"{type(exc).__name__}: {exc}"
    return {k: v for k, v in found.items() if v}, skipped


def _plot(rows: list[dict[str, Any]], results_dir: str, stem: str, title: str) -> str | None:
    if not rows:
        return None
    try:
        path = plot_throughput(rows, Path(results_dir) / f"{stem}.png", title)
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    return path.name
