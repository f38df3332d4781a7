"""Every protected route: 401 without or with bad credentials, 403 with the wrong role; both audited."""

from __future__ import annotations

import datetime as dt

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient

from cds.errors import ConfigurationError
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role, create_api_key
from cds.settings import Settings
from tests.serving.api.conftest import bearer

PCE_INPUTS = dict(age=55, sex="male", race="white", total_cholesterol=213, hdl_cholesterol=50, systolic_bp=120,
                  bp_treated=False, smoker=False, diabetes=False)  # fmt: skip
# (method, path, body, a role that is allowed, a role that is not)
ROUTES = [
    ("GET", "/v1/models", None, Role.ML_ENGINEER, None),
    ("GET", "/v1/models/lesion-demo", None, Role.RADIOLOGIST, None),
    ("GET", "/v1/risk", None, Role.CLINICIAN, Role.RADIOLOGIST),
    ("POST", "/v1/risk/pce", {"inputs": PCE_INPUTS}, Role.CLINICIAN, Role.ML_ENGINEER),
    ("POST", "/v1/risk/pce/fhir", {"resourceType": "Bundle", "type": "collection"}, Role.CLINICIAN, Role.PATHOLOGIST),
    ("GET", "/v1/results/00000000-0000-0000-0000-000000000000", None, Role.CLINICIAN, Role.ML_ENGINEER),
    ("GET", "/v1/audit/verify", None, Role.ADMIN, Role.CLINICIAN),
    ("GET", "/v1/audit/events", None, Role.ADMIN, Role.RADIOLOGIST),
]


def audit_actions(client: TestClient) -> list[tuple[str, str]]:
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    return [(e["type"]["code"], e["entity"][0]["what"]["display"]) for e in events]


@pytest.mark.parametrize(("method", "path", "body", "allowed", "denied"), ROUTES)
def test_401_403_and_audit(client: TestClient, method: str, path: str, body, allowed: Role, denied: Role | None) -> None:  # noqa: ANN001
    anonymous = client.request(method, path, json=body)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.json()["code"] == "missing_credentials" and "WWW-Authenticate" in anonymous.headers
    if denied is not None:
        forbidden = client.request(method, path, json=body, headers=bearer(client, denied))
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "role_required"
    permitted = client.request(method, path, json=body, headers=bearer(client, allowed))
    assert permitted.status_code not in (401, 403)
    denials = [a for a in audit_actions(client) if a[0] == "access.denied"]
    assert len(denials) == (2 if denied is not None else 1)


def forged(client: TestClient, **changes: object) -> str:
    authenticator = client.app.state.cds.authenticator
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "x", "roles": ["admin"], "iss": authenticator.issuer, "aud": authenticator.audience,
              "iat": now, "exp": now + dt.timedelta(minutes=5)}  # fmt: skip
    key, algorithm, headers = authenticator._dev_key, "ES256", {"kid": "cds-dev"}
    for name, value in changes.items():
        if name == "key":
            key = value
        elif name == "alg":
            algorithm = value
        elif name == "kid":
            headers = {"kid": value}
        elif value is None:
            claims.pop(name)
        else:
            claims[name] = value
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong_aud", "wrong_iss", "no_exp", "other_key", "unknown_kid", "alg_none", "hs256", "garbage"],
)
def test_token_matrix_is_denied(client: TestClient, case: str) -> None:
    now = dt.datetime.now(dt.UTC)
    tokens = {
        "expired": lambda: forged(client, exp=now - dt.timedelta(seconds=5)),
        "wrong_aud": lambda: forged(client, aud="someone-else"),
        "wrong_iss": lambda: forged(client, iss="https://evil.example"),
        "no_exp": lambda: forged(client, exp=None),
        "other_key": lambda: forged(client, key=ec.generate_private_key(ec.SECP256R1())),
        "unknown_kid": lambda: forged(client, kid="rotated-away"),
        "alg_none": lambda: jwt.encode({"sub": "x", "roles": ["admin"]}, None, algorithm="none"),
        "hs256": lambda: forged(client, key="secret" * 8, alg="HS256"),
        "garbage": lambda: "not.a.jwt",
    }
    response = client.get("/v1/audit/verify", headers={"Authorization": f"Bearer {tokens[case]()}"})
    assert response.status_code == 401, case
    assert response.json()["code"] in ("invalid_token", "token_expired")


