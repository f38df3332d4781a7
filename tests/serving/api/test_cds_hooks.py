"""CDS Hooks 2.0: discovery, patient-view cards from prefetch or from a real FHIR server, client JWT checks,
feedback."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cds.interop.record_dates import age_at
from cds.models.risk import get_equation
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.interop.test_fhir_risk import bundle
from tests.serving.api.conftest import bearer
from tests.support.servers import serve_in_thread

SERVICE = "/cds-services/cds-risk"
AUDIENCE = "http://testserver" + SERVICE


def prefetch() -> dict:
    entries = bundle()["entry"]
    return {
        "patient": entries[0]["resource"],
        "observations": {"resourceType": "Bundle", "type": "searchset", "entry": entries[1:]},
        "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": []},
        "medications": {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
            "resourceType": "MedicationRequest", "id": "amlodipine", "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "C08CA01"}]}}}]},
    }


def hook_request(**changes: object) -> dict:
    body = {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/9", "patientId": "p1"}, "prefetch": prefetch()}  # fmt: skip
    return body | changes


def dev_token(client: TestClient, audience: str = AUDIENCE) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.app.state.cds.dev_hook_client.mint(audience)}"}


def test_discovery(client: TestClient) -> None:
    (service,) = client.get("/cds-services").json()["services"]
    assert service["hook"] == "patient-view" and service["id"] == "cds-risk"
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|8480-6" in service["prefetch"]["observations"]


def test_patient_view_cards_from_prefetch(client: TestClient) -> None:
    response = client.post(SERVICE, json=hook_request(), headers=dev_token(client))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert len(cards) == 3
    for card in cards:
        assert len(card["summary"]) <= 140 and card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"].startswith("cds ")
    kidney, cardiovascular, diabetes = (next(c for c in cards if c["summary"].startswith(t))
                                        for t in ("Kidney", "Cardiovascular", "Diabetes"))  # fmt: skip
    # creatinine 1.0 mg/dL, a woman born 1970-03-15, aged at today's date (the hook's evaluation date): CKD-EPI 2021
    # (66.5 at 55, the worked value the equation's own tests check); no ACR, so no heat-map band; units as written
    age = age_at(dt.date(1970, 3, 15), dt.datetime.now(dt.UTC).date())
    assert age is not None
    egfr = get_equation("ckd_epi_2021").evaluate({"creatinine": 1.0, "age": age.years, "sex": "female"}).score[0]
    assert kidney["summary"] == f"Kidney: {egfr:.3g} mL/min/1.73 m² (G2)"
    assert kidney["source"]["label"] == "cds ckd_epi_2021 2021"
    # complete active lists: amlodipine (ATC C08) -> treated; no statin; no diabetes Condition and no HbA1c -> no
    # diabetes; eGFR 90 is present, so PREVENT (preferred) scores: woman 55, TC 213, HDL 50, SBP 120 treated
    assert cardiovascular["summary"].startswith("Cardiovascular: ") and "prevent_cvd" in cardiovascular["source"]["label"]
    assert diabetes["summary"].startswith("Diabetes risk not calculated: missing ")
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    assert any(e["type"]["code"] == "hooks.call" for e in events)
    assert any(e["type"]["code"] == "result.create" and e["agent"][0]["who"]["display"].startswith("cds-client:cds-dev-ehr")
               for e in events)  # fmt: skip


def test_another_patients_observation_never_changes_the_cards(client: TestClient) -> None:
    body = hook_request()
    plain = client.post(SERVICE, json=body, headers=dev_token(client)).json()["cards"]
    entries = body["prefetch"]["observations"]["entry"]
    stranger = copy.deepcopy(next(e for e in entries if e["resource"]["code"]["coding"][0]["code"] == "8480-6"))
    stranger["resource"].update(id="sbp-p2", subject={"reference": "Patient/p2"}, effectiveDateTime="2030-01-01")
    stranger["resource"]["valueQuantity"]["value"] = 200
    entries.append(stranger)
    cards = client.post(SERVICE, json=body, headers=dev_token(client)).json()["cards"]
    by_topic = {c["summary"].split(":")[0]: c for c in cards}
    before = {c["summary"].split(":")[0]: c for c in plain}
    assert by_topic["Cardiovascular"]["summary"] == before["Cardiovascular"]["summary"]
    assert "Observation/sbp-p2" in by_topic["Cardiovascular"]["detail"]  # named, not silently dropped


def test_uncoded_medication_is_not_read_as_untreated(client: TestClient) -> None:
    body = hook_request()
    body["prefetch"]["medications"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"text": "amlodipine 5 mg"}
    body["prefetch"]["conditions"]["entry"] = [{"resource": {
        "resourceType": "Condition", "id": "dm", "subject": {"reference": "Patient/p1"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]}}}]  # fmt: skip
    cards = client.post(SERVICE, json=body, headers=dev_token(client)).json()["cards"]
    # the one medication cannot be classified, so treatment status stays unknown and the card names it
    cardiovascular = next(c for c in cards if c["summary"].startswith("Cardiovascular"))
    assert cardiovascular["summary"] == "Cardiovascular risk not calculated: missing bp_treated"
    assert cardiovascular["indicator"] == "info"


@pytest.fixture
def fhir_server() -> Iterator[str]:
    """A real HTTP FHIR server on loopback that serves the test patient and checks the bearer token."""
    fhir = FastAPI()
    data = prefetch()
    seen: list[str] = []

    @fhir.get("/fhir/Patient/{pid}")
    def patient(pid: str) -> dict:
        return data["patient"]

    @fhir.get("/fhir/Observation")
    def observations() -> dict:
        return data["observations"]

    @fhir.get("/fhir/Condition")
    def conditions() -> dict:
        return data["conditions"]

    @fhir.get("/fhir/MedicationRequest")
    def medications() -> dict:
        return data["medications"]

    @fhir.get("/fhir/Procedure")
    def procedures() -> dict:  # a coronary stent: established ASCVD, seen only by fetching
        return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": {
            "resourceType": "Procedure", "id": "pci", "status": "completed", "subject": {"reference": "Patient/p1"},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "415070008"}]}}}]}  # fmt: skip

    @fhir.get("/fhir/QuestionnaireResponse")
    def questionnaires() -> dict:
        return {"resourceType": "Bundle", "type": "searchset", "entry": []}

    @fhir.middleware("http")
    async def record(request, call_next):  # noqa: ANN001, ANN202
        seen.append(request.headers.get("authorization", ""))
        return await call_next(request)

    with serve_in_thread(fhir) as url:
        yield url + "/fhir"
    assert seen and all(h == "Bearer ehr-issued-token" for h in seen)


def test_without_prefetch_the_service_fetches_from_fhir_server(client: TestClient, fhir_server: str) -> None:
    body = hook_request(prefetch=None, fhirServer=fhir_server, fhirAuthorization={
        "access_token": "ehr-issued-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "cds-risk"})  # fmt: skip
    response = client.post(SERVICE, json=body, headers=dev_token(client))
    assert response.status_code == 200, response.text
    assert len(response.json()["cards"]) == 3
    assert any("established ASCVD" in c["summary"] for c in response.json()["cards"])  # the fetched Procedure


def test_optional_prefetch_is_fetched_when_it_can_be_and_otherwise_not_required(client: TestClient,
                                                                                fhir_server: str) -> None:
    assert set(hook_request()["prefetch"]) == {"patient", "observations", "conditions", "medications"}
    without = client.post(SERVICE, json=hook_request(), headers=dev_token(client))  # no FHIR server to ask
    assert without.status_code == 200 and not any("ASCVD" in c["summary"] for c in without.json()["cards"])
    body = hook_request(fhirServer=fhir_server, fhirAuthorization={
        "access_token": "ehr-issued-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "cds-risk"})  # fmt: skip
    fetched = client.post(SERVICE, json=body, headers=dev_token(client))
    assert any("established ASCVD" in c["summary"] for c in fetched.json()["cards"])


def test_missing_prefetch_without_fhir_server_is_412(client: TestClient) -> None:
    response = client.post(SERVICE, json=hook_request(prefetch=None), headers=dev_token(client))
    assert response.status_code == 412 and response.json()["code"] == "prefetch_missing"


def test_feedback_is_stored_and_audited(client: TestClient) -> None:
    feedback = {"feedback": [{"card": "abc", "outcome": "overridden", "outcomeTimestamp": "2026-11-23T08:00:00Z",
                              "overrideReason": {"reason": {"code": "patient-declined"}}}]}  # fmt: skip
    response = client.post(SERVICE + "/feedback", json=feedback, headers=dev_token(client, AUDIENCE + "/feedback"))
    assert response.status_code == 200 and response.json() == {"stored": 1}
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    assert any(e["type"]["code"] == "hooks.feedback" and e["entity"][0]["what"]["display"] == "card/abc" for e in events)


# --- client JWT checks, with a configured EHR (RS384 via JWKS file) -------------------------------------------


@pytest.fixture
def ehr(tmp_path: Path) -> dict:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    (tmp_path / "ehr-jwks.json").write_text(json.dumps({"keys": [jwk | {"kid": "ehr-1", "use": "sig"}]}))
    ec_key = ec.generate_private_key(ec.SECP384R1())
    ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    clients = {"clients": [{"iss": "https://ehr.example", "jwks_file": "ehr-jwks.json",
                            "jku_allow": ["https://ehr.example/jwks"]}]}  # fmt: skip
    (tmp_path / "clients.json").write_text(json.dumps(clients))
    return {"rsa": rsa_key, "ec": ec_key, "ec_jwks": {"keys": [ec_jwk | {"kid": "rotating"}]},
            "file": tmp_path / "clients.json"}  # fmt: skip


@pytest.fixture
def ehr_client(ehr: dict, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(api_keys_only=True, data_dir=tmp_path / "data", hooks_clients_file=ehr["file"],
                        public_url="http://testserver")
    with TestClient(create_app(settings)) as test_client:
        test_client.app.state.cds.hook_verifier.fetch = lambda url: ehr["ec_jwks"]  # only reached for allowed jku
        yield test_client


def ehr_token(ehr: dict, **changes: object) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {"iss": "https://ehr.example", "sub": "ehr-app", "aud": AUDIENCE, "iat": now,
              "exp": now + dt.timedelta(minutes=5), "jti": f"jti-{time.monotonic_ns()}"}  # fmt: skip
    key, algorithm, headers = ehr["rsa"], "RS384", {"kid": "ehr-1"}
    for name, value in changes.items():
        if name == "key":
            key = value
        elif name == "alg":
            algorithm = value
        elif name == "headers":
            headers = value
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def test_configured_ehr_rs384_is_accepted_and_replay_refused(ehr_client: TestClient, ehr: dict) -> None:
    token = ehr_token(ehr)
    first = ehr_client.post(SERVICE, json=hook_request(), headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200, first.text
    replay = ehr_client.post(SERVICE, json=hook_request(), headers={"Authorization": f"Bearer {token}"})
    assert replay.status_code == 401 and replay.json()["code"] == "token_replayed"


def test_a_token_is_used_up_by_a_call_that_fails(client: TestClient) -> None:
    headers = dev_token(client)
    other = hook_request(context={"userId": "Practitioner/9", "patientId": "p2"})  # prefetch is p1's: refused
    refused = client.post(SERVICE, json=other, headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] == "patient_mismatch"
    again = client.post(SERVICE, json=hook_request(), headers=headers)
    assert again.status_code == 401 and again.json()["code"] == "token_replayed"


def test_concurrent_replays_of_one_token_release_cards_once(client: TestClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import func, select

    from cds.store.audit import AuditAction
    from cds.store.tables import AuditEventRow, ResultRow

    headers = dev_token(client)
    database = client.app.state.cds.engine.database
    with database.session() as session:
        before = session.scalar(select(func.count()).select_from(ResultRow))
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: client.post(SERVICE, json=hook_request(), headers=headers), range(6)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 401, 401, 401, 401, 401]
    assert all(a.json()["code"] == "token_replayed" for a in answers if a.status_code == 401)
    cards = next(a for a in answers if a.status_code == 200).json()["cards"]
    with database.session() as session:
        stored = session.scalar(select(func.count()).select_from(ResultRow)) - before
        calls = session.scalar(select(func.count()).select_from(AuditEventRow)
                               .where(AuditEventRow.action == AuditAction.HOOKS_CALL.value))  # fmt: skip
    assert 0 < stored <= len(cards) and calls == 1  # one call's results, released once


def test_allow_listed_jku_is_used(ehr_client: TestClient, ehr: dict) -> None:
    token = ehr_token(ehr, key=ehr["ec"], alg="ES384", headers={"kid": "rotating", "jku": "https://ehr.example/jwks"})
    assert ehr_client.post(SERVICE, json=hook_request(), headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize(
    ("case", "code"),
    [("none", "missing_credentials"), ("expired", "token_expired"), ("wrong_aud", "invalid_token"),
     ("untrusted_iss", "untrusted_issuer"), ("es256", "invalid_token"), ("alg_none", "invalid_token"),
     ("unknown_jku", "untrusted_jku"), ("too_long", "invalid_token"), ("no_jti", "invalid_token"),
     ("wrong_key", "invalid_token")],
)  # fmt: skip
def test_client_jwt_matrix(ehr_client: TestClient, ehr: dict, case: str, code: str) -> None:
    now = dt.datetime.now(dt.UTC)
    tokens = {
        "expired": lambda: ehr_token(ehr, iat=now - dt.timedelta(minutes=10), exp=now - dt.timedelta(minutes=5)),
        "wrong_aud": lambda: ehr_token(ehr, aud="https://other.example/cds-services/cds-risk"),
        "untrusted_iss": lambda: ehr_token(ehr, iss="https://evil.example"),
        "es256": lambda: ehr_token(ehr, key=ec.generate_private_key(ec.SECP256R1()), alg="ES256"),
        "alg_none": lambda: jwt.encode({"iss": "https://ehr.example", "aud": AUDIENCE}, None, algorithm="none"),
        "unknown_jku": lambda: ehr_token(ehr, key=ehr["ec"], alg="ES384", headers={"kid": "x", "jku": "https://evil.example/jwks"}),
        "too_long": lambda: ehr_token(ehr, exp=now + dt.timedelta(hours=1)),
        "no_jti": lambda: ehr_token(ehr, jti=None),
        "wrong_key": lambda: ehr_token(ehr, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    }
    headers = {} if case == "none" else {"Authorization": f"Bearer {tokens[case]()}"}
    response = ehr_client.post(SERVICE, json=hook_request(), headers=headers)
    assert response.status_code == 401 and response.json()["code"] == code, response.text


def test_dev_hooks_token_only_in_dev_mode(ehr_client: TestClient) -> None:
    assert ehr_client.post("/v1/dev/hooks-token", json={"audience": AUDIENCE}).status_code == 404


def test_request_shape_errors(client: TestClient) -> None:
    wrong_hook = client.post(SERVICE, json=hook_request(hook="order-sign"), headers=dev_token(client))
    assert wrong_hook.status_code == 422 and wrong_hook.json()["code"] == "wrong_hook"
    other_patient = copy.deepcopy(hook_request(context={"patientId": "p2"}))
    mismatch = client.post(SERVICE, json=other_patient, headers=dev_token(client))
    assert mismatch.status_code == 422 and mismatch.json()["code"] == "patient_mismatch"
