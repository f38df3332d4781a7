"""``cds serve --dev`` as a child process on a free loopback port, for benchmarks that measure the service."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator

import httpx

from cds.serving.triton.launcher import free_port


@contextlib.contextmanager
def dev_server(database_url: str | None = None, *, workers: int = 1, **environment: str) -> Iterator[str]:
    """The base URL of a fresh ``cds serve --dev`` (SQLite in a temporary folder, or ``database_url``) with
    ``workers`` processes."""
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = os.environ | {"CDS_DATA_DIR": data} | environment
        if database_url:
            env["CDS_DATABASE_URL"] = database_url
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "cds.cli.main", "serve", "--dev", "--port", str(port), "--workers", str(workers)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            yield base
        finally:
            server.terminate()
            server.wait(30)
