"""Early-warning scores as a time series: the trend rule's baseline is the lowest score in the window only, of the
patient's scores at the same site only, and the migration carries the scores released before the table existed; on
SQLite and PostgreSQL."""

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


def _row(id_: str, patient: str, family: str, score: float, hours_ago: float, site: str = "ward") -> ScoreRow:
    at = T - dt.timedelta(hours=hours_ago)
    return ScoreRow(id=id_, patient=patient, family=family, score=score, band=None, category=None, observed_at=at,
                    released_at=at, site=site)  # fmt: skip


def test_the_lowest_score_counts_only_within_the_window_and_never_the_new_one(url: str) -> None:
    database = Database(url)
    database.migrate()
    with database.session() as session:
        for row in (_row("old", "Patient/a", "news2", 0, 30), _row("day", "Patient/a", "news2", 2, 20),
                    _row("now", "Patient/a", "news2", 1, 0), _row("qsofa", "Patient/a", "qsofa", 0, 1),
                    _row("other", "Patient/b", "news2", 0, 1), _row("later", "Patient/a", "news2", 0, -1),
                    _row("clinic", "Patient/a", "news2", 0, 2, site="clinic-b")):  # another site's "Patient/a"
            scores.add(session, row)
    ward = ["ward"]
    with database.session() as session:
        start = T - dt.timedelta(hours=24)
        assert scores.lowest(session, "Patient/a", "news2", start, T, excluding="now", site="ward") == 2  # not b's
        assert scores.lowest(session, "Patient/a", "news2", start, T, excluding="x", site="ward") == 1
        assert scores.lowest(session, "Patient/a", "news2", start, T, excluding="x", site="clinic-b") == 0
        assert scores.lowest(session, "Patient/c", "news2", start, T, excluding="x", site="ward") is None
        latest = scores.latest(session, ["Patient/a", "Patient/b"], start, sites=ward)
        assert {p: {f: r.id for f, r in rows.items()} for p, rows in latest.items()} == {
            "Patient/a": {"news2": "later", "qsofa": "qsofa"}, "Patient/b": {"news2": "other"}}
        assert [r.id for r in scores.series(session, "Patient/a", start, sites=ward)] == ["day", "qsofa", "now",
                                                                                          "later"]  # fmt: skip
        assert scores.series(session, "Patient/a", start, sites=ward)[0].observed_at == T - dt.timedelta(hours=20)
        assert [r.id for r in scores.series(session, "Patient/a", start, sites=["clinic-b"])] == ["clinic"]


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
    database.migrate(site="ward")  # the deployment's: older rows become its own
    with database.session() as session:
        rows = scores.series(session, "Patient/old", T - dt.timedelta(days=1), sites=["ward"])
        assert [(r.id, r.family, r.score, r.band, r.observed_at) for r in rows] == [
            ("n1", "news2", 6.0, "medium", T), ("q1", "qsofa", 2.0, "high", T)]  # not the PCE, not the unscored
