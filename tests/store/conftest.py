"""Store-test fixtures: a migrated database on SQLite and on PostgreSQL (files may override it with their data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds.store.db import Database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """An empty, migrated database of each kind."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/a.db"
    db = Database(url)
    db.migrate()
    return db
