"""Schemathesis against the service's own OpenAPI document, with every check it has: no server error, no status,
content type or header the document does not declare, 405 with the right ``Allow``, auth that is not ignored,
invalid data refused and valid data accepted.

Cases are derandomized: the same each run, so the verdict does not depend on luck (a new case is a new test). Valid
data is not required to be accepted where the body is free-form FHIR or CDS Hooks JSON: JSON Schema cannot say "a
Bundle with exactly one Patient", "a Bundle a member signed" or "no NUL character", so schema-valid Bundles are
refused (422) with the mapper's reason, as they should be. Bounded: a fixed number of examples per operation,
loopback only (ASGI).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings

pytestmark = pytest.mark.slow
STOW = ("POST", "/dicomweb/studies")
FREE_FORM_JSON = {("POST", "/v1/risk/panel"), ("POST", "/v1/risk/{score}/fhir"), ("POST", "/v1/observations"),
                  ("POST", "/cds-services/{service_id}"), ("POST", "/cds-services/{service_id}/feedback"),
                  ("POST", "/v1/registries/{condition}"), ("POST", "/v1/consortium/shared-results")}


def _app(root: Path):  # noqa: ANN202
    app = create_app(Settings(dev_mode=True, data_dir=root, job_workers=0))
    state = app.state.cds
    state.database.migrate()
    state.engine.load_models()
    return app


@schemathesis.serializer('multipart/related; type="application/dicom"')
def _multipart_related(ctx: object, value: object) -> bytes:
    """STOW-RS bodies: the generated value (bytes or text) as one application/dicom part."""
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"--fuzz\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--fuzz--\r\n"


_ROOT = Path(__import__("tempfile").mkdtemp(prefix="cds-fuzz-"))
APP = _app(_ROOT)
TOKEN = APP.state.cds.authenticator.mint_dev_token("fuzz", list(Role), ttl_s=3600)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)  # the same cases each run
def test_every_check(case: schemathesis.Case) -> None:
    key = (case.method.upper(), case.path)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if key == STOW:
        headers["Content-Type"] = 'multipart/related; type="application/dicom"; boundary=fuzz'
    excluded = [positive_data_acceptance] if key in FREE_FORM_JSON else []
    case.call_and_validate(headers=headers, excluded_checks=excluded)
