"""Engine and sessions for SQLite (the embedded default) or PostgreSQL, and schema migration."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from cds.errors import BackendUnavailableError

MIGRATIONS = Path(__file__).with_name("migrations")


class Database:
    """One database: engine, session factory, migrations, and a reachability check.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///data/cds.db`` or ``postgresql+psycopg://user@127.0.0.1/test``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        options: dict[str, Any] = {"pool_pre_ping": True}
        if self.is_sqlite:
            database = url.split("///", 1)[-1]
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            options["connect_args"] = {"check_same_thread": False, "timeout": 30}
        self.engine: Engine = create_engine(url, **options)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _sqlite_begin_immediate)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` (the newest by default)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        with self._sessions() as session, session.begin():
            yield session

    def ping(self) -> None:
        """Raise :class:`BackendUnavailableError` when the database cannot be reached."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any driver error means unreachable
            raise BackendUnavailableError(f"database unreachable: {type(exc).__name__}", code="database_down") from exc

    def close(self) -> None:
        """Dispose of pooled connections."""
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    connection.isolation_level = None  # the driver emits no BEGIN of its own; _sqlite_begin_immediate does
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    """Every SQLite transaction takes the write lock when it starts.

    SQLite allows one writer; a deferred transaction that reads first and writes later can fail when another
    writer committed in between, and a read-modify-write of the audit chain head must not interleave. Taking the
    lock up front serialises transactions in the embedded default (PostgreSQL uses row locks instead).
    """
    connection.exec_driver_sql("BEGIN IMMEDIATE")
