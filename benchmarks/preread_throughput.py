"""Chest radiograph pre-read speed against the model alone, in one run: DICOM file → every output written, per stage
(read, decode, plausibility gate, preprocess, infer, saliency, write), on ONNX Runtime with the shipped
``chest-xray-demo`` (it ships no torch weights, so the torch backend cannot run it).

    python -m benchmarks.preread_throughput [--images 32] [--size 1024] [--heatmaps off,cam,occlusion]

Rows: the model alone (one image per inference, as the pre-read runs it), then the full pre-read with each heatmap
method (``cam``: class activation maps from the same forward pass; ``occlusion``: 7×7 grid, 49 extra
inferences), each with its share of the model-only throughput. Every output is written: result JSON, FHIR
DiagnosticReport, DICOM SR, and per positive finding the raw map, overlay PNG, secondary capture and Parametric Map.

Inputs are generated 12-bit CR files of ``--size``² pixels (a real CR is about 2k × 2.5k), written once to a
temporary folder. Writes ``benchmarks/results/<device>-<date>-preread-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.reporting import command_line, device_name, stage_table, write_results
from cds.interop.outputs.radiograph import write_preread
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.saliency import HeatmapMethod
from cds.services.preread import RadiographOptions, radiograph_pipeline
from cds.serving.backends import create_backend
from cds.settings import Settings
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

ORT = functools.partial(create_backend, BackendKind.ONNXRUNTIME)


def _model_only(spec: ModelSpec, images: int) -> dict[str, Any]:
    """The model alone: one [1, 1, S, S] input per inference, as the pre-read runs it, after a warm-up."""
    size = int(spec.inputs[0].shape[2])
    batch = {spec.inputs[0].name: np.random.default_rng(0).uniform(-1024, 1024, (1, 1, size, size)).astype(np.float32)}
    with ORT(spec) as backend:
        backend.infer(batch)
        start = time.perf_counter()
        for _ in range(images):
            backend.infer(batch)
        elapsed = time.perf_counter() - start
    return {"run": "model only", "images_per_second": images / elapsed,
            "stage_ms": {"infer_ms": 1000 * elapsed / images}}


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--heatmaps", default="off,cam,occlusion", help="comma-separated heatmap methods to time")
    parser.add_argument("--model", default="chest-xray-demo")
    args = parser.parse_args(argv)
    models = ModelRegistry.from_directory(Settings().registry_dir)
    spec = models.get(args.model)
    rows = [_model_only(spec, args.images)]
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as scratch:
        folder = Path(scratch)
        files = [write_radiograph(folder / f"{i}.dcm", render(args.size, 500, i, prevalence=0.3)[0])
                 for i in range(args.images)]
        for method in (HeatmapMethod(m) for m in args.heatmaps.split(",")):
            with ExitStack() as stack:
                pipeline = radiograph_pipeline(models, spec, stack, backends=ORT,
                                               options=RadiographOptions(heatmaps=method))
                pipeline(read_instance(files[0]))  # warm-up
                stages: dict[str, list[float]] = {}
                positives = 0
                start = time.perf_counter()
                for index, file in enumerate(files):
                    tic = time.perf_counter()
                    instance = read_instance(file)
                    read_ms = (time.perf_counter() - tic) * 1000
                    preread = pipeline(instance)
                    tic = time.perf_counter()
                    write_preread(preread, folder / "out" / f"{method}-{index}", title="benchmark")
                    timings = {"read_ms": read_ms, **preread.stage_ms, "write_ms": (time.perf_counter() - tic) * 1000}
                    for key, value in timings.items():
                        stages.setdefault(key, []).append(value)
                    positives += len(preread.result.positives)
                elapsed = time.perf_counter() - start
                rows.append({"run": f"pre-read, heatmaps {method}", "images_per_second": args.images / elapsed,
                             "positive_findings_per_image": positives / args.images,
                             "stage_ms": {k: float(np.mean(v)) for k, v in stages.items()}})
    for row in rows:
        row["share_of_model_only"] = row["images_per_second"] / rows[0]["images_per_second"]
    device = device_name()
    report = {"device": device, "date": dt.date.today().isoformat(),
              "command": command_line("benchmarks.preread_throughput", argv), "model": spec.key,
              "backend": "onnxruntime (CPUExecutionProvider unless a GPU provider is present)",
              "images": args.images, "image_size": args.size, "results": rows}
    title = f"Pre-read throughput: {spec.key}, {args.images} generated CR files of {args.size}x{args.size}"
    table = stage_table(title, report, rows, "run", "images_per_second") + "\n" + "\n".join(
        [f"- {row['run']}: {row['share_of_model_only']:.0%} of the model-only throughput" for row in rows[1:]]) + "\n"
    write_results("preread-throughput", report, table)


if __name__ == "__main__":
    main()
