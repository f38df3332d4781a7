"""Rolling the engine metrics of finished days up: one row per day and series, the same totals, old days dropped."""

from __future__ import annotations

import datetime as dt
import math
import types

import pytest
from sqlalchemy import delete, select

from cds.store.db import Database
from cds.store.engine_metrics import (
    ENGINE,
    SCORED,
    CallTally,
    RolledUpMeanwhileError,
    _merge_day,
    _write,
    engine_history,
    roll_up,
)
from cds.store.tables import EngineMetricRow

NOW = dt.datetime(2026, 12, 7, 10, 30, tzinfo=dt.UTC)



def _flush(db: Database, when: dt.datetime, model: str, calls: int, seconds: float, bound: float) -> None:
    with db.session() as session:
        _write(session, {model: CallTally(calls, calls * 2, seconds, {bound: calls})}, {("pce", "scored"): 1}, when)


def _rows(db: Database) -> list[tuple[dt.datetime, str, str]]:
    with db.session() as session:
        found = session.execute(select(EngineMetricRow.recorded_at, EngineMetricRow.kind, EngineMetricRow.model))
        return sorted((when.astimezone(dt.UTC), kind, model) for when, kind, model in found)


def test_finished_days_become_one_row_per_series_with_the_same_totals(database: Database) -> None:
    yesterday = NOW - dt.timedelta(days=1)
    day = yesterday.replace(hour=0, minute=0)  # where the dashboard's windows start
    for hour, seconds, bound in ((1, 0.02, 0.025), (9, 0.3, 0.5), (23, 0.01, 0.01)):
        _flush(database, yesterday.replace(hour=hour), "chest:2.0.0", 3, seconds, bound)
    _flush(database, yesterday.replace(hour=5), "lesion:1.1.0", 1, 0.004, 0.005)
    _flush(database, NOW.replace(hour=8), "chest:2.0.0", 2, 0.05, 0.05)  # today: left as flushed
    with database.session() as session:
        before = engine_history(session)
        since_yesterday = engine_history(session, since=day)
    merged, dropped = roll_up(database.session, NOW, retention_days=30)
    assert (merged, dropped) == (9 - 4, 0)  # 8 rows of yesterday (4 engine, 4 scored) -> 3; today's 2 stay
    assert _rows(database) == sorted([(day, ENGINE, "chest:2.0.0"), (day, ENGINE, "lesion:1.1.0"),
                                      (day, SCORED, "pce"), (NOW.replace(hour=8), ENGINE, "chest:2.0.0"),
                                      (NOW.replace(hour=8), SCORED, "pce")])  # fmt: skip
    with database.session() as session:
        after = engine_history(session)
        window = engine_history(session, since=day)
    for history, reference in ((after, before), (window, since_yesterday)):
        assert history.scored == reference.scored == {("pce", "scored"): 5}
        for model, tally in reference.calls.items():
            rolled = history.calls[model]
            assert (rolled.calls, rolled.items, rolled.buckets) == (tally.calls, tally.items, tally.buckets)
            assert math.isclose(rolled.seconds, tally.seconds)
    assert roll_up(database.session, NOW, retention_days=30) == (0, 0)  # nothing more to merge


def test_days_past_the_retention_are_dropped(database: Database) -> None:
    _flush(database, NOW - dt.timedelta(days=40), "chest:2.0.0", 1, 0.02, 0.025)
    _flush(database, NOW - dt.timedelta(days=10), "chest:2.0.0", 1, 0.02, 0.025)
    assert roll_up(database.session, NOW, retention_days=30) == (0, 2)  # the old day's engine and scored rows
    assert {when.date() for when, _, _ in _rows(database)} == {(NOW - dt.timedelta(days=10)).date()}


class _Meddling:
    """A session whose rows, once read, lose one to another process before they are deleted."""

    def __init__(self, session: object, database: Database) -> None:
        self.session, self.database = session, database

    def scalars(self, statement: object) -> object:
        found = self.session.scalars(statement).all()  # type: ignore[attr-defined]
        with self.database.session() as other:  # another leader merged the day first
            gone = next(each for each in found if each.kind == ENGINE)
            other.execute(delete(EngineMetricRow).where(EngineMetricRow.id == gone.id))
        return types.SimpleNamespace(all=lambda: found)

    def __getattr__(self, name: str) -> object:
        return getattr(self.session, name)


@pytest.mark.postgres  # (SQLite takes its write lock when a transaction begins: two cannot interleave there)
def test_a_day_rolled_up_meanwhile_by_another_process_is_left_to_it(postgres_url: str) -> None:
    database = Database(postgres_url)
    database.migrate()
    yesterday = NOW - dt.timedelta(days=1)
    for hour in (1, 2, 3):
        _flush(database, yesterday.replace(hour=hour), "chest:2.0.0", 1, 0.02, 0.025)
    with pytest.raises(RolledUpMeanwhileError), database.session() as session:
        _merge_day(_Meddling(session, database), yesterday.replace(hour=0, minute=0))  # type: ignore[arg-type]
    # rolled back: no merged row was added (none at the day's start), and the rows left are as they were
    hours = [when.hour for when, _, _ in _rows(database)]
    assert len(hours) == 5 and 0 not in hours  # one engine row deleted meanwhile; no merged row
    with database.session() as session:
        history = engine_history(session)
    assert history.calls["chest:2.0.0"].calls == 2 and history.scored == {("pce", "scored"): 3}
