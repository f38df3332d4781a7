"""Waiting for a durable job through the API, as a client would."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient


def wait_for_job(client: TestClient, location: str, headers: dict[str, str], timeout_s: float = 180) -> dict[str, Any]:
    """Poll ``location`` until the job is done or failed; its last status."""
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = client.get(location, headers=headers).json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"job at {location} not finished after {timeout_s} s: {status}")
