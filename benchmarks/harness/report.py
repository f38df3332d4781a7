"""What a harness report records about the machine, and its Markdown form."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

from cds.serving.triton.launcher import REQUIREMENTS

PACKAGES = ("torch", "onnxruntime-gpu", "onnxruntime", "onnx", "numpy", "monai", "tritonclient", "pydicom")
SERVER_PACKAGES = ("nvidia-pytriton", "onnxruntime")


def versions() -> dict[str, str]:
    """Python, the installed engine libraries, and the Triton server environment's pinned ones."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        name, _, pinned = line.partition("==")
        if name.strip().lower().replace("_", "-") in SERVER_PACKAGES and pinned:
            found[f"triton-server:{name.strip()}"] = pinned.strip()
    return found


def host() -> dict[str, object]:
    """CPU model and count, memory, kernel, GPU (when torch sees one), and the load average now."""
    import torch

    info: dict[str, object] = {
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "load_average_1_5_15": list(os.getloadavg()),
    }
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            info["cpu"] = line.split(":", 1)[1].strip()
            break
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {"name": props.name, "memory_gib": round(props.total_memory / 2**30, 1),
                       "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}  # fmt: skip
    return info


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: results table, skipped and failed variants, ratios."""
    settings = report["settings"]
    lines = [
        f"# Inference benchmark: {report['device']}, {report['date']}",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Host: {report['host'].get('cpu', '?')}, {report['host']['cpu_count']} CPUs; load average (1/5/15 min) "
        f"{_load(report['host']['load_average_1_5_15'])} before, {_load(report['load_average_after'])} after",
        f"Versions: {', '.join(f'{k} {v}' for k, v in report['versions'].items())}",
        f"Each point: up to {settings['warmup']} warm-up calls, then {settings['iterations']} timed calls or "
        f"{settings['max_seconds']} s, whichever ends first (the `calls` column). Memory: peak during the point "
        "minus before the backend loaded. Other load: CPU cores that other processes kept busy during the point "
        "(near 0 on a quiet machine).",
        "",
        "| model | backend | device | precision | batch | calls | items/s | p50 ms | p95 ms | p99 ms | peak MiB "
        "| TFLOP/s | % of peak | other load |",
        "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['device']} | {r['precision']} | {r['batch']} | {r['iterations']} "
            f"| {r['items_per_s']:.1f} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f} "
            f"| {_num(r['peak_memory_mb'], '.0f')} | {_num(r['tflop_per_s'], '.3f')} "
            f"| {_num(r['fraction_of_peak'], '.1%')} | {_num(r['other_load_cores'], '.2f')} |"
        )
    if report["peak"]:
        lines += ["", f"Dense fp16 peak of {report['peak']['label']}: {report['peak']['tflops']:.0f} TFLOP/s; "
                  "FLOPs per item counted from the ONNX graph (Conv/Gemm/MatMul)."]  # fmt: skip
    if report["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- {s['model']} on {s['backend']}: {s['reason']}" for s in report["skipped"]]
    if report["failed"]:
        lines += ["", "Failed:", ""] + [f"- {f['model']} on {f['backend']}: {f['error']}" for f in report["failed"]]
    if report.get("triton"):
        lines += ["", f"Triton: {report['triton']['server']}."]
    lines += ["", "## Ratios", "", *_ratio_lines(report["ratios"], report["ratios_skipped"])]
    if report.get("plot"):
        lines += ["", f"![throughput vs batch size]({report['plot']})"]
    return "\n".join(lines) + "\n"


def _ratio_lines(ratios: dict[str, Any], skipped: dict[str, str]) -> list[str]:
    lines = []
    for r in ratios.get("onnxruntime_vs_torch", []):
        lines.append(f"- ONNX Runtime vs torch eager, {r['model']} batch {r['batch']}: **{r['ratio']:.2f}×** "
                     f"({r['onnxruntime_items_per_s']:.1f} vs {r['torch_items_per_s']:.1f} items/s)")  # fmt: skip
    for r in ratios.get("batcher", []):
        lines.append(f"- Micro-batcher, {r['callers']} concurrent callers vs serial batch-1, {r['model']} on "
                     f"{r['backend']}: **{r['ratio']:.2f}×** ({r['batched_items_per_s']:.1f} vs "
                     f"{r['serial_items_per_s']:.1f} items/s; mean batch {r['mean_batch']:.1f}, p50 "
                     f"{r['batched_p50_ms']:.1f} ms vs {r['serial_p50_ms']:.2f} ms){_other(r)}")  # fmt: skip
    for r in ratios.get("triton", []):
        default = r["ratio_vs_default_threads"]
        lines.append(f"- Triton vs in-process ONNX Runtime (1 thread each), {r['model']} batch {r['batch']}: "
                     f"**{r['ratio']:.2f}×** ({r['triton_items_per_s']:.1f} vs "
                     f"{r['in_process_1_thread_items_per_s']:.1f} items/s"
                     + (f"; vs default threads {default:.2f}×)" if default is not None else ")")
                     + _other(r))  # fmt: skip
    e2e = ratios.get("end_to_end")
    if e2e:
        stages = ", ".join(f"{k.removesuffix('_ms')} {v:.1f}" for k, v in e2e["stage_ms"].items())
        lines.append(f"- End-to-end DICOM bytes → findings vs model only, {e2e['model']} batch 1 "
                     f"({e2e['images']} generated CR images of {e2e['image_size']}², saliency off): "
                     f"**{e2e['ratio']:.2f}×** ({e2e['end_to_end_items_per_s']:.2f} vs "
                     f"{e2e['model_only_items_per_s']:.2f} images/s; mean ms per stage: {stages})"
                     + _other(e2e))  # fmt: skip
    lines += [f"- {name}: not measured ({reason})" for name, reason in skipped.items()]
    return lines


def _other(entry: dict[str, Any]) -> str:
    load = entry.get("other_load_cores")
    return "" if load is None else f"; other load {load:.2f} cores"


def _num(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def _load(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)
