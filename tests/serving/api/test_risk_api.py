"""Risk endpoints: stored, audited results; FHIR round trip; bad input answered with problem+json."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.riskassessment import RiskAssessment

from cds.serving.api.auth import Role
from tests.interop.test_fhir_risk import bundle
from tests.serving.api.conftest import bearer
from tests.serving.api.test_auth import PCE_INPUTS


def test_score_is_stored_audited_and_readable(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN, subject="dr-a")
    response = client.post("/v1/risk/pce", json={"inputs": PCE_INPUTS, "subject": "Patient/7"}, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert round(100 * body["result"]["score"], 1) == 5.4
    stored = client.get(f"/v1/results/{body['result_id']}", headers=headers).json()
    assert stored["result"] == body["result"] and stored["subject"] == "Patient/7" and stored["created_by"] == "dr-a"
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    created = [e for e in events if e["type"]["code"] == "result.create"]
    read = [e for e in events if e["type"]["code"] == "result.read"]
    assert created[-1]["entity"][0]["what"]["display"] == f"Result/{body['result_id']}"
    assert created[-1]["entity"][1]["what"]["reference"] == "Patient/7"
    assert read and read[-1]["agent"][0]["who"]["display"] == "dr-a"
    assert client.get("/v1/audit/verify", headers=bearer(client, Role.ADMIN)).json()["ok"] is True


def test_ml_risk_model_is_served(client: TestClient) -> None:
    inputs = dict(npreg=2, glu=150, bp=70, skin=30, bmi=35, ped=0.5, age=40)
    response = client.post("/v1/risk/pima-diabetes-lr", json={"inputs": inputs}, headers=bearer(client, Role.CLINICIAN))
    result = response.json()["result"]
    assert result["method"]["kind"] == "model" and result["method"]["backend"] == "onnxruntime"
    assert 0.5 < result["score"] < 0.65


def test_fhir_bundle_in_risk_assessment_out(client: TestClient) -> None:
    response = client.post("/v1/risk/pce/fhir?bp_treated=false&diabetes=false&as_of=2025-06-01", json=bundle(),
                           headers=bearer(client, Role.CLINICIAN))  # fmt: skip
    assert response.status_code == 200, response.text
    assessment = RiskAssessment.model_validate(response.json())
    assert round(100 * float(assessment.prediction[0].probabilityDecimal), 1) == 2.1
    assert assessment.subject.reference == "Patient/p1"


@pytest.mark.parametrize(
    ("payload", "code"),
    [(b'{"inputs": {"age": NaN}}', "invalid_request"), (b'{"inputs": {"age": Infinity}}', "invalid_request"),
     (json.dumps({"inputs": PCE_INPUTS | {"age": "NaN"}}).encode(), "not_finite"),
     (json.dumps({"inputs": PCE_INPUTS | {"systolic_bp": 900}}).encode(), "impossible_value"),
     (json.dumps({"inputs": {"age": 50}}).encode(), "missing_fields"),
     (b'{"inputs": ', "invalid_request"), (json.dumps({"inputs": {}, "extra": 1}).encode(), "invalid_request")],
)  # fmt: skip
def test_bad_input_is_422_with_reason(client: TestClient, payload: bytes, code: str) -> None:
    headers = bearer(client, Role.CLINICIAN) | {"Content-Type": "application/json"}
    response = client.post("/v1/risk/pce", content=payload, headers=headers)
    assert response.status_code == 422 and response.json()["code"] == code
    assert response.headers["content-type"] == "application/problem+json"


def test_out_of_range_is_a_result_not_an_error(client: TestClient) -> None:
    response = client.post("/v1/risk/pce", json={"inputs": PCE_INPUTS | {"age": 85}}, headers=bearer(client, Role.CLINICIAN))
    result = response.json()["result"]
    assert response.status_code == 200 and result["status"] == "out_of_range" and result["score"] is None


def test_unknown_method_lists_available(client: TestClient) -> None:
    response = client.post("/v1/risk/qrisk3", json={"inputs": {}}, headers=bearer(client, Role.CLINICIAN))
    assert response.status_code == 404 and "pima-diabetes-lr" in response.json()["detail"]


def test_oversized_body_is_413(client: TestClient) -> None:
    big = {"inputs": PCE_INPUTS, "subject": "x" * 100, "pad": "y" * 70_000}
    response = client.post("/v1/risk/pce", json=big, headers=bearer(client, Role.CLINICIAN))
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"


def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["models"] == {"pima-diabetes-lr:1.0.0": "ok"}
    client.post("/v1/risk/pce", json={"inputs": PCE_INPUTS, "subject": "Patient/99"}, headers=bearer(client, Role.CLINICIAN))
    metrics = client.get("/metrics").text
    assert 'route="/v1/risk/{score}"' in metrics and "Patient/99" not in metrics
    assert 'cds_inferences_total{method="pce",outcome="scored"}' in metrics
    assert 'cds_jobs{state="queued"} 0.0' in metrics


def test_openapi_lists_every_route(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/risk/{score}", "/v1/risk/{score}/fhir", "/v1/results/{result_id}", "/v1/audit/verify"):
        assert path in paths
