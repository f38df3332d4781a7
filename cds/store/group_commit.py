"""Group commit: the writes of many request threads committed together, each answered once its write is durable.

A request that releases results (a risk score, a CDS Hooks call's cards) hands its write to :meth:`GroupCommit.run`
and waits. One writer thread takes every write waiting at that moment, runs each in its own savepoint of one
transaction, and commits once: one flush to disk and one lock of the audit chain's head for the whole group
instead of one each. The rule that nothing is released before its audit record is durable holds as before: a
caller gets its return value only after the commit has returned, so a crash during a group commit loses only
writes whose callers were never answered. A write that fails rolls back its own savepoint (its audit events
with it) and raises in its own caller; the others in the group are unaffected. A commit that fails fails every
write in the group.

Each process has its own writer; the audit chain stays one chain because each group's commit locks the head
(:mod:`cds.store.audit`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from cds.errors import BackendUnavailableError
from cds.store.audit import savepoint

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class _Write(Generic[T]):
    """One caller's write, and what came of it."""

    work: Callable[[Session], T]
    done: threading.Event = field(default_factory=threading.Event)
    value: Any = None
    error: BaseException | None = None


class GroupCommit:
    """The writer of one database (see the module docstring).

    Args:
        sessions: Opens a session in a transaction that commits when the block ends (``Database.session``).
        max_writes: The most writes in one group.
        wait_s: How long a caller waits for its group before giving up (503, ``database_busy``).
    """

    def __init__(self, sessions: Callable[[], Any], *, max_writes: int = 256, wait_s: float = 60.0) -> None:
        self._sessions = sessions
        self.max_writes = max_writes
        self.wait_s = wait_s
        self._queue: queue.SimpleQueue[_Write[Any] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self.groups = 0  # committed groups, and the writes in them (for tests and metrics)
        self.writes = 0

    def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in a transaction shared with other callers; its value once that commit is durable.

        Raises:
            Whatever ``work`` raised (its part rolled back alone), or the commit's error (nothing of the group was
            written); BackendUnavailableError ``database_busy`` when the group did not commit within ``wait_s``.
        """
        self._ensure_writer()
        write: _Write[T] = _Write(work)
        self._queue.put(write)
        if not write.done.wait(self.wait_s):
            raise BackendUnavailableError("the database did not commit in time", code="database_busy")
        if write.error is not None:
            raise write.error
        value: T = write.value
        return value

    @property
    def waiting(self) -> int:
        """Writes queued for the next group."""
        return self._queue.qsize()

    def close(self) -> None:
        """Commit what is waiting, then stop the writer."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(self.wait_s)

    def _ensure_writer(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._write_forever, name="cds-group-commit", daemon=True)
                self._thread.start()

    def _write_forever(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stop = False
            while len(group) < self.max_writes:
                try:
                    write = self._queue.get_nowait()
                except queue.Empty:
                    break
                if write is None:
                    stop = True
                    break
                group.append(write)
            self._commit(group)
            if stop:
                return

    def _commit(self, group: list[_Write[Any]]) -> None:
        alone = len(group) == 1  # no savepoint needed: if the write fails, the transaction is rolled back whole
        try:
            with self._sessions() as session:
                for write in group:
                    try:
                        if alone:
                            write.value = write.work(session)
                        else:
                            with savepoint(session):
                                write.value = write.work(session)
                    except Exception as exc:  # noqa: BLE001 - the caller's own error, raised in its thread
                        write.error = exc
                        if alone:
                            raise
        except BaseException as exc:  # noqa: BLE001 - the commit failed: nothing of the group is durable
            unanswered = [write for write in group if write.error is None]
            if unanswered:
                log.warning("group commit of %d writes failed: %s", len(group), type(exc).__name__)
            for write in unanswered:
                write.error = exc
        else:
            self.groups += 1
            self.writes += len(group)
        finally:
            for write in group:
                write.done.set()
