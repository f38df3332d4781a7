"""Early-warning scores as a time series: the trend rule's baseline is the lowest score in the window only, and the
migration carries the scores released before the table existed; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import text

from cds.store import scores
from cds.store.db import Database
from cds.store.tables import ScoreRow

T = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/s.db"


def _row(id_: str, patient: str, family: str, score: float, hours_ago: float) -> ScoreRow:
    at = T - dt.timedelta(hours=hours_ago)
    return ScoreRow(id=id_, patient=patient, family=family, score=score, band=None, category=None, observed_at=at,
                    released_at=at)  # fmt: skip


def test_the_lowest_score_counts_only_within_the_window_and_never_the_new_one(url: str) -> None:
    database = Database(url)
    database.migrate()
    with database.session() as session:
        for row in (_row("old", "Patient/a", "news2", 0, 30), _row("day", "Patient/a", "news2", 2, 20),
                    _row("now", "Patient/a", "news2", 1, 0), _row("qsofa", "Patient/a", "qsofa", 0, 1),
                    _row("other", "Patient/b", "news2", 0, 1), _row("later", "Patient/a", "news2", 0, -1)):
            scores.add(session, row)
    with database.session() as session:
        start = T - dt.timedelta(hours=24)
        assert scores.lowest(session, "Patient/a", "news2", start, T, excluding="now") == 2  # not 30 h ago, not b's
        assert scores.lowest(session, "Patient/a", "news2", start, T, excluding="x") == 1
        assert scores.lowest(session, "Patient/c", "news2", start, T, excluding="x") is None
        latest = scores.latest(session, ["Patient/a", "Patient/b"], start)
        assert {p: {f: r.id for f, r in rows.items()} for p, rows in latest.items()} == {
            "Patient/a": {"news2": "later", "qsofa": "qsofa"}, "Patient/b": {"news2": "other"}}
        assert [r.id for r in scores.series(session, "Patient/a", start)] == ["day", "qsofa", "now", "later"]
        assert scores.series(session, "Patient/a", start)[0].observed_at == T - dt.timedelta(hours=20)  # aware


def test_scores_released_before_the_table_existed_are_carried_over(url: str) -> None:
    database = Database(url)
    database.migrate("0010")
    insert = text("INSERT INTO results (id, kind, subject, method, input_sha256, payload, created_by, created_at) "
                  "VALUES (:id, 'risk', :subject, :method, '', :payload, 't', :at)")
    with database.session() as session:
        for id_, method, payload in (("n1", "news2@2017", {"score": 6, "band": "medium", "category": "urgent"}),
                                     ("q1", "qsofa@2016", {"score": 2, "band": "high"}),
                                     ("p1", "pce@2013", {"score": 0.07}),
                                     ("n2", "news2@2017", {"score": None})):
            session.execute(insert, {"id": id_, "subject": "Patient/old", "method": method,
                                     "payload": json.dumps(payload), "at": T})
    database.migrate()
    with database.session() as session:
        rows = scores.series(session, "Patient/old", T - dt.timedelta(days=1))
        assert [(r.id, r.family, r.score, r.band, r.observed_at) for r in rows] == [
            ("n1", "news2", 6.0, "medium", T), ("q1", "qsofa", 2.0, "high", T)]  # not the PCE, not the unscored
