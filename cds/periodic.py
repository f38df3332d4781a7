"""A round of background work every few seconds, in a daemon thread, for as long as the process serves.

The outbox's deliveries, the engine metrics' flushes and the audit chain's checkpoints each run this way: a round that
fails (the database is down) is logged by the exception's type alone (never a message that could hold patient data)
and the next round tries again; stopping waits for the round in progress and, where asked, runs a last one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``work`` every ``interval_s`` seconds in a daemon thread named ``name`` until :meth:`stop`.

    Args:
        name: The thread's name (``cds-outbox``, ...), also naming the work in the log.
        work: One round.
        interval_s: Seconds between the end of one round and the start of the next.
        final: Run one more round when stopped (what was counted last gets flushed).
        join_s: How long :meth:`stop` waits for a round in progress.
    """

    def __init__(self, name: str, work: Callable[[], object], interval_s: float, *, final: bool = False,
                 join_s: float = 15.0) -> None:  # fmt: skip
        self.name, self.work, self.interval_s, self.final, self.join_s = name, work, interval_s, final, join_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def run_once(self) -> None:
        """One round now; a failure is logged, not raised."""
        try:
            self.work()
        except Exception as exc:  # noqa: BLE001 - a database outage: the next round tries again
            log.error("%s round failed: %s", self.name, type(exc).__name__)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()

    def start(self) -> None:
        """Begin the rounds."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the round in progress (and a last one when ``final``)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.join_s)
        if self.final:
            self.run_once()
