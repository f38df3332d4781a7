"""Run the fuzzing harnesses for a while each and report executions, coverage and findings.

``python -m fuzz.run --seconds 60 --seed 1`` (CI, ``make fuzz-smoke``: the same mutations each run, so CI's verdict
does not depend on luck) or ``--seconds 600`` (``make fuzz``, a new seed each run). Each harness gets
its seed corpus written into ``<workdir>/<harness>/corpus`` (libFuzzer adds what it finds there, so later runs
start further), its log in ``fuzz.log``, and any finding (``crash-*``, ``timeout-*``, ``oom-*``) next to them; a
finding belongs in ``fuzz/regressions/<harness>/`` once fixed, where ``tests/fuzz`` replays it. The report, also
written as ``report.json``, gives per harness the executions, executions per second, the coverage libFuzzer counted
(``cov``: edges of the instrumented Python code, ``ft``: features) and the corpus size. Exit status 1 when any
harness found something.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HARNESSES = ("dicom_reader", "slide_reader", "fhir_inputs", "ecg_reader")
HERE = Path(__file__).resolve().parent
DICTIONARIES = {"fhir_inputs": HERE / "fhir.dict"}
_PROGRESS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+))?", re.MULTILINE)
_STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.MULTILINE)


@dataclass
class Outcome:
    """One harness's run."""

    harness: str
    seconds: float
    executions: int
    executions_per_s: int
    coverage: int
    features: int
    corpus: int
    findings: list[str]


def _run(harness: str, seconds: int, workdir: Path, seed: int) -> Outcome:
    from importlib import import_module

    folder = workdir / harness
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, data in import_module(f"fuzz.{harness}").seeds():
        (corpus / f"seed-{name}").write_bytes(data)
    for old in folder.glob("*-*"):
        if old.name.split("-")[0] in ("crash", "timeout", "oom", "leak", "slow"):
            old.unlink()
    command = [sys.executable, "-m", f"fuzz.{harness}", str(corpus), f"-max_total_time={seconds}", "-timeout=5",
               "-rss_limit_mb=3072", "-max_len=131072", "-print_final_stats=1", f"-artifact_prefix={folder}/"]
    if seed:
        command.append(f"-seed={seed}")
    if harness in DICTIONARIES:
        command.append(f"-dict={DICTIONARIES[harness]}")
    start = time.monotonic()
    log = folder / "fuzz.log"
    with log.open("wb") as sink:
        subprocess.run(command, stdout=sink, stderr=subprocess.STDOUT, cwd=HERE.parent, check=False,
                       timeout=seconds + 300)  # fmt: skip
    elapsed = time.monotonic() - start
    text = log.read_text(errors="replace")
    progress = _PROGRESS.findall(text)
    stats = {k: int(v) for k, v in _STAT.findall(text)}
    last = progress[-1] if progress else ("0", "0", "0", "0")
    findings = sorted(p.name for p in folder.iterdir() if p.name.split("-")[0] in ("crash", "timeout", "oom", "leak"))
    return Outcome(harness, round(elapsed, 1), stats.get("number_of_executed_units", int(last[0])),
                   stats.get("average_exec_per_sec", 0), int(last[1]), int(last[2]),
                   len(list(corpus.iterdir())), findings)  # fmt: skip


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("harnesses", nargs="*", help=f"some of {', '.join(HARNESSES)} (default: all)")
    parser.add_argument("--seconds", type=int, default=60, help="fuzzing time per harness")
    parser.add_argument("--workdir", type=Path, default=HERE / "runs")
    parser.add_argument("--seed", type=int, default=0, help="libFuzzer's random seed (0: a new one each run)")
    args = parser.parse_args()
    unknown = sorted(set(args.harnesses) - set(HARNESSES))
    if unknown:
        parser.error(f"no harness {', '.join(unknown)}; there are {', '.join(HARNESSES)}")
    outcomes = []
    for harness in args.harnesses or HARNESSES:
        print(f"fuzzing {harness} for {args.seconds} s ...", flush=True)
        outcome = _run(harness, args.seconds, args.workdir, args.seed)
        outcomes.append(outcome)
        verdict = "no findings" if not outcome.findings else f"FINDINGS: {', '.join(outcome.findings)}"
        print(f"  {outcome.executions:,} executions ({outcome.executions_per_s}/s), cov {outcome.coverage}, "
              f"ft {outcome.features}, corpus {outcome.corpus}: {verdict}", flush=True)
    report = {"seconds_per_harness": args.seconds, "seed": args.seed, "date": time.strftime("%Y-%m-%d %H:%M:%S"),
              "harnesses": [asdict(o) for o in outcomes]}  # fmt: skip
    (args.workdir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if any(o.findings for o in outcomes):
        print(f"findings are in {args.workdir}/<harness>/ (logs in fuzz.log)", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
