"""The service on a real Triton server: pre-reads and risk models served by it; killed under load, 503 fast
(never 500 or a hang), no result released while it is down, and recovery without restarting the service."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.serving.backends import create_backend
from cds.serving.triton.launcher import TritonPorts, TritonServer
from cds.serving.triton.repository import export_model_repository
from cds.settings import REPO_ROOT, Settings
from tests.serving.api.conftest import bearer
from tests.serving.api.test_dicomweb import _multipart
from tests.support.jobs import wait_for_job
from tests.support.servers import serve_in_thread
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

pytestmark = pytest.mark.triton
PIMA = "pima-diabetes-lr"
PIMA_INPUTS = {"npreg": 2, "glu": 150, "bp": 70, "skin": 30, "bmi": 35, "ped": 0.5, "age": 40}


def _wait_for(predicate, timeout_s: float) -> float:  # noqa: ANN001
    """Seconds until ``predicate()`` held (fails after ``timeout_s``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout_s} s")


def test_triton_killed_under_load_turns_503_and_recovers(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    export_model_repository(ModelRegistry.from_directory(REPO_ROOT / "registry").get(PIMA), repository)
    ports = TritonPorts.free()
    triton = TritonServer(repository, ports=ports)
    triton.start()
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", backend="triton",
                        triton_url=f"127.0.0.1:{ports.grpc}", triton_timeout_s=5.0)  # fmt: skip
    app = create_app(settings)
    calls: list[tuple[float, int, float, str]] = []  # (start, status, seconds, served by)
    stop = threading.Event()
    try:
        with serve_in_thread(app) as base:
            token = app.state.cds.authenticator.mint_dev_token("load", [Role.CLINICIAN])
            headers = {"Authorization": f"Bearer {token}"}

            def ready() -> bool:
                return httpx.get(f"{base}/readyz", timeout=10).status_code == 200

            def load() -> None:
                with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
                    while not stop.is_set():
                        start = time.monotonic()
                        answer = client.post(f"/v1/risk/{PIMA}", json={"inputs": PIMA_INPUTS})
                        body = answer.json()
                        served = (body.get("result", {}).get("method", {}).get("version", "")
                                  or f'{body.get("code", "")} {body.get("detail", "")}')
                        calls.append((start, answer.status_code, time.monotonic() - start, served))

            assert ready()
            first = httpx.post(f"{base}/v1/risk/{PIMA}", json={"inputs": PIMA_INPUTS}, headers=headers, timeout=30)
            assert first.status_code == 200 and first.json()["result"]["method"]["version"] == "1.0.0"
            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            time.sleep(2.0)
            killed_at = time.monotonic()
            triton.kill()
            assert _wait_for(lambda: not ready(), timeout_s=10) < 10  # /readyz turns 503 within seconds
            down_from = time.monotonic()
            time.sleep(2.0)
            down_until = time.monotonic()
            restarted = TritonServer(repository, ports=ports)
            restarted.start()
            try:
                recovery_s = _wait_for(ready, timeout_s=30)  # no service restart: the same backend reconnects
                recovered_at = time.monotonic()
                time.sleep(1.0)
                stop.set()
                for thread in threads:
                    thread.join(60)
                after = httpx.post(f"{base}/v1/risk/{PIMA}", json={"inputs": PIMA_INPUTS}, headers=headers,
                                   timeout=30)  # fmt: skip
                assert after.status_code == 200, after.text
            finally:
                restarted.stop()
            verify = httpx.get(f"{base}/v1/audit/verify", timeout=30, headers={
                "Authorization": f"Bearer {app.state.cds.authenticator.mint_dev_token('a', [Role.ADMIN])}"}).json()
    finally:
        stop.set()
        triton.stop()

    statuses = {status for _, status, _, _ in calls}
    assert statuses <= {200, 503}, [(c[0] - killed_at, c[1:]) for c in calls if c[1] not in (200, 503)]
    before = [c for c in calls if c[0] + c[2] < killed_at]
    during = [c for c in calls if down_from <= c[0] and c[0] + c[2] <= down_until]
    after_recovery = [c for c in calls if c[0] > recovered_at]
    assert before and all(c[1] == 200 for c in before)
    assert during and all(c[1] == 503 for c in during)  # no AI result while Triton is down
    assert {c[3].split()[0] for c in during} <= {"backend_unreachable", "backend_unavailable"}
    assert after_recovery and all(c[1] == 200 for c in after_recovery)
    assert max(seconds for _, _, seconds, _ in calls) < 10  # nothing hangs
    assert verify["ok"] is True
    print(f"readyz 503 after kill: {down_from - killed_at:.2f} s; recovery after restart: {recovery_s:.2f} s; "
          f"{len(calls)} calls, {sum(c[1] == 503 for c in calls)} answered 503, "
          f"slowest {max(c[2] for c in calls):.2f} s")


