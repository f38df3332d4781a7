"""Engine and sessions for SQLite (the embedded default) or PostgreSQL, and schema migration."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from cds.errors import BackendUnavailableError
from cds.store.group_commit import GroupCommit

T = TypeVar("T")

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
            writers = _WriterQueue()
            event.listen(self.engine, "begin", writers.begin)
            event.listen(self.engine, "commit", writers.end)
            event.listen(self.engine, "rollback", writers.end)
            event.listen(self.engine.pool, "checkin", writers.returned)  # a transaction that ended otherwise
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.group_commit = GroupCommit(self.session)

    def write(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` committed together with other threads' writes; its value once durable.

        For writes that release results: see :mod:`cds.store.group_commit`.
        """
        return self.group_commit.run(work)

    def migrate(self, revision: str = "head", *, site: str | None = None) -> None:
        """Bring the schema to ``revision`` (the newest by default); rows without a site go to ``site`` if given."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        if site is not None:
            from cds.store.sites import adopt_unsited

            with self.session() as session:
                adopt_unsited(session, site)

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
        """Commit the writes waiting, then dispose of pooled connections."""
        self.group_commit.close()
        self.engine.dispose()


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    connection.isolation_level = None  # the driver emits no BEGIN of its own; _sqlite_begin_immediate does
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class _WriterQueue:
    """Every SQLite transaction takes the write lock when it starts, the process's threads in turn.

    SQLite allows one writer; a deferred transaction that reads first and writes later can fail when another
    writer committed in between, and a read-modify-write of the audit chain head must not interleave. Taking the
    lock up front (``BEGIN IMMEDIATE``) serialises transactions in the embedded default (PostgreSQL uses row locks
    instead). Within one process the threads first queue on a lock, so they are served in turn rather than by
    SQLite's busy handler, which polls with sleeps of up to 100 ms and leaves some waiting for seconds; another
    process (or a thread that waited :data:`QUEUE_TIMEOUT_S`) still meets the busy handler.
    """

    QUEUE_TIMEOUT_S = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holder: Any = None  # the DBAPI connection whose transaction holds the lock

    def begin(self, connection: Any) -> None:
        """Queue for the lock, then take SQLite's write lock."""
        dbapi = connection.connection.dbapi_connection
        if self._lock.acquire(timeout=self.QUEUE_TIMEOUT_S):
            self._holder = dbapi
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._release(dbapi)
            raise

    def end(self, connection: Any) -> None:
        """The transaction ended (commit or rollback): the next thread's turn."""
        self._release(connection.connection.dbapi_connection)

    def returned(self, dbapi: Any, _record: Any) -> None:
        """A connection went back to the pool: whatever its transaction did, it holds no turn any more."""
        self._release(dbapi)

    def _release(self, dbapi: Any) -> None:
        if self._holder is dbapi and dbapi is not None:
            self._holder = None
            self._lock.release()
