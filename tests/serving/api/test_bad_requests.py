"""Malformed requests get a 4xx with a reason, never a 5xx: NUL characters, unknown FHIR types, chunked oversize
bodies, a token signed for a key of another type, a method the route does not take."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer

INPUTS = {"age": 55, "sex": "female", "race": "white", "total_cholesterol": 213, "hdl_cholesterol": 50,
          "systolic_bp": 120, "bp_treated": False, "smoker": False, "diabetes": False}
PATIENT = {"resourceType": "Patient", "id": "p1", "gender": "male", "birthDate": "1960-01-01"}


def test_a_nul_character_anywhere_is_a_422_not_a_database_error(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    for method, url, body in (("POST", "/v1/risk/pce", {"inputs": INPUTS, "subject": "Patient/a\u0000b"}),
                              ("POST", "/v1/risk/pce", {"inputs": INPUTS | {"sex": "fem\u0000ale"}}),
                              ("GET", "/v1/results/ab%00c", None), ("GET", "/v1/risk?x=%00", None)):
        answer = client.request(method, url, json=body, headers=headers)
        assert answer.status_code == 422 and answer.json()["code"] == "nul_character", (url, answer.text)
    assert client.post("/v1/risk/pce", json={"inputs": INPUTS}, headers=headers).status_code == 200  # and on


def test_an_unknown_fhir_resource_type_is_named_in_a_422(client: TestClient) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": PATIENT}, {"resource": {"resourceType": "Unicorn", "id": "u"}}]}
    for url in ("/v1/risk/panel", "/v1/risk/pce/fhir"):
        answer = client.post(url, json=bundle, headers=bearer(client, Role.CLINICIAN))
        assert answer.status_code == 422 and answer.json()["code"] == "unknown_resource_type", answer.text
        assert "Unicorn" in answer.json()["detail"]


def test_a_chunked_body_over_the_cap_is_a_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": {"age": 55, "pad": "'
        for _ in range(100):
            yield b"x" * 1000  # 100 kB, over the 64 kB cap these tests run with, and no Content-Length
        yield b'"}}'

    answer = client.post("/v1/risk/pce", content=chunks(), headers=bearer(client, Role.CLINICIAN)
                         | {"Content-Type": "application/json"})  # fmt: skip
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"


def test_a_token_naming_a_key_of_another_type_is_a_401_and_audited(client: TestClient) -> None:
    now = dt.datetime.now(dt.UTC)
    claims = {"sub": "intruder", "iss": "cds-dev", "aud": "cds", "iat": now, "exp": now + dt.timedelta(hours=1),
              "roles": ["admin"]}
    token = jwt.encode(claims, rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256",
                       headers={"kid": "cds-dev"})  # the dev key is an EC key: PyJWT raises TypeError  # fmt: skip
    answer = client.get("/v1/risk", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    assert [json.loads(e["outcomeDesc"]) for e in events if e["type"]["code"] == "access.denied"] == [
        {"reason": "invalid_token"}]


def test_a_method_a_route_does_not_take_is_a_405_with_allow(client: TestClient) -> None:
    answer = client.delete("/v1/risk", headers=bearer(client, Role.CLINICIAN))
    assert answer.status_code == 405 and answer.headers["allow"] == "GET"
    assert answer.json()["code"] == "method_not_allowed"


def test_refused_uploads_leave_no_files(tmp_path) -> None:  # noqa: ANN001
    import numpy as np

    from cds.serving.api.app import create_app
    from cds.settings import Settings
    from training.data.dicom_files import write_radiograph
    from training.data.stow_sample import BOUNDARY, multipart_body

    data = tmp_path / "data"
    settings = Settings(dev_mode=True, data_dir=data, job_workers=0, max_pending_jobs=1, max_upload_bytes=200_000)
    study = write_radiograph(tmp_path / "cr.dcm", np.zeros((256, 256))).read_bytes()
    with TestClient(create_app(settings)) as app:
        headers = bearer(app, Role.ADMIN)
        csv = {"Content-Type": "text/csv"}
        assert app.post("/v1/risk/pce/jobs", content=b"age\n50\n", headers=headers | csv).status_code == 202
        full = [  # the one pending job fills the queue: every upload is refused after it was streamed to disk
            app.post("/v1/risk/pce/jobs", content=b"age\n60\n", headers=headers | csv),
            app.post("/v1/pathology/jobs?filename=s.png", content=b"png" * 100, headers=headers),
            app.post("/dicomweb/studies", content=multipart_body([study]), headers=headers | {
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}),
        ]  # fmt: skip
        assert [(r.status_code, r.json()["code"]) for r in full] == [(503, "job_queue_full")] * 3

        def chunks() -> Iterator[bytes]:
            for _ in range(300):
                yield b"x" * 1000

        cut = app.post("/v1/pathology/jobs?filename=s.tif", content=chunks(), headers=headers)
        assert cut.status_code == 413
    assert len(list((data / "uploads").glob("*.csv"))) == 1  # the queued cohort's file only
    assert not any((data / "pathology").iterdir()) and not any((data / "dicom").iterdir())
