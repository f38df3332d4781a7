"""ECG over the API: upload (and STOW-RS) → durable job → measurements, rhythm, flags, FHIR report, printout;
malformed ECGs failed with their reasons; a cardiologist's reviews stored and audited; roles and patient scope."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.data import get_testdata_file

from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.serving.api.auth import Role
from cds.store.audit import verify_chain
from cds.store.tables import AuditEventRow, EcgReviewRow
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.ecg_signals import generate_ecg
from training.data.stow_sample import BOUNDARY, multipart_body

PYDICOM_ECG = Path(get_testdata_file("waveform_ecg.dcm", download=False))


def _submit(client: TestClient, name: str, content: bytes, headers: dict[str, str], **params: str):  # noqa: ANN202
    return client.post("/v1/ecg/jobs", params={"filename": name, **params}, content=content,
                       headers=headers | {"Content-Type": "application/octet-stream"})  # fmt: skip


def _csv(signals: np.ndarray, fs: float, leads: tuple[str, ...] = STANDARD_LEADS) -> bytes:
    rows = [f"# sampling_hz: {fs:g}", "# unit: uV", ",".join(leads)]
    rows += [",".join(f"{v * 1000:.0f}" for v in sample) for sample in signals.T]
    return "\n".join(rows).encode()


def test_a_real_ecg_is_read_reported_and_printed(client: TestClient) -> None:
    headers = bearer(client, Role.CARDIOLOGIST)
    queued = _submit(client, "ecg.dcm", PYDICOM_ECG.read_bytes(), headers, subject="Patient/7")
    assert queued.status_code == 202, queued.text
    status = wait_for_job(client, queued.headers["Location"], headers)
    assert status["state"] == "done", status
    result = status["result"]
    assert result["model"].startswith("ecg-rhythm:") and len(result["input_sha256"]) == 64
    assert 40 < result["measurements"]["heart_rate_bpm"] < 120 and result["measurements"]["qrs_ms"] is not None
    assert set(result["outputs"]) == {"result.json", "diagnostic-report.json", "ecg-12-lead.png", "ecg-12-lead.pdf"}
    location = queued.headers["Location"]
    report = client.get(f"{location}/diagnostic-report.json", headers=headers)
    DiagnosticReport.model_validate(report.json())
    assert client.get(f"{location}/ecg-12-lead.png", headers=headers).content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"{location}/ecg-12-lead.pdf", headers=headers).content[:5] == b"%PDF-"
    signals = client.get(f"{location}/signals", headers=headers).json()
    assert signals["leads"] == list(STANDARD_LEADS) and signals["sampling_hz"] == 500  # 1000 Hz halved for the view
    assert len(signals["values"]) == 12 and len(signals["values"][0]) == 5000 and len(signals["r_peaks_s"]) > 5
    other = client.get(location, headers=bearer(client, Role.CARDIOLOGIST, patient="Patient/8"))
    assert other.status_code == 403 and other.json()["code"] == "patient_scope"
    assert client.get(location, headers=bearer(client, Role.RADIOLOGIST)).status_code == 403
    listed = client.get("/v1/ecg/jobs", headers=headers).json()
    assert listed["total"] == 1 and listed["items"][0]["rhythm"] == result["rhythm"]["label"]
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
        reads = session.query(AuditEventRow).filter(AuditEventRow.action == "ecg.read").all()
    assert len(reads) == 1 and reads[0].input_sha256 == result["input_sha256"] and reads[0].subject == "Patient/7"


def test_st_elevation_raises_the_critical_flag_through_the_service(client: TestClient) -> None:
    ecg = generate_ecg(np.random.default_rng([710_000, 1]), "sinus_rhythm", sampling_hz=500, duration_s=10,
                       st_mv={"II": 0.3, "III": 0.3, "aVF": 0.3})  # fmt: skip
    headers = bearer(client, Role.CARDIOLOGIST)
    queued = _submit(client, "stemi.csv", _csv(ecg.signals, 500), headers, sex="male", age="60")
    status = wait_for_job(client, queued.headers["Location"], headers)
    assert status["state"] == "done", status
    flags = status["result"]["flags"]
    assert flags[0]["code"] == "possible_stemi" and flags[0]["severity"] == "critical"
    assert set(flags[0]["leads"]) <= {"II", "III", "aVF"}
    assert client.get("/v1/ecg/jobs", headers=headers).json()["items"][0]["critical"] is True


@pytest.mark.parametrize(("name", "reason"), [("holter.csv", "wrong_lead_set"), ("slow.csv", "wrong_sample_rate"),
                                              ("long.csv", "too_long"), ("flat.csv", "unreadable_ecg"),
                                              ("cut.dcm", "truncated")])  # fmt: skip
def test_malformed_ecgs_fail_with_their_reason(client: TestClient, name: str, reason: str) -> None:
    ecg = generate_ecg(np.random.default_rng(5), "sinus_rhythm", sampling_hz=500, duration_s=10)
    contents = {
        "holter.csv": _csv(ecg.signals[[0, 1, 6]], 500, ("I", "II", "V1")),
        "slow.csv": _csv(ecg.signals[:, ::5], 100),
        "long.csv": _csv(np.tile(ecg.signals, 7), 500),
        "flat.csv": _csv(np.zeros_like(ecg.signals), 500),
        "cut.dcm": PYDICOM_ECG.read_bytes()[: PYDICOM_ECG.stat().st_size // 2],
    }
    headers = bearer(client, Role.CARDIOLOGIST)
    status = wait_for_job(client, _submit(client, name, contents[name], headers).headers["Location"], headers)
    assert status["state"] == "failed" and status["attempts"] == 1 and status["error"].startswith(reason), status


def test_reviews_are_stored_checked_and_audited(client: TestClient) -> None:
    headers = bearer(client, Role.CARDIOLOGIST, subject="dr-heart")
    location = _submit(client, "ecg.dcm", PYDICOM_ECG.read_bytes(), headers).headers["Location"]
    result = wait_for_job(client, location, headers)["result"]
    accepted = client.post(f"{location}/reviews", json={"item": "heart_rate_bpm", "verdict": "accepted"},
                           headers=headers)  # fmt: skip
    assert accepted.status_code == 201 and accepted.json()["value"] == f"{result['measurements']['heart_rate_bpm']:g}"
    corrected = client.post(f"{location}/reviews", json={"item": "qrs_ms", "verdict": "corrected", "value": "96",
                                                         "comment": "measured by hand"}, headers=headers)
    assert corrected.status_code == 201 and corrected.json()["value"] == "96"
    rhythm = client.post(f"{location}/reviews", json={"item": "rhythm", "verdict": "corrected",
                                                      "value": "sinus_arrhythmia"}, headers=headers)
    assert rhythm.status_code == 201
    refusals = [({"item": "qrs_ms", "verdict": "corrected", "value": "5000"}, "invalid_value"),
                ({"item": "qrs_ms", "verdict": "corrected", "value": "wide"}, "invalid_value"),
                ({"item": "rhythm", "verdict": "corrected", "value": "torsades"}, "invalid_value"),
                ({"item": "qrs_ms", "verdict": "rejected"}, "invalid_verdict"),
                ({"item": "p_axis", "verdict": "accepted"}, "unknown_item")]  # fmt: skip
    for body, code in refusals:
        answer = client.post(f"{location}/reviews", json=body, headers=headers)
        assert answer.status_code == 422 and answer.json()["code"] == code, (body, answer.text)
    history = client.get(f"{location}/reviews", headers=headers).json()
    assert [r["item"] for r in history] == ["rhythm", "qrs_ms", "heart_rate_bpm"]  # newest first
    assert history[1]["ai_value"] == f"{result['measurements']['qrs_ms']:g}" and history[1]["actor"] == "dr-heart"
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
        events = session.query(AuditEventRow).filter(AuditEventRow.action == "ecg.review").all()
        assert session.query(EcgReviewRow).count() == 3
    assert len(events) == 3 and all("measured by hand" not in (e.detail or "") for e in events)


def test_a_dicom_ecg_sent_by_stow_rs_is_queued_as_an_ecg_read(client: TestClient) -> None:
    headers = bearer(client, Role.CARDIOLOGIST)
    body = multipart_body([PYDICOM_ECG.read_bytes()])
    stored = client.post("/dicomweb/studies", content=body, headers=headers | {
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'})  # fmt: skip
    assert stored.status_code == 200, stored.text
    ecg_jobs = stored.headers["X-ECG-Jobs"].split(",")
    assert len(ecg_jobs) == 1 and stored.headers["Location"] == f"/v1/ecg/jobs/{ecg_jobs[0]}"
    status = wait_for_job(client, stored.headers["Location"], headers)
    assert status["state"] == "done" and status["result"]["measurements"]["heart_rate_bpm"] is not None
