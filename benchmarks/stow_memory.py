"""Peak memory of the service while it takes large and hostile STOW-RS bodies, measured from outside.

    python -m benchmarks.stow_memory [--junk-mib 140] [--image-side 5000]

Starts ``cds serve --dev`` (SQLite in a temporary folder, no job workers, so only the upload is measured) on a free
127.0.0.1 port and sends, one request at a time, streamed from a generator: (1) a body of ``--junk-mib`` MiB in
parts over the per-instance cap (dropped as they stream); (2) one real radiograph of ``--image-side`` squared
16-bit pixels (about 50 MiB at 5000); (3) a deflate bomb of about 0.5 MiB that inflates to 512 MiB. After each, the
server's peak resident memory (``VmHWM`` of its process) is read, so each row is the high-water mark so far. Writes
``benchmarks/results/<device>-<date>-stow-memory.{json,md}``.
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

from benchmarks.reporting import command_line, device_name, write_results
from cds.serving.triton.launcher import free_port
from tests.support.poison import deflate_bomb
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY

MiB = 1 << 20
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _peak_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _body(parts: list[Iterator[bytes]]) -> Iterator[bytes]:
    for part in parts:
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        yield from part
        yield b"\r\n"
    yield f"--{BOUNDARY}--\r\n".encode()


def _junk(size: int) -> Iterator[bytes]:
    for start in range(0, size, MiB):
        yield b"\x7f" * min(MiB, size - start)


def _file(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(MiB):
            yield chunk


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junk-mib", type=int, default=140)
    parser.add_argument("--image-side", type=int, default=5000)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as data:
        folder = Path(data)
        image = write_radiograph(folder / "big.dcm", np.random.default_rng(0).random((args.image_side,) * 2))
        bomb = deflate_bomb(folder / "bomb.dcm")
        port = free_port()
        env = os.environ | {"CDS_DATA_DIR": str(folder / "service"), "CDS_JOB_WORKERS": "0"}
        server = subprocess.Popen([sys.executable, "-m", "cds.cli.main", "serve", "--dev", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=300) as client:
                for _ in range(120):
                    try:
                        if client.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        time.sleep(0.5)
                token = client.post("/v1/dev/token", json={"roles": ["radiologist"]}).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}", "Content-Type": CONTENT_TYPE}
                rows.append(("server started", 0.0, "", _peak_mib(server.pid)))
                cases = [
                    (f"{args.junk_mib} MiB in parts over the 64 MiB cap", args.junk_mib,
                     [_junk(args.junk_mib * MiB // 2), _junk(args.junk_mib * MiB - args.junk_mib * MiB // 2)]),
                    (f"a {args.image_side}² 16-bit radiograph", image.stat().st_size / MiB, [_file(image)]),
                    ("a deflate bomb (512 MiB inflated)", bomb.stat().st_size / MiB, [_file(bomb)]),
                ]  # fmt: skip
                for what, size, parts in cases:
                    answer = client.post("/dicomweb/studies", content=_body(parts), headers=headers)
                    rows.append((what, size, str(answer.status_code), _peak_mib(server.pid)))
        finally:
            server.terminate()
            server.wait(30)
    report: dict[str, object] = {
        "device": device_name(), "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.stow_memory", argv),
        "rows": [{"body": w, "body_mib": round(s, 1), "status": c, "server_peak_rss_mib": round(p, 1)}
                 for w, s, c, p in rows],
    }  # fmt: skip
    lines = [f"# STOW-RS memory ({report['device']}, {report['date']})", f"Command: `{report['command']}`", "",
             "| request | body MiB | status | server peak RSS so far, MiB |", "|---|---:|---|---:|"]
    lines += [f"| {w} | {s:.1f} | {c} | {p:.0f} |" for w, s, c, p in rows]
    write_results("stow-memory", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
