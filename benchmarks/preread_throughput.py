"""Chest radiograph pre-read speed: DICOM file → result, per stage (read, decode, plausibility gate, preprocess,
infer, saliency, write), on ONNX Runtime with the shipped ``chest-xray-demo`` (it ships no torch weights, so the
torch backend cannot run it).

    python -m benchmarks.preread_throughput [--images 32] [--size 1024] [--saliency-grid 0,7]

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

import numpy as np

from benchmarks.reporting import command_line, device_name, stage_table, write_results
from cds.interop.outputs.radiograph import write_preread
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.services.preread import radiograph_pipeline
from cds.serving.backends import create_backend
from cds.settings import Settings
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

ORT = functools.partial(create_backend, BackendKind.ONNXRUNTIME)


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--saliency-grid", default="0,7", help="comma-separated occlusion grids to time")
    parser.add_argument("--model", default="chest-xray-demo")
    args = parser.parse_args(argv)
    models = ModelRegistry.from_directory(Settings().registry_dir)
    spec = models.get(args.model)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as scratch:
        folder = Path(scratch)
        files = [write_radiograph(folder / f"{i}.dcm", render(args.size, 500, i)[0]) for i in range(args.images)]
        for grid in (int(g) for g in args.saliency_grid.split(",")):
            with ExitStack() as stack:
                pipeline = radiograph_pipeline(models, spec, stack, saliency_grid=grid, backends=ORT)
                pipeline(read_instance(files[0]))  # warm-up
                stages: dict[str, list[float]] = {}
                start = time.perf_counter()
                for index, file in enumerate(files):
                    tic = time.perf_counter()
                    instance = read_instance(file)
                    read_ms = (time.perf_counter() - tic) * 1000
                    preread = pipeline(instance)
                    tic = time.perf_counter()
                    write_preread(preread, folder / "out" / str(index), title="benchmark")
                    timings = {"read_ms": read_ms, **preread.stage_ms, "write_ms": (time.perf_counter() - tic) * 1000}
                    for key, value in timings.items():
                        stages.setdefault(key, []).append(value)
                elapsed = time.perf_counter() - start
                rows.append({"saliency_grid": grid, "images_per_second": args.images / elapsed,
                             "stage_ms": {k: float(np.mean(v)) for k, v in stages.items()}})
    device = device_name()
    report = {"device": device, "date": dt.date.today().isoformat(),
              "command": command_line("benchmarks.preread_throughput", argv), "model": spec.key,
              "backend": "onnxruntime (CPUExecutionProvider unless a GPU provider is present)",
              "images": args.images, "image_size": args.size, "results": rows}
    title = f"Pre-read throughput: {spec.key}, {args.images} generated CR files of {args.size}x{args.size}"
    table = stage_table(title, report, rows, "saliency_grid", "images_per_second")
    write_results("preread-throughput", report, table)


if __name__ == "__main__":
    main()
