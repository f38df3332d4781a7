"""CT segmentation speed: DICOM series → label volume, per stage (contract, decode, preprocess, infer, postprocess,
write SEG/SR/FHIR/overlay), on ONNX Runtime and, when the model ships torch weights, on torch.

    python -m benchmarks.ct_segmentation_throughput [--series 4] [--backends onnxruntime,torch]

Inputs are generated CT series (``training/data/ct_volumes.py``, seeds no training split uses), written once to a
temporary folder. Writes ``benchmarks/results/<device>-<date>-ct-segmentation-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reporting import command_line, device_name, stage_table, write_results
from cds.interop.outputs.segmentation import write_segmentation
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.imaging.ct_segmentation import CtSegmentationPipeline
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.serving.backends import create_backend
from cds.settings import Settings
from training.data.ct_volumes import generate_case

SEED = 5151


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--backends", default="onnxruntime,torch")
    parser.add_argument("--model", default="ct-organs-demo")
    args = parser.parse_args(argv)
    spec = ModelRegistry.from_directory(Settings().registry_dir).get(args.model)
    kinds = [BackendKind(k) for k in args.backends.split(",")]
    kinds = [k for k in kinds if k is not BackendKind.TORCH or spec.artifacts.torch is not None]
    rows, voxels = [], []
    with tempfile.TemporaryDirectory(prefix="cds-bench-") as scratch:
        folder = Path(scratch)
        series = []
        for i in range(args.series):
            case = generate_case(SEED, i)
            voxels.append(int(case.hounsfield.size))
            series.append(case.write_dicom(folder / f"series-{i}"))
        for kind in kinds:
            with create_backend(kind, spec) as backend:
                pipeline = CtSegmentationPipeline(backend)
                pipeline([read_instance(f) for f in series[0]])  # warm-up
                stages: dict[str, list[float]] = {}
                start = time.perf_counter()
                for index, files in enumerate(series):
                    tic = time.perf_counter()
                    instances = [read_instance(f) for f in files]
                    read_ms = (time.perf_counter() - tic) * 1000
                    segmentation = pipeline(instances)
                    tic = time.perf_counter()
                    write_segmentation(segmentation, instances, folder / "out" / kind.value / str(index),
                                       title="benchmark")
                    timings = {"read_ms": read_ms, **segmentation.stage_ms,
                               "write_ms": (time.perf_counter() - tic) * 1000}
                    for key, value in timings.items():
                        stages.setdefault(key, []).append(value)
                elapsed = time.perf_counter() - start
            rows.append({"backend": kind.value, "series_per_minute": 60 * args.series / elapsed,
                         "stage_ms": {k: float(np.mean(v)) for k, v in stages.items()}})
    device = device_name()
    report = {"device": device, "date": dt.date.today().isoformat(),
              "command": command_line("benchmarks.ct_segmentation_throughput", argv), "model": spec.key,
              "series": args.series, "mean_voxels_per_series": float(np.mean(voxels)), "results": rows}
    table = stage_table(f"CT segmentation throughput: {spec.key}, {args.series} generated series "
                        f"(mean {np.mean(voxels) / 1e6:.2f} M voxels)", report, rows, "backend", "series_per_minute")
    write_results("ct-segmentation-throughput", report, table)


if __name__ == "__main__":
    main()
