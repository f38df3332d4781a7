"""Service fixtures: the app on SQLite and on the real PostgreSQL at 127.0.0.1:5432, and token helpers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=url, max_json_bytes=64_000,
                    language="en")  # cards in English unless a test asks otherwise (the default follows the site)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def bearer(client: TestClient, *roles: Role, patient: str | None = None, subject: str = "dr-test",
           site: str | None = None) -> dict[str, str]:  # fmt: skip
    token = client.app.state.cds.authenticator.mint_dev_token(subject, list(roles), patient=patient, site=site)
    return {"Authorization": f"Bearer {token}"}
