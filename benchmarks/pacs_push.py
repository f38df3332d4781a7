"""Pushing results to a PACS: instances/s and MB/s from the outbox to Debian's Orthanc by C-STORE, on loopback.

    python -m benchmarks.pacs_push [--instances 200] [--side 512]

Starts Orthanc (the one the tests use, ``tests/support/orthanc.py``; needs ``apt-get install orthanc
orthanc-dicomweb``), queues ``--instances`` result files (generated 16-bit secondary images of ``--side`` squared
pixels, about 0.5 MiB each at 512) for it in cds's outbox, the way a pre-read does, and runs the delivery loop until
none is left, one association per instance as the loop sends them. Reports seconds, instances/s and MB/s, and
checks that Orthanc holds every instance. Writes ``benchmarks/results/<device>-<date>-pacs-push.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.reporting import command_line, device_name, write_results
from cds.services.delivery import deliver_due
from cds.services.dicom_sender import queue_results
from cds.serving.engine import build_engine
from cds.settings import Settings
from cds.store import outbox
from tests.support.orthanc import orthanc
from training.data.dicom_files import write_radiograph

MiB = 1 << 20


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args(argv)
    if shutil.which("Orthanc") is None:
        sys.exit("needs Debian's Orthanc: apt-get install -y orthanc orthanc-dicomweb")
    with tempfile.TemporaryDirectory() as data:
        folder = Path(data)
        rng = np.random.default_rng(0)
        (folder / "results").mkdir()
        files = [write_radiograph(folder / "results" / f"{i}.dcm", rng.random((args.side, args.side)))
                 for i in range(args.instances)]  # fmt: skip
        size = sum(f.stat().st_size for f in files)
        with orthanc(folder / "orthanc", modalities={}) as pacs:
            engine = build_engine(Settings(data_dir=folder / "cds", dicom_destinations=[{
                "name": "orthanc", "kind": "dimse", "host": "127.0.0.1", "port": pacs.dicom_port,
                "ae_title": pacs.ae_title}]))  # fmt: skip
            engine.database.migrate()
            with engine.database.session() as session:
                queue_results(session, engine.settings, files, study_uid="bench", site="", now=dt.datetime.now(dt.UTC))
            began = time.perf_counter()
            while True:
                deliver_due(engine)
                with engine.database.session() as session:
                    if not outbox.pending(session):
                        break
            seconds = time.perf_counter() - began
            held = len(httpx.get(f"{pacs.url}/instances", timeout=30).json())
            engine.close()
    result = {"instances": len(files), "mib": size / MiB, "seconds": seconds,
              "instances_per_s": len(files) / seconds, "mb_per_s": size / 1e6 / seconds, "orthanc_holds": held}
    print(result, file=sys.stderr)
    report: dict[str, object] = {"benchmark": "pacs_push", "device": device_name(),
                                 "date": dt.date.today().isoformat(),
                                 "command": command_line("benchmarks.pacs_push", argv), "results": result}
    lines = [f"# Pushing results to a PACS ({report['device']}, {report['date']})", f"Command: `{report['command']}`",
             "cds's outbox delivery loop sends the queued results to Debian's Orthanc by C-STORE (one association "
             "per delivery round of up to 50), both on this machine over loopback.", "",
             "| instances | MiB | seconds | instances/s | MB/s | Orthanc holds |",
             "| ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| {len(files)} | {size / MiB:.0f} | {seconds:.1f} | {len(files) / seconds:.1f} "
             f"| {size / 1e6 / seconds:.1f} | {held} |"]  # fmt: skip
    write_results("pacs-push", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
