"""The workspace shell over HTTP (no browser): static files under /ui, their security headers, the shell's
configuration, and GET /v1/me."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.serving.ui import STATIC
from cds.settings import Settings
from tests.serving.api.conftest import bearer


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(dev_mode=True, data_dir=tmp_path, job_workers=0))) as test_client:
        yield test_client


def test_the_shell_is_served_without_credentials_and_with_a_strict_policy(client: TestClient) -> None:
    redirect = client.get("/ui", follow_redirects=False)
    assert redirect.status_code in (307, 308) and redirect.headers["location"].endswith("/ui/")
    index = client.get("/ui/")
    assert index.status_code == 200 and '<script type="module" src="app.js">' in index.text
    policy = index.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy and "img-src 'self' blob:" in policy
    assert index.headers["x-content-type-options"] == "nosniff"
    modules = sorted(f"modules/{path.name}" for path in (STATIC / "modules").glob("*.js"))
    assert len(modules) >= 20  # every module of the workspace, however many there are
    for module in ("app.js", *modules):
        script = client.get(f"/ui/{module}")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"], module
    assert client.get("/ui/styles.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/../cds.db").status_code == 404
    assert client.get("/ui/%2e%2e/cds.db").status_code == 404


def test_the_shell_learns_dev_mode_and_roles_from_its_configuration(client: TestClient, tmp_path: Path) -> None:
    config = client.get("/ui/config.json").json()
    assert config["dev_mode"] is True and config["roles"] == [r.value for r in Role]
    assert config["language"] is None  # CDS_LANGUAGE unset: the user's or the browser's language decides (i18n.js)
    production = create_app(Settings(dev_mode=False, api_keys_only=True, data_dir=tmp_path / "prod", job_workers=0,
                                     language="zh-CN"))  # fmt: skip
    with TestClient(production) as other:
        assert other.get("/ui/config.json").json()["dev_mode"] is False
        assert other.get("/ui/config.json").json()["language"] == "zh-CN"  # when the browser names neither
        assert other.post("/v1/dev/token", json={"roles": ["admin"]}).status_code == 404


def test_me_names_the_caller_and_the_roles_the_server_recognises(client: TestClient) -> None:
    assert client.get("/v1/me").status_code == 401
    me = client.get("/v1/me", headers=bearer(client, Role.RADIOLOGIST, Role.ADMIN, subject="dr-me")).json()
    assert me == {"subject": "dr-me", "roles": ["admin", "radiologist"], "patient": None, "via": "jwt",
                  "site": "default", "hub_site": None}  # a token without a site claim: this deployment's
    scoped = client.get("/v1/me", headers=bearer(client, Role.CLINICIAN, patient="Patient/7")).json()
    assert scoped["roles"] == ["clinician"] and scoped["patient"] == "Patient/7"
