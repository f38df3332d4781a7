"""Delivery of outbox messages to subscribers' REST hooks, with retries and backoff (see :mod:`cds.store.outbox`).

A message is POSTed as ``application/fhir+json`` with its id in ``X-Cds-Message-Id``; a 2xx answer delivers it,
anything else (an error status, a refused connection, a timeout) leaves it for a later attempt. A
:class:`Deliverer` thread runs :func:`deliver_due` every second while the service runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import NamedTuple

import httpx

from cds.services.engine import Engine
from cds.store import outbox

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0


class DeliveryReport(NamedTuple):
    """What one round did."""

    delivered: int
    failed: int


def deliver_due(engine: Engine, *, now: dt.datetime | None = None,
                client: httpx.Client | None = None) -> DeliveryReport:  # fmt: skip
    """Send every message due by ``now`` once; record each outcome."""
    now = now or dt.datetime.now(dt.UTC)
    with engine.database.session() as session:
        due = [(row.id, row.destination, row.payload) for row in outbox.claim_due(session, now)]
    if not due:
        return DeliveryReport(0, 0)
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_S)
    done = failed = 0
    try:
        for message_id, destination, payload in due:
            try:
                answer = http.post(destination, content=payload, headers={
                    "Content-Type": "application/fhir+json", "X-Cds-Message-Id": message_id})  # fmt: skip
                error = "" if answer.is_success else f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            with engine.database.session() as session:
                if error:
                    outbox.failed(session, message_id, now, error)
                    failed += 1
                else:
                    outbox.delivered(session, message_id, now)
                    done += 1
    finally:
        if own:
            http.close()
    if failed:
        log.warning("outbox: %d message(s) not delivered; retried with backoff", failed)
    return DeliveryReport(done, failed)


class Deliverer:
    """Runs :func:`deliver_due` every ``interval_s`` in a daemon thread while the service runs."""

    def __init__(self, engine: Engine, interval_s: float = 1.0) -> None:
        self.engine, self.interval_s = engine, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cds-outbox", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                deliver_due(self.engine)
            except Exception as exc:  # noqa: BLE001 - a database outage: try again next round
                log.error("outbox delivery round failed: %s", type(exc).__name__)

    def start(self) -> None:
        """Begin delivering."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(15)
