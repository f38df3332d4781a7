"""What starting decoder processes ahead saves: the first image summary on a new server, and opening a slide.

    python -m benchmarks.decoder_start [--runs 3] [--side 2048] [--no-write]

Each measure is taken with a fresh decoder pool (``cds.pipelines.isolation``) as a new service would have it:
- first radiograph summary (what ``/view`` decodes: four numbers from a ``--side`` square 16-bit film): on a pool
  started on demand (a process spawned, numpy and pydicom imported, then the decode) and on one prestarted
  (``Isolation.prestart``, the service's start-up with ``CDS_DECODE_PRESTART``), then warm;
- opening a generated 8192x6144 pyramidal slide in a process of its own: a fresh process each time, and the spare
  started ahead (``Isolation.keep_spare``).
Writes ``benchmarks/results/<device>-<date>-decoder-start.{json,md}`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pydicom

from benchmarks.reporting import command_line, device_name, write_results
from cds.pipelines import isolation
from cds.pipelines.imaging.dicom_reader import DECODER_MODULES
from cds.pipelines.pathology.isolated_slide import SLIDE_MODULES, open_isolated_slide
from cds.results.jobs import StoredInstance
from cds.serving.ui import sources
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.he_slide import write_slide


def _ms(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _summary_ms(stored: StoredInstance, prestart: bool) -> tuple[float, float]:
    """(first, warm) ms of a film's summary on a new pool, prestarted or not; the summary cache is cleared first."""
    isolation.configure(isolation.IsolationLimits())
    if prestart:
        isolation.isolation().prestart(DECODER_MODULES)
    timings = []
    for _ in range(2):
        sources._radiograph_summary.cache_clear()  # noqa: SLF001 - measure the decode, not the cache
        timings.append(_ms(lambda: sources.radiograph_summary([stored], stored.sop_instance_uid)))
    return timings[0], timings[1]


def _slide_open_ms(path: Path, spare: bool) -> float:
    pool = isolation.isolation()
    if spare:
        while pool._spare is None:  # noqa: SLF001 - wait until the spare is ready, as between two readers' clicks
            time.sleep(0.02)
    start = time.perf_counter()
    slide = open_isolated_slide(path)
    elapsed = (time.perf_counter() - start) * 1000
    slide.close()
    return elapsed


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        film = write_radiograph(Path(folder) / "film.dcm", render(args.side, 3, 0, findings={"Effusion"})[0])
        ds = pydicom.dcmread(film, stop_before_pixels=True)
        stored = StoredInstance(path=film, sop_instance_uid=str(ds.SOPInstanceUID),
                                study_uid=str(ds.StudyInstanceUID))  # fmt: skip
        on_demand = [_summary_ms(stored, prestart=False) for _ in range(args.runs)]
        prestarted = [_summary_ms(stored, prestart=True) for _ in range(args.runs)]
        slide = write_slide(Path(folder) / "slide.tiff", 8192, 6144, seed=1).path
        isolation.configure(isolation.IsolationLimits())
        fresh = [_slide_open_ms(slide, spare=False) for _ in range(args.runs)]
        isolation.isolation().keep_spare(SLIDE_MODULES)
        spared = [_slide_open_ms(slide, spare=True) for _ in range(args.runs)]
        isolation.configure(isolation.IsolationLimits())
    rows = {
        f"first film summary ({args.side}² 16-bit), decoder started on demand": [a for a, _ in on_demand],
        f"first film summary ({args.side}² 16-bit), decoders prestarted": [a for a, _ in prestarted],
        f"film summary ({args.side}² 16-bit), warm decoder": [b for _, b in on_demand + prestarted],
        "open a slide (8192x6144 TIFF), fresh process": fresh,
        "open a slide (8192x6144 TIFF), spare started ahead": spared,
    }
    report: dict[str, object] = {
        "device": device_name(), "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.decoder_start", argv),
        "runs": args.runs, "measures_ms": rows,
    }
    lines = ["# Decoder processes started ahead", "", f"Device: {report['device']}; command: `{report['command']}`",
             "", "| measure | median ms | max ms | n |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {statistics.median(v):.1f} | {max(v):.1f} | {len(v)} |" for name, v in rows.items()]
    table = "\n".join(lines) + "\n"
    if args.no_write:
        print(table)
    else:
        write_results("decoder-start", report, table)
    return report


if __name__ == "__main__":
    main()
