"""``cds serve --workers 2`` on PostgreSQL: any process accepts tokens any other minted, every result is stored and
audited in one chain, and the single-instance services (here the DICOM node's listener) run in exactly one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from pynetdicom import AE
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from sqlalchemy import func, select

from cds.serving.triton.launcher import free_port
from cds.store.audit import AuditAction, verify_chain
from cds.store.db import Database
from cds.store.tables import AuditEventRow, ResultRow

SAMPLES = Path(__file__).parents[3] / "samples"
pytestmark = pytest.mark.postgres


def _wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert server.poll() is None, "the service exited while starting"
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the service did not become ready")


def _workers(server: subprocess.Popen[bytes]) -> set[int]:
    """The uvicorn worker processes: the supervisor's children that multiprocessing spawned to run the service."""
    found = set()
    for entry in Path("/proc").iterdir():
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == server.pid and b"spawn_main" in command:
            found.add(int(entry.name))
    return found


def test_two_worker_processes_share_tokens_one_audit_chain_and_one_dicom_listener(postgres_url: str,
                                                                                   tmp_path: Path) -> None:  # fmt: skip
    port, dicom_port = free_port(), free_port()
    env = os.environ | {"CDS_DATA_DIR": str(tmp_path), "CDS_DATABASE_URL": postgres_url,
                        "CDS_DICOM_PORT": str(dicom_port), "CDS_DICOM_CALLING_AES": '["TESTSCU"]',
                        "CDS_JOB_WORKERS": "1"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "cds.cli.main", "serve", "--dev", "--workers", "2",  # noqa: S603
                               "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, server)
        time.sleep(2)  # both workers up
        workers = _workers(server)
        assert len(workers) == 2
        token = httpx.post(base + "/v1/dev/token", json={"roles": ["clinician"]}).json()["access_token"]
        risk = json.loads((SAMPLES / "risk-pce-request.json").read_text())
        hook = json.loads((SAMPLES / "cds-hooks-patient-view.json").read_text())
        audience = base + "/cds-services/cds-risk"
        statuses = []
        for _ in range(30):  # a fresh connection each: the kernel hands them to either process
            statuses.append(httpx.post(base + "/v1/risk/pce", json=risk,
                                       headers={"Authorization": f"Bearer {token}"}).status_code)  # fmt: skip
            hook_token = httpx.post(base + "/v1/dev/hooks-token", json={"audience": audience}).json()["access_token"]
            statuses.append(httpx.post(base + "/cds-services/cds-risk", json=hook,
                                       headers={"Authorization": f"Bearer {hook_token}"}).status_code)  # fmt: skip
        assert statuses == [200] * 60  # a token minted by one process is good in the other
        ae = AE(ae_title="TESTSCU")
        ae.add_requested_context(Verification)
        association = ae.associate("127.0.0.1", dicom_port, ae_title="CDS")
        assert association.is_established
        assert association.send_c_echo().Status == 0x0000
        association.release()
        time.sleep(6)  # longer than the leadership retry: a second listener would have failed and been restarted
        assert _workers(server) == workers and server.poll() is None
    finally:
        server.terminate()
        server.wait(60)
    database = Database(postgres_url)
    with database.session() as session:
        results = session.scalar(select(func.count()).select_from(ResultRow))
        created = session.scalar(select(func.count()).select_from(AuditEventRow)
                                 .where(AuditEventRow.action == AuditAction.RESULT_CREATE.value))  # fmt: skip
        report = verify_chain(session)
    database.close()
    assert results and results == created  # every result with its audit event
    assert report.ok  # written by two processes, one chain
