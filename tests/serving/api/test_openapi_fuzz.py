"""Schemathesis against the service's own OpenAPI document: generated requests never produce a server error.

Bounded: a fixed number of examples per operation, no shrinking of the whole run, loopback only (in-process ASGI).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings

pytestmark = pytest.mark.slow


def _app(root: Path):  # noqa: ANN202
    app = create_app(Settings(dev_mode=True, data_dir=root, job_workers=0))
    state = app.state.cds
    state.database.migrate()
    state.engine.load_models()
    return app


@schemathesis.serializer("multipart/related")
def _multipart_related(ctx: object, value: object) -> bytes:
    """STOW-RS bodies: the generated value (bytes or text) as one application/dicom part."""
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"--fuzz\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n--fuzz--\r\n"


_ROOT = Path(__import__("tempfile").mkdtemp(prefix="cds-fuzz-"))
APP = _app(_ROOT)
TOKEN = APP.state.cds.authenticator.mint_dev_token("fuzz", list(Role), ttl_s=3600)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
