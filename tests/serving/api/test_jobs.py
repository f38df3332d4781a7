"""Durable jobs: cohort scoring in the background, exactly-once completion, retries, restart survival."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from cds.serving.triton.launcher import free_port
from cds.serving.worker import JobWorker
from cds.store import jobs
from cds.store.db import Database
from tests.pipelines.test_risk_file import cohort
from tests.serving.api.conftest import bearer


def wait_done(client: TestClient, job_id: str, headers: dict, timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if status["state"] in ("done", "failed"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished: {status}")


def test_cohort_job_end_to_end(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    csv = cohort(120).to_csv(index=False).encode()
    submitted = client.post("/v1/risk/pce/jobs", content=csv, headers=headers | {"Content-Type": "text/csv"})
    assert submitted.status_code == 202 and submitted.headers["Location"].endswith(submitted.json()["job_id"])
    status = wait_done(client, submitted.json()["job_id"], headers)
    assert status["state"] == "done" and status["attempts"] == 1
    assert status["result"]["rows"] == 120 and status["result"]["errors"] == 3
    download = client.get(f"/v1/jobs/{status['id']}/result", headers=headers)
    scored = pd.read_parquet(__import__("io").BytesIO(download.content))
    assert len(scored) == 120 and set(scored["status"]) <= {"scored", "out_of_range", "error"}


def test_job_requests_are_checked(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    assert client.post("/v1/risk/nope/jobs", content=b"a", headers=headers | {"Content-Type": "text/csv"}).status_code == 404
    wrong_type = client.post("/v1/risk/pce/jobs", content=b"{}", headers=headers | {"Content-Type": "application/json"})
    assert wrong_type.status_code == 415 and wrong_type.json()["code"] == "unsupported_media_type"
    assert client.get("/v1/jobs/unknown", headers=headers).status_code == 404
    assert client.post("/v1/risk/pce/jobs", content=b"x", headers={"Content-Type": "text/csv"}).status_code == 401
    assert client.get("/v1/jobs/x", headers=bearer(client, Role.RADIOLOGIST)).status_code == 403


def test_bad_file_fails_once_without_retry(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    csv = b"age,sex\n50,male\n"  # required columns missing: the input will not improve on retry
    job_id = client.post("/v1/risk/pce/jobs", content=csv, headers=headers | {"Content-Type": "text/csv"}).json()["job_id"]
    status = wait_done(client, job_id, headers)
    assert status["state"] == "failed" and status["attempts"] == 1 and "lacks columns" in status["error"]


def test_transient_failures_retry_then_stop(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/j.db")
    database.migrate()
    with database.session() as session:
        job_id = jobs.enqueue(session, kind="flaky", payload={}, actor="t", role="admin", max_attempts=3)
    calls = []

    def flaky(_payload: dict) -> dict:
        calls.append(1)
        if len(calls) < 2:
            raise ConnectionError("backend went away")
        return {"ok": True}

    worker = JobWorker(database, {"flaky": flaky}, poll_s=0.01)
    while worker.run_once():
        pass
    with database.session() as session:
        job = jobs.get_job(session, job_id)
        assert job.state == "done" and job.attempts == 2 and len(calls) == 2


def test_completion_is_fenced_to_the_lease_holder(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/j.db")
    database.migrate()
    with database.session() as session:
        job_id = jobs.enqueue(session, kind="k", payload={}, actor="t", role="admin")
    with database.session() as session:
        assert jobs.claim(session, "worker-a", lease_s=0.0).id == job_id  # lease expires at once
    with database.session() as session:
        assert jobs.claim(session, "worker-b", lease_s=60).id == job_id  # taken over
    with database.session() as session:
        assert jobs.complete(session, job_id, "worker-a", {"from": "a"}) is False
    with database.session() as session:
        assert jobs.complete(session, job_id, "worker-b", {"from": "b"}) is True
    with database.session() as session:
        assert jobs.complete(session, job_id, "worker-b", {"again": True}) is False
        assert jobs.get_job(session, job_id).result == '{"from": "b"}'


def test_a_job_longer_than_its_lease_keeps_it_by_heartbeat(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/j.db")
    database.migrate()
    with database.session() as session:
        job_id = jobs.enqueue(session, kind="slow", payload={}, actor="t", role="admin")
    stolen = []

    def slow(_payload: dict) -> dict:
        deadline = time.monotonic() + 1.5  # five leases long
        while time.monotonic() < deadline:
            with database.session() as session:  # another worker polls all the while
                stolen.append(jobs.claim(session, "worker-b", lease_s=60) is not None)
            time.sleep(0.05)
        return {"ok": True}

    worker = JobWorker(database, {"slow": slow}, lease_s=0.3)
    assert worker.run_once()
    with database.session() as session:
        job = jobs.get_job(session, job_id)
        assert job.state == "done" and job.attempts == 1 and job.worker == worker.worker_id
    assert len(stolen) > 10 and not any(stolen)


def test_full_queue_is_refused_with_503(tmp_path: Path) -> None:
    from cds.serving.api.app import create_app
    from cds.settings import Settings

    settings = Settings(dev_mode=True, data_dir=tmp_path, job_workers=0, max_pending_jobs=2)
    with TestClient(create_app(settings)) as client:
        headers = bearer(client, Role.CLINICIAN) | {"Content-Type": "text/csv"}
        codes = [client.post("/v1/risk/pce/jobs", content=b"age\n1\n", headers=headers).status_code for _ in range(3)]
        assert codes == [202, 202, 503]
        refused = client.post("/v1/risk/pce/jobs", content=b"age\n1\n", headers=headers)
        assert refused.headers["Retry-After"] and refused.json()["code"] == "job_queue_full"


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_job_survives_a_killed_server_and_completes_once(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgresql" else f"sqlite:///{tmp_path}/cds.db"
    env = os.environ | {"CDS_DATA_DIR": str(tmp_path), "CDS_DATABASE_URL": url, "CDS_JOB_LEASE_S": "2"}
    big = cohort(250_000)
    csv = big.to_csv(index=False).encode()

    def start() -> tuple[subprocess.Popen, str]:
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", "cds.cli.main", "serve", "--dev", "--port", str(port)],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    return process, base
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        process.kill()
        raise AssertionError("server did not start")

    process, base = start()
    try:
        token = httpx.post(base + "/v1/dev/token", json={"roles": ["clinician", "admin"]}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        job_id = httpx.post(base + "/v1/risk/pce/jobs", content=csv, timeout=60,
                            headers=headers | {"Content-Type": "text/csv"}).json()["job_id"]  # fmt: skip
        for _ in range(400):
            if httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json()["state"] == "running":
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)  # mid-job
        process.wait(10)
        process, base = start()
        token = httpx.post(base + "/v1/dev/token", json={"roles": ["clinician", "admin"]}).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 90
        while (status := httpx.get(f"{base}/v1/jobs/{job_id}", headers=headers).json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, status
            time.sleep(0.2)
        assert status["state"] == "done" and status["attempts"] == 2
        assert status["result"]["rows"] == len(big)
        events = httpx.get(f"{base}/v1/audit/events?limit=1000", headers=headers).json()
        assert sum(e["type"]["code"] == "job.done" for e in events) == 1
        assert httpx.get(f"{base}/v1/audit/verify", headers=headers).json()["ok"] is True
    finally:
        process.kill()
        process.wait(10)