def test_service_started_before_triton_serves_once_it_is_up(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    export_model_repository(ModelRegistry.from_directory(REPO_ROOT / "registry").get(PIMA), repository)
    ports = TritonPorts.free()
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", backend="triton",
                        triton_url=f"127.0.0.1:{ports.grpc}", triton_timeout_s=5.0)  # fmt: skip
    app = create_app(settings)
    with serve_in_thread(app) as base:
        headers = {"Authorization": f"Bearer {app.state.cds.authenticator.mint_dev_token('c', [Role.CLINICIAN])}"}
        readiness = httpx.get(f"{base}/readyz", timeout=10)
        assert readiness.status_code == 503
        assert readiness.json()["models"][f"{PIMA}:1.0.0"] == "refused: backend_unavailable"
        early = httpx.post(f"{base}/v1/risk/{PIMA}", json={"inputs": PIMA_INPUTS}, headers=headers, timeout=30)
        assert early.status_code == 503 and early.json()["code"] == "backend_unreachable"
        assert early.headers["Retry-After"]
        assert httpx.post(f"{base}/v1/risk/pce", json={"inputs": {}}, headers=headers).status_code == 422  # equations serve
        with TritonServer(repository, ports=ports):
            _wait_for(lambda: httpx.get(f"{base}/readyz", timeout=10).status_code == 200, timeout_s=30)
            late = httpx.post(f"{base}/v1/risk/{PIMA}", json={"inputs": PIMA_INPUTS}, headers=headers, timeout=30)
            assert late.status_code == 200 and late.json()["result"]["method"]["version"] == "1.0.0"


def test_preread_runs_its_models_on_triton(tmp_path: Path) -> None:
    registry = ModelRegistry.from_directory(REPO_ROOT / "registry")
    repository = tmp_path / "repository"
    for name in (PIMA, "chest-xray-demo", "chest-xray-plausibility"):
        export_model_repository(registry.get(name), repository)
    radiograph = write_radiograph(tmp_path / "cr.dcm", render(448, 43, 0)[0])
    with TritonServer(repository) as triton:
        settings = Settings(dev_mode=True, data_dir=tmp_path / "data", backend="triton", triton_url=triton.grpc_url,
                            ct_model="", preread_saliency_grid=0)  # fmt: skip
        with TestClient(create_app(settings)) as client:
            headers = bearer(client, Role.RADIOLOGIST)
            body, content_type = _multipart([radiograph.read_bytes()])
            stored = client.post("/dicomweb/studies", content=body, headers=headers | content_type)
            status = wait_for_job(client, stored.headers["Location"], headers)
            assert status["state"] == "done", status
            (outcome,) = status["result"]["outcomes"]
            result = client.get(f"{stored.headers['Location']}/{outcome['uid']}/result.json", headers=headers).json()
    model = result["result"]["model"]
    assert model["backend"] == "triton" and model["name"] == "chest-xray-demo"
    with create_backend(BackendKind.ONNXRUNTIME, registry.get("chest-xray-demo")) as local:
        assert len(outcome["summary"]) == local.spec.outputs[0].shape[1]
