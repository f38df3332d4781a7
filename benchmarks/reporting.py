"""Where and how every benchmark records its results: JSON + Markdown named by device, date and benchmark."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("results")


def device_name() -> str:
    """The GPU's name when torch (or, for a CPU-only torch build, ``nvidia-smi``) sees one, else the CPU model name."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    try:
        query = ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader", "--id=0"]
        gpu = subprocess.run(query, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        if gpu:
            return gpu
    except (OSError, subprocess.SubprocessError):
        pass
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def command_line(module: str, argv: list[str] | None) -> str:
    """The exact command that produced a result."""
    return " ".join([f"python -m {module}", *(argv if argv is not None else sys.argv[1:])])


def write_results(name: str, report: dict[str, object], table: str, *, results_dir: Path = RESULTS) -> Path:
    """Write ``<device>-<date>-<name>.json`` (the report) and ``.md`` (the table), print the table.

    An empty ``name`` gives ``<device>-<date>.{json,md}``. Returns the path without its suffix.
    """
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = results_dir / "-".join(part for part in (slug(str(report["device"])), str(report["date"]), name) if part)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_suffix(".md").write_text(table)
    print(table)
    return stem


def slug(text: str) -> str:
    """Lower-case file-name form of ``text``: runs of other characters become one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")



def stage_table(title: str, report: dict[str, object], rows: list[dict[str, Any]], key: str, rate: str) -> str:
    """Markdown: title, device and command, then per row its ``key``, its ``rate`` and each ``stage_ms`` mean
    (``—`` where a row has no such stage)."""
    stages = list(dict.fromkeys(stage for row in rows for stage in row["stage_ms"]))
    lines = [f"# {title}", "", f"Device: {report['device']}; command: `{report['command']}`", "",
             f"| {key.replace('_', ' ')} | {rate.replace('_per_', '/').replace('_', ' ')} | "
             + " | ".join(f"{s} (mean)" for s in stages) + " |",
             "| --- | --- | " + " | ".join("---" for _ in stages) + " |"]
    lines += [f"| {row[key]} | {row[rate]:.2f} | "
              + " | ".join(f"{row['stage_ms'][s]:.1f}" if s in row["stage_ms"] else "—" for s in stages) + " |"
              for row in rows]
    return "\n".join(lines) + "\n"
