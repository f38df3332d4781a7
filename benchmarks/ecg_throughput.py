"""ECGs per second through the whole ECG path on one CPU core, per stage.

    python -m benchmarks.ecg_throughput [--count 200] [--group 16] [--sampling-hz 500] [--printouts 20]

Generated 10-s 12-lead ECGs (the six rhythms in turn, ``training/data/ecg_signals.py``, seeds ``930_000 + i``) are
written once as WFDB records (16-bit, as carts store them) to a scratch folder, then read the way ``cds ecg`` reads
them: read → lead quality → measurements → rhythm rules and flags → model windows → the rhythm classifier (ONNX
Runtime on one thread, ``--group`` ECGs per backend call) → typed result and FHIR report written to disk. The
printout (PNG and PDF) is timed on its own on ``--printouts`` of them, as it costs more than the rest together.
Torch, NumPy and ONNX Runtime are held to one thread, so the rates are per core. Writes
``benchmarks/results/<device>-<date>-ecg-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reporting import RESULTS, command_line, device_name, write_results
from cds.settings import REPO_ROOT


def _one_thread() -> None:
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    import torch

    torch.set_num_threads(1)


def write_records(folder: Path, count: int, sampling_hz: float) -> list[Path]:
    """``count`` generated ECGs as WFDB records in ``folder``; their ``.hea`` paths."""
    import wfdb

    from cds.pipelines.ecg.record import STANDARD_LEADS
    from cds.results.ecg import RHYTHMS
    from training.data.ecg_signals import generate_ecg

    paths = []
    for index in range(count):
        ecg = generate_ecg(np.random.default_rng(930_000 + index), RHYTHMS[index % len(RHYTHMS)],
                           sampling_hz=sampling_hz, duration_s=10)  # fmt: skip
        name = f"ecg{index:05d}"
        wfdb.wrsamp(name, fs=sampling_hz, units=["mV"] * 12, sig_name=list(STANDARD_LEADS),
                    p_signal=ecg.signals.T.astype(np.float64), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                    baseline=[0] * 12, write_dir=str(folder))  # fmt: skip
        paths.append(folder / f"{name}.hea")
    return paths


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="ECGs read")
    parser.add_argument("--group", type=int, default=16, help="ECGs per backend call")
    parser.add_argument("--sampling-hz", type=float, default=500.0)
    parser.add_argument("--printouts", type=int, default=20, help="ECGs whose printout is timed")
    parser.add_argument("--model", default="ecg-rhythm")
    parser.add_argument("--registry", type=Path, default=REPO_ROOT / "registry")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and Markdown go")
    args = parser.parse_args(argv)
    _one_thread()
    from cds.interop.ecg_printout import render_printout
    from cds.interop.outputs.ecg import write_ecg_outputs
    from cds.models.registry import ModelRegistry
    from cds.pipelines.ecg.pipeline import EcgPipeline
    from cds.serving.backends import create_backend
    from cds.serving.backends.onnxruntime import OnnxRuntimeOptions

    spec = ModelRegistry.from_directory(args.registry).get(args.model)
    options = OnnxRuntimeOptions(providers=("CPUExecutionProvider",), intra_op_threads=1, inter_op_threads=1)
    with tempfile.TemporaryDirectory(prefix="cds-ecg-bench-") as scratch, \
            create_backend("onnxruntime", spec, options) as backend:  # fmt: skip
        folder = Path(scratch)
        (folder / "in").mkdir()
        inputs = write_records(folder / "in", args.count, args.sampling_hz)
        pipeline = EcgPipeline(backend)
        pipeline.read_many([(inputs[0], None, None)])  # warm-up: first call costs lazy initialisation
        stages: dict[str, float] = {}
        outputs_s, analyses = 0.0, []
        tic = time.perf_counter()
        for start in range(0, len(inputs), args.group):
            prepared = [pipeline.prepare(path) for path in inputs[start:start + args.group]]
            for analysis in pipeline.finish(prepared):
                out_tic = time.perf_counter()
                write_ecg_outputs(analysis, folder / "out" / f"{len(analyses):05d}", title="benchmark",
                                  printout=False)  # fmt: skip
                outputs_s += time.perf_counter() - out_tic
                for stage, ms in analysis.result.stage_ms.items():
                    stages[stage] = stages.get(stage, 0.0) + ms
                analyses.append(analysis)
        elapsed = time.perf_counter() - tic
        printouts = []
        for analysis in analyses[: args.printouts]:
            start_printout = time.perf_counter()
            render_printout(analysis, title="benchmark")
            printouts.append(time.perf_counter() - start_printout)
        count = len(analyses)
        per_ecg = {stage: round(ms / count, 3) for stage, ms in stages.items()}
        per_ecg["outputs_ms"] = round(outputs_s * 1000 / count, 3)
        printout_ms = float(np.mean(printouts) * 1000) if printouts else None
        rhythms: dict[str, int] = {}
        for analysis in analyses:
            rhythms[analysis.result.rhythm.label] = rhythms.get(analysis.result.rhythm.label, 0) + 1
    report: dict[str, object] = {
        "device": device_name(), "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.ecg_throughput", argv), "model": spec.key, "threads": 1,
        "count": count, "group": args.group, "sampling_hz": args.sampling_hz, "seconds": round(elapsed, 3),
        "ecgs_per_second": round(count / elapsed, 2), "stage_ms_per_ecg": per_ecg,
        "ecgs_per_second_after_read": round(count / (elapsed - stages.get("read_ms", 0.0) / 1000), 2),
        "printout_ms_per_ecg": None if printout_ms is None else round(printout_ms, 1),
        "ecgs_per_second_with_printout": None if printout_ms is None
        else round(1 / (elapsed / count + printout_ms / 1000), 2),
        "rules_rhythms": rhythms,
    }
    table = "\n".join([
        "# ECG throughput (one core)", "",
        f"Device: {report['device']}; command: `{report['command']}`; model {spec.key}; {count} generated 10-s "
        f"12-lead ECGs at {args.sampling_hz:g} Hz (WFDB), {args.group} per backend call, one thread.", "",
        "| path | ECGs/s |", "| --- | ---: |",
        f"| read → quality → measurements → rules → classifier → result.json + FHIR | {report['ecgs_per_second']} |",
        f"| the same without reading the file (quality → … → outputs: the issue's goal, ≥ 50/s) | "
        f"{report['ecgs_per_second_after_read']} |",
        f"| the same plus the printout (PNG + PDF) | {report['ecgs_per_second_with_printout']} |", "",
        "| stage | ms per ECG (mean) |", "| --- | ---: |",
        *[f"| {stage} | {ms:.2f} |" for stage, ms in per_ecg.items()],
        f"| printout (PNG + PDF, {min(args.printouts, count)} ECGs) | "
        f"{'—' if printout_ms is None else f'{printout_ms:.1f}'} |", "",
        f"Rules' rhythms: {json.dumps(rhythms)}", ""])  # fmt: skip
    write_results("ecg-throughput", report, table, results_dir=args.results)


if __name__ == "__main__":
    main()
