"""Which of the service's worker processes runs the services there must be one of.

The audit checkpointer (one writer of the checkpoint file), the outbox deliverer (each message sent once), the
engine metrics' daily roll-up and the DICOM node (one listener on its port) run in the process holding an exclusive
lock on ``data_dir/service.lock``.
The others try again every few seconds, so when that process ends (and its worker is restarted) another takes
over. Request handling and durable jobs (claimed row by row in the database) run in every process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)
RETRY_S = 5.0


class Leadership:
    """Holds the lock at ``path`` when it can and calls ``on_lead`` once it does.

    Args:
        path: The lock file (made when absent).
        on_lead: Starts the single-instance services; called in the thread that took the lock.
        retry_s: How often a process without the lock tries again.
    """

    def __init__(self, path: Path, on_lead: Callable[[], None], *, retry_s: float = RETRY_S) -> None:
        self.path, self.on_lead, self.retry_s = path, on_lead, retry_s
        self._handle: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def leading(self) -> bool:
        """Whether this process holds the lock."""
        return self._handle is not None

    def start(self) -> None:
        """Take the lock now if it is free (``on_lead``'s error raised here); otherwise keep trying in a thread."""
        if self._try():
            return
        self._thread = threading.Thread(target=self._wait_for_lead, name="cds-leadership", daemon=True)
        self._thread.start()

    def stop(self, on_resign: Callable[[], None] | None = None) -> None:
        """Stop trying; if leading, call ``on_resign`` (stop the services) and only then give the lock up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.retry_s + 1)
        if self._handle is None:
            return
        try:
            if on_resign is not None:
                on_resign()
        finally:
            os.close(self._handle)  # closing the file releases the lock
            self._handle = None

    def _wait_for_lead(self) -> None:
        while not self._stop.wait(self.retry_s):
            try:
                if self._try():
                    return
            except Exception:  # the services could not start here: give the lock up and try again later
                log.exception("the single-instance services did not start in process %d", os.getpid())

    def _try(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            return False
        try:
            self.on_lead()
        except BaseException:
            os.close(handle)  # not leading after all: another process may
            raise
        self._handle = handle
        log.info("process %d runs the single-instance services", os.getpid())
        return True
