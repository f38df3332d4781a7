"""Engine-call metrics kept in the database, so the dashboard's history survives restarts and spans every process.

Each process counts what it does in memory (:class:`PendingMetrics`: engine calls per model ``name:version`` with
items, seconds and a latency histogram; scored requests per method and outcome) and appends what it counted since
its last flush as rows of :class:`~cds.store.tables.EngineMetricRow` (:meth:`PendingMetrics.flush`, every few
seconds and at shutdown). Rows are only ever added, so several API processes and workers never contend for one
row and a lost flush costs at most its own few seconds; :func:`engine_history` adds them up over a time window.
So that a year of flushes every ten seconds does not become millions of rows, the leading process rolls each
finished day's rows up into one row per day and series (:func:`roll_up`: the same totals, stamped at the day's
start, which is where the dashboard's windows begin; a day at a time, and never a day another process rolled up
meanwhile) and drops days older than the retention.
Prometheus (``/metrics``) keeps its per-process view beside this.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cds.store.tables import EngineMetricRow

ENGINE = "engine"
SCORED = "scored"


@dataclass
class CallTally:
    """Engine calls of one model: how many, items, seconds, and calls per latency bucket (upper bound -> calls).

    The last bucket's bound is ``inf``; buckets are not cumulative.
    """

    calls: int = 0
    items: int = 0
    seconds: float = 0.0
    buckets: dict[float, int] = field(default_factory=dict)

    def add(self, other: CallTally) -> None:
        """Add ``other``'s counts to these."""
        self.calls += other.calls
        self.items += other.items
        self.seconds += other.seconds
        for bound, count in other.buckets.items():
            self.buckets[bound] = self.buckets.get(bound, 0) + count

    def cumulative(self) -> list[tuple[float, float]]:
        """``(upper bound, cumulative calls)`` in increasing order, as Prometheus histograms give them."""
        total, out = 0, []
        for bound in sorted(self.buckets):
            total += self.buckets[bound]
            out.append((bound, float(total)))
        return out


def _encode(buckets: dict[float, int]) -> str:
    return json.dumps([[None if math.isinf(b) else b, n] for b, n in sorted(buckets.items()) if n])


def _decode(text: str) -> dict[float, int]:
    try:
        pairs = json.loads(text or "[]")
    except ValueError:
        return {}
    return {math.inf if b is None else float(b): int(n) for b, n in pairs}


class PendingMetrics:
    """What this process counted since its last flush (thread-safe: backends report from their own threads).

    Args:
        bounds: Upper bounds of the latency buckets in seconds (``inf`` is added).
    """

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = (*sorted(bounds), math.inf)
        self._lock = threading.Lock()
        self._calls: dict[str, CallTally] = {}
        self._scored: dict[tuple[str, str], int] = {}

    def add_call(self, model: str, items: int, seconds: float) -> None:
        """One engine call of ``model`` (``name:version``) on ``items`` items taking ``seconds``."""
        bound = next(b for b in self.bounds if seconds <= b)
        with self._lock:
            tally = self._calls.setdefault(model, CallTally())
            tally.add(CallTally(1, items, seconds, {bound: 1}))

    def add_scored(self, method: str, outcome: str) -> None:
        """One scored request of ``method`` that ended in ``outcome``."""
        with self._lock:
            self._scored[(method, outcome)] = self._scored.get((method, outcome), 0) + 1

    def _drain(self) -> tuple[dict[str, CallTally], dict[tuple[str, str], int]]:
        with self._lock:
            calls, scored = self._calls, self._scored
            self._calls, self._scored = {}, {}
        return calls, scored

    def _restore(self, calls: dict[str, CallTally], scored: dict[tuple[str, str], int]) -> None:
        with self._lock:
            for model, tally in calls.items():
                self._calls.setdefault(model, CallTally()).add(tally)
            for key, count in scored.items():
                self._scored[key] = self._scored.get(key, 0) + count

    def flush(self, open_session: Callable[[], AbstractContextManager[Session]]) -> int:
        """Append what was counted since the last flush, in a transaction of its own; returns the rows written.

        ``open_session()`` opens a session that commits on leaving (:meth:`cds.store.db.Database.session`). If
        writing fails, the counts are kept for the next flush.
        """
        calls, scored = self._drain()
        if not calls and not scored:
            return 0
        try:
            with open_session() as session:
                return _write(session, calls, scored, dt.datetime.now(dt.UTC))
        except BaseException:
            self._restore(calls, scored)
            raise


