"""Risk scoring speed on one core: patients/s per equation over 1M generated patients, single-score latency,
and cohort-file scoring throughput with its peak memory at two file sizes (memory should stay flat).

    python -m benchmarks.risk_throughput [--patients 1000000] [--file-rows 200000,1000000]

Writes ``benchmarks/results/<device>-<date>-risk-throughput.{json,md}``.
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")  # one core, before NumPy loads

import argparse  # noqa: E402 - after the thread limits above
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.reporting import command_line, device_name, write_results
from cds.models.registry import ModelRegistry
from cds.models.risk import RiskEquation, available_equations
from cds.pipelines.risk.equation import EquationPipeline
from cds.pipelines.risk.model import ModelRiskEquation
from cds.serving.backends import OnnxRuntimeBackend, OnnxRuntimeOptions
from cds.settings import Settings


def cohort(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """In-range values for every field any equation or the Pima model takes (PREVENT's add-ons: UACR only, so it
    runs its UACR model; HbA1c and SDI absent)."""
    rng = np.random.default_rng(seed)
    return {
        "age": rng.integers(40, 75, n).astype(float),
        "sex": rng.choice(np.array(["female", "male"]), n),
        "race": rng.choice(np.array(["white", "african_american", "other"]), n),
        "total_cholesterol": rng.uniform(140, 300, n),
        "hdl_cholesterol": rng.uniform(25, 90, n),
        "systolic_bp": rng.uniform(95, 190, n),
        "diastolic_bp": rng.uniform(55, 110, n),
        "bp_treated": rng.integers(0, 2, n).astype(float),
        "smoker": rng.integers(0, 2, n).astype(float),
        "diabetes": rng.integers(0, 2, n).astype(float),
        "bmi": rng.uniform(19, 39.5, n),
        "waist_cm": rng.uniform(65, 130, n),
        "physically_active": rng.integers(0, 2, n).astype(float),
        "daily_vegetables": rng.integers(0, 2, n).astype(float),
        "high_glucose_history": rng.integers(0, 2, n).astype(float),
        "family_history": rng.choice(np.array(["none", "second_degree", "first_degree"]), n),
        "creatinine": rng.uniform(0.5, 3.0, n),
        "egfr": rng.uniform(20, 140, n),
        "statin": rng.integers(0, 2, n).astype(float),
        "uacr": rng.uniform(2, 600, n),
        "npreg": rng.integers(0, 10, n).astype(float),
        "glu": rng.uniform(60, 195, n),
        "bp": rng.uniform(40, 105, n),
        "skin": rng.uniform(8, 60, n),
        "ped": rng.uniform(0.1, 2.0, n),
        "respiratory_rate": rng.uniform(8, 30, n),
        "spo2": rng.uniform(85, 100, n),
        "on_oxygen": rng.integers(0, 2, n).astype(float),
        "heart_rate": rng.uniform(40, 140, n),
        "consciousness": rng.choice(np.array(["alert", "confusion", "voice", "pain", "unresponsive"]), n),
        "temperature": rng.uniform(35, 40, n),
        "altered_mentation": rng.integers(0, 2, n).astype(float),
    }


def throughput(equation: RiskEquation, data: dict[str, np.ndarray], repeats: int) -> dict[str, float]:
    """Best and median patients/s of ``equation.evaluate`` over the whole cohort."""
    columns = {f.name: data[f.name] for f in equation.fields if f.required or f.name in data}
    n = len(next(iter(columns.values())))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        output = equation.evaluate(columns)
        times.append(time.perf_counter() - start)
    assert np.isfinite(output.score).mean() > 0.9  # the generated cohort is in range
    return {"patients": n, "best_patients_per_s": n / min(times), "median_patients_per_s": n / float(np.median(times))}


def latency(equation: RiskEquation, data: dict[str, np.ndarray], calls: int, method=None) -> dict[str, float]:  # noqa: ANN001
    """p50/p99 of one patient through the full pipeline (validation, score, contributions, typed result)."""
    pipeline = EquationPipeline(equation, method)
    patients = [{f.name: data[f.name][i].item() for f in equation.fields if f.required or f.name in data}
                for i in range(calls)]
    for patient in patients[:20]:
        pipeline(patient)
    samples = []
    for patient in patients:
        start = time.perf_counter()
        pipeline(patient)
        samples.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}


def file_scoring(rows: int, folder: Path) -> dict[str, float]:
    """Score a generated CSV of ``rows`` patients with PCE in a fresh process; time and peak RSS.

    Peak RSS is the child's own VmHWM: ``ru_maxrss`` would carry over the parent's high-water mark across exec.
    """
    source = folder / f"cohort-{rows}.csv"
    data = cohort(rows, seed=1)
    pd.DataFrame({k: data[k] for k in available_equations()["pce"].field_names()}).to_csv(source, index=False)
    code = (
        "import time; from pathlib import Path; from cds.models.risk import get_equation;"
        "from cds.pipelines.risk.cohort_file import score_file; t = time.perf_counter();"
        f"s = score_file(get_equation('pce'), Path('{source}'), Path('{folder}/out-{rows}.parquet'));"
        "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0];"
        "print(s.rows, time.perf_counter() - t, hwm)"
    )
    printed = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    scored, seconds, max_rss_kb = printed.split()
    return {"rows": int(scored), "seconds": float(seconds), "rows_per_s": int(scored) / float(seconds),
            "peak_rss_mib": int(max_rss_kb) / 1024, "csv_mib": source.stat().st_size / 2**20}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run every measurement and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=1000)
    parser.add_argument("--file-rows", default="200000,1000000", help="comma-separated cohort-file sizes")
    args = parser.parse_args(argv)
    data = cohort(args.patients)
    younger = data | {"age": np.random.default_rng(3).integers(30, 60, args.patients).astype(float)}
    results: dict[str, dict[str, float]] = {}
    for name, equation in available_equations().items():
        ages = younger if name.endswith("_30y") else data  # the 30-year models are validated in ages 30-59
        results[name] = throughput(equation, ages, args.repeats) | latency(equation, ages, args.latency_calls)
        print(f"{name:<16} {results[name]['best_patients_per_s']:>12,.0f} patients/s", file=sys.stderr)
    spec = ModelRegistry.from_directory(Settings().registry_dir).get("pima-diabetes-lr")
    with OnnxRuntimeBackend(spec, OnnxRuntimeOptions(intra_op_threads=1, inter_op_threads=1)) as backend:
        model = ModelRiskEquation(backend)
        adults = data | {"age": np.random.default_rng(2).integers(21, 63, args.patients).astype(float)}
        results["pima-diabetes-lr (ONNX Runtime)"] = throughput(model, adults, args.repeats) | latency(
            model, adults, args.latency_calls, model.method()
        )
    files = []
    with tempfile.TemporaryDirectory() as folder:
        for rows in (int(r) for r in args.file_rows.split(",")):
            files.append(file_scoring(rows, Path(folder)))
            print(f"score-file {rows} rows: {files[-1]}", file=sys.stderr)
    report: dict[str, object] = {
        "benchmark": "risk_throughput",
        "device": device_name(),
        "threads": 1,
        "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.risk_throughput", argv),
        "equations": results,
        "score_file_pce": files,
    }
    lines = [
        f"# Risk scoring on one core ({report['device']}, {report['date']})",
        f"Command: `{report['command']}`",
        "",
        f"| method | patients | patients/s (best of {args.repeats}) | single score p50 ms | p99 ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {r['patients']:,} | {r['best_patients_per_s']:,.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} |"
        for name, r in results.items()
    ]
    lines += ["", "`cds risk score-file pce` (CSV in, Parquet out, 100,000-row chunks, fresh process):", ""]
    lines += ["| rows | CSV MiB | seconds | rows/s | peak RSS MiB |", "| ---: | ---: | ---: | ---: | ---: |"]
    lines += [
        f"| {f['rows']:,} | {f['csv_mib']:.0f} | {f['seconds']:.1f} | {f['rows_per_s']:,.0f} "
        f"| {f['peak_rss_mib']:.0f} |"
        for f in files
    ]
    write_results("risk-throughput", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
