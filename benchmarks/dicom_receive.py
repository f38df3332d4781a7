"""Receiving a CT study by C-STORE and by STOW-RS on loopback: seconds, MB/s and the service's peak memory.

    python -m benchmarks.dicom_receive [--slices 500] [--side 512]

Starts ``cds serve --dev`` as a child process (SQLite in a temporary folder, no job workers, so only receiving is
measured) with its DICOM node on; generates an axial CT series of ``--slices`` slices of ``--side`` squared 16-bit
pixels (about 0.5 MiB a slice at 512); sends it once by C-STORE (pynetdicom, one association, the way a modality
sends) and once by STOW-RS (one multipart request streamed from the files), each a new study. Reports per path the
seconds until the last instance was accepted, MB/s, instances/s, and the server's peak resident memory after it
(for C-STORE, after the study settled and was stored)
(``VmHWM``: the high-water mark so far; the goal is flat memory, within twice one instance above the idle
service). Writes ``benchmarks/results/<device>-<date>-dicom-receive.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pydicom
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]

from benchmarks.reporting import command_line, device_name, write_results
from benchmarks.stow_memory import _peak_mib
from cds.serving.triton.launcher import free_port
from training.data.dicom_files import write_ct_series
from training.data.stow_sample import BOUNDARY

MiB = 1 << 20


def _series(folder: Path, slices: int, side: int, seed: int) -> list[Path]:
    rng = np.random.default_rng(seed)
    volume = rng.normal(40.0, 30.0, size=(slices, side, side)).astype(np.float32)
    return write_ct_series(folder, volume, patient_id=f"BENCH-{seed}")


def _c_store(port: int, files: list[Path]) -> None:
    ae = AE(ae_title="BENCH")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="CDS")
    if not assoc.is_established:
        raise RuntimeError("the DICOM node refused the association")
    try:
        for path in files:
            status = assoc.send_c_store(pydicom.dcmread(path))
            if int(status.Status) != 0:
                raise RuntimeError(f"C-STORE status 0x{int(status.Status):04X}")
    finally:
        assoc.release()


def _settled(base: str, token: str, timeout_s: float = 120.0) -> None:
    """Wait until the received study is on the worklist (stored, indexed, its read queued)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        page = httpx.get(base + "/v1/worklist", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
        if page.get("total"):
            return
        time.sleep(0.5)
    raise RuntimeError(f"the received study did not settle in {timeout_s:.0f} s")


def _stow_body(files: list[Path]) -> Iterator[bytes]:
    for path in files:
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        yield path.read_bytes()
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def measure(slices: int, side: int, folder: Path) -> list[dict[str, object]]:
    """Send a ``slices``-slice CT by C-STORE and another by STOW-RS to a fresh service; a row per path."""
    rows: list[dict[str, object]] = []
    port, dicom_port = free_port(), free_port()
    env = os.environ | {"CDS_DATA_DIR": str(folder / "service"), "CDS_JOB_WORKERS": "0",
                        "CDS_DICOM_PORT": str(dicom_port), "CDS_DICOM_CALLING_AES": '["BENCH"]',
                        "CDS_DICOM_SETTLE_S": "2"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "cds.cli.main", "serve", "--dev", "--port", str(port)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        idle = _peak_mib(server.pid)
        token = httpx.post(base + "/v1/dev/token", json={"roles": ["radiologist"]}).json()["access_token"]
        for path_name, seed in (("C-STORE", 1), ("STOW-RS", 2)):
            files = _series(folder / path_name, slices, side, seed)
            size = sum(f.stat().st_size for f in files)
            began = time.perf_counter()
            if path_name == "C-STORE":
                _c_store(dicom_port, files)
                seconds_sent = time.perf_counter() - began
                _settled(base, token)  # the study stored and its read queued: the memory it took counts too
            else:
                answer = httpx.post(base + "/dicomweb/studies", content=_stow_body(files), timeout=600,
                                    headers={"Authorization": f"Bearer {token}", "Content-Type":
                                             f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})
                answer.raise_for_status()
            seconds = seconds_sent if path_name == "C-STORE" else time.perf_counter() - began
            rows.append({"path": path_name, "instances": len(files), "mib": size / MiB, "seconds": seconds,
                         "mb_per_s": size / 1e6 / seconds, "instances_per_s": len(files) / seconds,
                         "instance_mib": size / len(files) / MiB, "peak_rss_mib": _peak_mib(server.pid),
                         "idle_rss_mib": idle})  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
    return rows


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--side", type=int, default=512)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data:
        rows = measure(args.slices, args.side, Path(data))
    for row in rows:
        print(row, file=sys.stderr)
    report: dict[str, object] = {"benchmark": "dicom_receive", "device": device_name(),
                                 "date": dt.date.today().isoformat(),
                                 "command": command_line("benchmarks.dicom_receive", argv), "rows": rows}  # fmt: skip
    lines = [f"# Receiving a CT study ({report['device']}, {report['date']})", f"Command: `{report['command']}`",
             "Server: cds serve --dev (SQLite, no job workers: receiving only) as a child process; the sender on "
             "the same machine over loopback. Peak RSS is the server's high-water mark after each path.", "",
             "| path | instances | MiB | seconds | MB/s | instances/s | MiB per instance | idle RSS MiB | "
             "peak RSS MiB |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    lines += [f"| {r['path']} | {r['instances']} | {r['mib']:.0f} | {r['seconds']:.1f} | {r['mb_per_s']:.1f} | "
              f"{r['instances_per_s']:.0f} | {r['instance_mib']:.2f} | {r['idle_rss_mib']:.0f} | "
              f"{r['peak_rss_mib']:.0f} |" for r in rows]  # fmt: skip
    write_results("dicom-receive", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