def _write(session: Session, calls: dict[str, CallTally], scored: dict[tuple[str, str], int],
           now: dt.datetime) -> int:  # fmt: skip
    rows = [EngineMetricRow(recorded_at=now, kind=ENGINE, model=model, outcome="", calls=t.calls, items=t.items,
                            seconds=t.seconds, buckets=_encode(t.buckets)) for model, t in sorted(calls.items())]
    rows += [EngineMetricRow(recorded_at=now, kind=SCORED, model=method, outcome=outcome, calls=count, items=0,
                             seconds=0.0, buckets="") for (method, outcome), count in sorted(scored.items())]
    session.add_all(rows)
    return len(rows)


@dataclass(frozen=True)
class History:
    """Engine calls per model and scored requests per (method, outcome) over a window."""

    calls: dict[str, CallTally]
    scored: dict[tuple[str, str], int]


def engine_history(session: Session, *, since: dt.datetime | None = None) -> History:
    """The flushed metrics since ``since`` (aware; ``None``: all kept), added up."""
    row = EngineMetricRow
    query = select(row.kind, row.model, row.outcome, row.calls, row.items, row.seconds, row.buckets)
    if since is not None:
        query = query.where(row.recorded_at >= since)
    calls: dict[str, CallTally] = {}
    scored: dict[tuple[str, str], int] = {}
    for kind, model, outcome, count, items, seconds, buckets in session.execute(query):
        if kind == ENGINE:
            calls.setdefault(model, CallTally()).add(CallTally(count, items, seconds, _decode(buckets)))
        elif kind == SCORED:
            scored[(model, outcome)] = scored.get((model, outcome), 0) + count
    return History(calls, scored)


def _day_start(moment: dt.datetime) -> dt.datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC
    return aware.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class RolledUpMeanwhileError(Exception):
    """Some of a day's rows were gone when they were to be deleted: another process rolled the day up meanwhile."""


def roll_up(open_session: Callable[[], AbstractContextManager[Session]], now: dt.datetime, *,
            retention_days: int) -> tuple[int, int]:  # fmt: skip
    """Merge each finished day's rows into one per (day, kind, model, outcome); drop days past ``retention_days``.

    Totals (calls, items, seconds, latency buckets) are kept exactly. Each day is merged in a transaction of its own
    (a long history never holds one long write), and only if every row read is still there to delete: a day that
    another process (an old leader still finishing its round) rolled up meanwhile is rolled back, never counted
    twice. Returns ``(rows merged away, rows dropped)``.
    """
    today = _day_start(now)
    row = EngineMetricRow
    with open_session() as session:
        cutoff = today - dt.timedelta(days=retention_days)
        dropped = len(session.scalars(select(row.id).where(row.recorded_at < cutoff)).all())
        session.execute(delete(row).where(row.recorded_at < cutoff))
        rows: dict[dt.datetime, int] = {}
        series: dict[dt.datetime, set[tuple[str, str, str]]] = {}
        for when, kind, model, outcome in session.execute(
                select(row.recorded_at, row.kind, row.model, row.outcome).where(row.recorded_at < today)):
            day = _day_start(when)
            rows[day] = rows.get(day, 0) + 1
            series.setdefault(day, set()).add((kind, model, outcome))
    merged_away = 0
    for day in sorted(rows):
        if rows[day] == len(series[day]):
            continue  # already one row per series
        try:
            with open_session() as session:
                merged_away += _merge_day(session, day)
        except RolledUpMeanwhileError:
            continue
    return merged_away, dropped


def _merge_day(session: Session, day: dt.datetime) -> int:
    row = EngineMetricRow
    in_day = (row.recorded_at >= day, row.recorded_at < day + dt.timedelta(days=1))
    found = session.scalars(select(row).where(*in_day)).all()
    merged: dict[tuple[str, str, str], CallTally] = {}
    for each in found:
        tally = CallTally(each.calls, each.items, each.seconds, _decode(each.buckets))
        merged.setdefault((each.kind, each.model, each.outcome), CallTally()).add(tally)
    last = max(each.id for each in found)
    deleted = session.execute(delete(row).where(*in_day, row.id <= last),
                              execution_options={"synchronize_session": False})  # fmt: skip
    if getattr(deleted, "rowcount", -1) != len(found):
        raise RolledUpMeanwhileError(day.date().isoformat())  # the session rolls back: nothing merged twice
    session.add_all([EngineMetricRow(recorded_at=day, kind=kind, model=model, outcome=outcome, calls=t.calls,
                                     items=t.items, seconds=t.seconds,
                                     buckets=_encode(t.buckets) if kind == ENGINE else "")
                     for (kind, model, outcome), t in sorted(merged.items())])  # fmt: skip
    return len(found) - len(merged)
