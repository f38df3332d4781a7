"""Batch runs on Ray against the single-process path: radiograph pre-reads and cohort-file scoring.

    python -m benchmarks.batch_throughput [--images 48] [--files 8] [--rows 250000]

For each workload: the single-process path (``cds preread``'s runner; ``score_file`` in a loop), then
``cds batch`` on a local Ray cluster of one node and of two nodes (a head and a worker raylet; on one machine
they share its cores). Cluster start-up is not timed; everything from listing the inputs to the index is. Writes
``benchmarks/results/<device>-<date>-batch-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.reporting import command_line, device_name, write_results
from cds.batch.preread import PrereadJob, run_preread_batch
from cds.batch.risk import run_risk_batch
from cds.models.registry import ModelRegistry
from cds.models.risk import get_equation
from cds.models.spec import BackendKind
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.risk.cohort_file import score_file
from cds.results.jobs import PrereadReport
from cds.services.preread import PrereadRunner, RadiographOptions
from cds.serving.backends import create_backend
from cds.serving.backends.onnxruntime import OnnxRuntimeOptions
from cds.settings import REPO_ROOT
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

REGISTRY = REPO_ROOT / "registry"


def _films(folder: Path, n: int) -> None:
    for i in range(n):
        pixels, _, sex = render(448, 9000 + i, 3, findings={"Effusion"} if i % 3 == 0 else set())
        write_radiograph(folder / f"cr{i:03d}.dcm", pixels, sex=sex)


def _cohorts(folder: Path, files: int, rows: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(files):
        pd.DataFrame({
            "age": rng.integers(40, 80, rows), "sex": rng.choice(["female", "male"], rows),
            "race": rng.choice(["white", "african_american", "other"], rows),
            "total_cholesterol": rng.uniform(140, 300, rows), "hdl_cholesterol": rng.uniform(25, 90, rows),
            "systolic_bp": rng.uniform(95, 190, rows), "bp_treated": rng.integers(0, 2, rows),
            "smoker": rng.integers(0, 2, rows), "diabetes": rng.integers(0, 2, rows),
        }).to_parquet(folder / f"district{i:02d}.parquet", index=False)  # fmt: skip


def _single_preread(source: Path, output: Path) -> int:
    models = ModelRegistry.from_directory(REGISTRY)
    ort = functools.partial(create_backend, BackendKind.ONNXRUNTIME,
                            options=OnnxRuntimeOptions(providers=("CPUExecutionProvider",)))  # fmt: skip
    report = PrereadReport()
    with PrereadRunner(models, models.get("chest-xray-demo"), None, output, backends=ort,
                       options=RadiographOptions()) as runner:  # fmt: skip
        instances = [read_instance(path, name=str(path)) for path in sorted(source.iterdir())]
        for series in runner.group(instances, report):
            runner.run_series(series, report)
    return len(report.outcomes)


def _single_risk(source: Path, output: Path) -> int:
    output.mkdir(parents=True, exist_ok=True)
    pce = get_equation("pce")
    return sum(score_file(pce, path, output / path.name).rows for path in sorted(source.iterdir()))


def _timed(run: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Measure both workloads on every path and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--rows", type=int, default=250_000)
    args = parser.parse_args(argv)
    import ray
    from ray.cluster_utils import Cluster

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        films, cohorts = root / "films", root / "cohorts"
        films.mkdir()
        cohorts.mkdir()
        _films(films, args.images)
        _cohorts(cohorts, args.files, args.rows)
        seconds, done = _timed(lambda: _single_preread(films, root / "single-preread"))
        rows.append({"workload": "preread", "path": "single process", "nodes": 1, "seconds": seconds, "items": done})
        seconds, scored = _timed(lambda: _single_risk(cohorts, root / "single-risk"))
        rows.append({"workload": "risk", "path": "single process", "nodes": 1, "seconds": seconds, "items": scored})
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": os.cpu_count() or 2,
                                                                "include_dashboard": False})  # fmt: skip
        try:
            for nodes in (1, 2):
                if nodes == 2:
                    cluster.add_node(num_cpus=os.cpu_count() or 2)
                    cluster.wait_for_nodes()
                if not ray.is_initialized():
                    ray.init(address=cluster.address, log_to_driver=False)
                job = PrereadJob(registry=str(REGISTRY))
                target = root / f"ray-preread-{nodes}"
                seconds, summary = _timed(lambda j=job, t=target: run_preread_batch(str(films), str(t), j,
                                                                                    address=cluster.address))
                rows.append({"workload": "preread", "path": "Ray", "nodes": nodes, "seconds": seconds,
                             "items": summary.done})  # type: ignore[attr-defined]
                target = root / f"ray-risk-{nodes}"
                seconds, summary = _timed(lambda t=target: run_risk_batch(str(cohorts), str(t), "pce",
                                                                          address=cluster.address))
                rows.append({"workload": "risk", "path": "Ray", "nodes": nodes, "seconds": seconds,
                             "items": args.files * args.rows if summary.done == args.files else 0})  # type: ignore[attr-defined]
                shutil.rmtree(root / f"ray-preread-{nodes}", ignore_errors=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
    for row in rows:
        row["per_s"] = float(row["items"]) / float(row["seconds"])  # type: ignore[arg-type]
        single = next(r for r in rows if r["workload"] == row["workload"] and r["path"] == "single process")
        row["overhead_vs_single"] = 1 - row["per_s"] / single["per_s"]  # type: ignore[operator]
        print(row, file=sys.stderr)
    report: dict[str, object] = {
        "benchmark": "batch_throughput", "device": device_name(), "cpus": os.cpu_count(),
        "date": dt.date.today().isoformat(), "command": command_line("benchmarks.batch_throughput", argv),
        "results": rows,
    }  # fmt: skip
    lines = [f"# Batch runs on Ray against one process ({report['device']}, {os.cpu_count()} cores, "
             f"{report['date']})",
             f"Command: `{report['command']}`", "",
             f"Pre-read: {args.images} generated chest radiographs (chest-xray-demo, ONNX Runtime on CPU, CAM "
             f"heatmaps, every output written). Risk: {args.files} Parquet files of {args.rows:,} patients, PCE. "
             "Two nodes are two raylets on the same machine, sharing its cores.", "",
             "| workload | path | nodes | seconds | items/s | overhead vs one process |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]  # fmt: skip
    lines += [f"| {r['workload']} | {r['path']} | {r['nodes']} | {r['seconds']:.1f} | {r['per_s']:,.1f} "
              f"| {r['overhead_vs_single']:+.0%} |" for r in rows]  # fmt: skip
    write_results("batch-throughput", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