def test_patient_scoped_token_cannot_read_another_patients_result(client: TestClient) -> None:
    created = client.post("/v1/risk/pce", json={"inputs": PCE_INPUTS, "subject": "Patient/1"},
                          headers=bearer(client, Role.CLINICIAN))  # fmt: skip
    result_id = created.json()["result_id"]
    own = client.get(f"/v1/results/{result_id}", headers=bearer(client, Role.CLINICIAN, patient="1"))
    other = client.get(f"/v1/results/{result_id}", headers=bearer(client, Role.CLINICIAN, patient="2"))
    assert own.status_code == 200 and other.status_code == 403 and other.json()["code"] == "patient_scope"
    scoring_other = client.post("/v1/risk/pce", json={"inputs": PCE_INPUTS, "subject": "Patient/1"},
                                headers=bearer(client, Role.CLINICIAN, patient="2"))  # fmt: skip
    assert scoring_other.status_code == 403


def test_api_keys(client: TestClient) -> None:
    database = client.app.state.cds.database
    with database.session() as session:
        key = create_api_key(session, "batch-scorer", [Role.CLINICIAN])
    assert client.get("/v1/risk", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/v1/audit/verify", headers={"X-API-Key": key}).status_code == 403
    wrong = key[:-3] + ("aaa" if not key.endswith("aaa") else "bbb")
    for bad in (wrong, "cds_unknown.secret", "nonsense"):
        assert client.get("/v1/risk", headers={"X-API-Key": bad}).status_code == 401


def test_refuses_to_start_without_authentication(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ConfigurationError) as err:
        create_app(Settings(data_dir=tmp_path))
    assert err.value.code == "auth_not_configured"
    assert create_app(Settings(data_dir=tmp_path, api_keys_only=True)).title == "cds"


def test_dev_token_route_exists_only_in_dev_mode(tmp_path) -> None:  # noqa: ANN001
    with TestClient(create_app(Settings(data_dir=tmp_path, api_keys_only=True))) as production:
        assert production.post("/v1/dev/token", json={"roles": ["admin"]}).status_code == 404


def test_audit_cursor_beyond_the_sequence_column_is_a_422_not_a_crash(client: TestClient) -> None:
    headers = bearer(client, Role.ADMIN)  # found by the OpenAPI fuzz test; the column is 32-bit on PostgreSQL
    for too_big in (2**31, 2**63):
        assert client.get(f"/v1/audit/events?after={too_big}", headers=headers).status_code == 422
    assert client.get(f"/v1/audit/events?after={2**31 - 1}", headers=headers).json() == []


@pytest.mark.parametrize(("changes", "code"), [
    ({"dev_mode": True, "api_keys_only": True}, "dev_mode_with_production_auth"),
    ({"dev_mode": True, "jwt_jwks_file": "jwks.json", "jwt_issuer": "https://idp"}, "dev_mode_with_production_auth"),
    ({"api_keys_only": True, "hooks_clients_file": "clients.json"}, "public_url_required"),
])
def test_unsafe_mixtures_refuse_to_start(tmp_path, changes: dict, code: str) -> None:  # noqa: ANN001
    with pytest.raises(ConfigurationError) as err:
        create_app(Settings(data_dir=tmp_path, **changes))
    assert err.value.code == code


def test_outside_dev_mode_the_hooks_audience_never_follows_the_host_header(tmp_path) -> None:  # noqa: ANN001
    from cds.serving.api.routes.cds_hooks import base_url

    class Request:  # what base_url reads of a request
        base_url = "http://attacker.example/"

    production = create_app(Settings(data_dir=tmp_path, api_keys_only=True)).state.cds
    assert base_url(Request(), production) == ""  # type: ignore[arg-type]  # no audience: every EHR call is 401
    development = create_app(Settings(data_dir=tmp_path / "dev", dev_mode=True)).state.cds
    assert base_url(Request(), development) == "http://attacker.example"  # type: ignore[arg-type]
