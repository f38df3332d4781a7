"""Job payloads and outcomes as types: valid ones round-trip, bad ones are refused with a reason, also by a worker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cds.errors import InvalidInputError
from cds.results.jobs import (
    ClaimedJob,
    JobKind,
    PrereadOutcome,
    PrereadPayload,
    PrereadReport,
    RiskFilePayload,
    StoredInstance,
    parse_outcome,
    parse_payload,
)
from cds.serving.engine import build_engine
from cds.serving.worker import JobWorker, job_handlers
from cds.settings import Settings
from cds.store import jobs

FINDING = {"label": "Effusion", "probability": 0.7, "threshold": 0.2, "positive": True}
STRUCTURE = {"label": "liver", "voxels": 10, "volume_ml": 1.5}


def _outcome(kind: str, summary: list[dict[str, object]], **changes: object) -> dict[str, object]:
    return {"kind": kind, "study_uid": "1.2", "series_uid": "1.2.3", "uid": "1.2.3.4", "model": "m:1.0.0",
            "input_sha256": "0" * 64, "summary": summary} | changes


def test_payloads_round_trip_through_their_kind() -> None:
    payload = PrereadPayload(instances=(StoredInstance(path=Path("/d/1.2.dcm"), sop_instance_uid="1.2",
                                                       study_uid="1"),), output=Path("/d/out"), model="chest")
    parsed = parse_payload(JobKind.PREREAD, payload.model_dump_json())
    assert parsed == payload and isinstance(parsed, PrereadPayload)
    cohort = parse_payload("risk_file", json.dumps({"method": "pce", "input": "/a.csv", "output": "/a.parquet"}))
    assert isinstance(cohort, RiskFilePayload) and cohort.output == Path("/a.parquet")


@pytest.mark.parametrize(("kind", "payload", "code", "names"), [
    ("preread", {"output": "/o", "model": "m"}, "invalid_payload", "instances"),  # a field missing
    ("preread", {"instances": [], "output": "/o", "model": "m"}, "invalid_payload", "instances"),  # nothing to read
    ("preread", {"files": ["/a.dcm"], "output": "/o", "model": "m"}, "invalid_payload", "files"),  # the old shape
    ("risk_file", {"method": "pce", "input": "/a.csv", "output": "/b", "actor": "x"}, "invalid_payload", "actor"),
    ("pathology", {"method": "pce", "input": "/a.csv", "output": "/b"}, "invalid_payload", "file"),  # another kind's
    ("pathology", {"file": 3, "output": "/b", "model": ""}, "invalid_payload", "model"),
    ("ecg", {"file": "/a.dcm", "output": "/b", "model": "m", "sex": "other"}, "invalid_payload", "sex"),
    ("holter", {}, "unknown_job_kind", "risk_file"),
])
def test_bad_payloads_are_refused_with_a_reason(kind: str, payload: dict[str, object], code: str, names: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_payload(kind, json.dumps(payload))
    assert refused.value.code == code and names in refused.value.message


def test_outcomes_check_that_the_summary_fits_the_kind() -> None:
    report = parse_outcome(JobKind.PREREAD, json.dumps({"outcomes": [_outcome("radiograph", [FINDING]),
                                                                     _outcome("ct", [STRUCTURE], uid="9")],
                                                        "refusals": []}))
    assert isinstance(report, PrereadReport)
    radiograph, ct = report.outcomes
    assert radiograph.findings[0].positive and radiograph.structures == () and ct.structures[0].volume_ml == 1.5
    assert report.outcome("9") is ct and report.outcome("nope") is None and ct.labels == ("liver",)
    for bad in (_outcome("ct", [FINDING]), _outcome("radiograph", [STRUCTURE]), _outcome("radiograph", [FINDING],
                                                                                          model="no-version")):
        with pytest.raises(ValueError, match="PrereadOutcome"):
            PrereadOutcome.model_validate(bad)
    with pytest.raises(InvalidInputError) as refused:
        parse_outcome("pathology", json.dumps({"outcomes": [], "refusals": []}))
    assert refused.value.code == "invalid_outcome"


def test_a_claimed_job_reads_its_payload_through_the_model() -> None:
    job = ClaimedJob(id="j", kind="risk_file", payload='{"method": "pce"}', actor="a", role="r", subject="",
                     attempts=1)
    with pytest.raises(InvalidInputError) as refused:
        job.payload_as(RiskFilePayload)
    assert refused.value.code == "invalid_payload" and "input" in refused.value.message


@pytest.mark.parametrize("kind", list(JobKind))
def test_a_worker_fails_a_malformed_job_for_good_with_its_reason(tmp_path: Path, kind: JobKind) -> None:
    engine = build_engine(Settings(data_dir=tmp_path))
    engine.database.migrate()
    with engine.database.session() as session:
        job_id = jobs.enqueue(session, kind=kind, payload={"unexpected": True}, actor="t", role="admin")
    worker = JobWorker(engine.database, job_handlers(engine), poll_s=0.01)
    assert worker.run_once() and not worker.run_once()  # one attempt, then nothing left to do
    with engine.database.session() as session:
        row = jobs.get_job(session, job_id)
    assert (row.state, row.attempts, row.error_code, row.refused) == ("failed", 1, "invalid_payload", True)
    assert "unexpected" in row.error and row.result == ""
    with pytest.raises(InvalidInputError, match="invalid_payload"):  # and it never reads as a typed job either
        jobs.record(row)
    engine.close()
