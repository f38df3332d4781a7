"""Jobs written before the typed job data (revision 0006) read through the typed models after the upgrade."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from cds.results.jobs import PathologyPayload, PrereadPayload, PrereadReport
from cds.store import jobs
from cds.store.db import Database

OLD_JOB = ("INSERT INTO jobs (id, kind, state, attempts, max_attempts, payload, result, error, subject, created_by, "
           "role, created_at, updated_at, worker) VALUES (:id, :kind, :state, 1, 3, :payload, :result, :error, '', "
           "'dr', 'radiologist', '2026-11-01 10:00:00', '2026-11-01 10:00:00', '')")
OLD_INSTANCE = ("INSERT INTO dicom_instances (sop_instance_uid, sop_class_uid, study_uid, series_uid, modality, "
                "series_description, patient_id, patient_name, study_date, accession_number, origin, path, created_at)"
                " VALUES (:sop, '1.2.840.10008.5.1.4.1.1.1', :study, :series, 'CR', '', 'P', '', '', '', "
                "'stored', :path, '2026-11-01 10:00:00')")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def legacy(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A database at revision 0005 holding jobs in the shapes written before 0006."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else f"sqlite:///{tmp_path}/l.db"
    database = Database(url)
    database.migrate("0005")
    stored = {"1.5.1": str(tmp_path / "d" / "1.5.1.dcm"), "1.5.2": str(tmp_path / "d" / "odd-name.dcm")}
    outcome = {"kind": "radiograph", "study_uid": "1.5", "series_uid": "1.5.1", "uid": "1.5.1", "model": "m:1.0.0",
               "input_sha256": "0" * 64, "summary": [{"label": "Mass", "probability": 0.9, "threshold": 0.5,
                                                      "positive": True}]}  # fmt: skip
    rows = [
        ("done", "preread", "done", {"files": list(stored.values()), "output": "/o", "model": "chest",
                                     "ct_model": None, "actor": "dr", "role": "radiologist"},
         {"outcomes": [outcome], "refusals": [{"source": "odd-name.dcm", "reason": "wrong_view", "message": "LL"}]},
         ""),
        ("refused", "preread", "failed", {"files": [stored["1.5.1"]], "output": "/o", "model": "chest",
                                          "ct_model": None, "actor": "dr", "role": "radiologist"}, None,
         "implausible_image: 1.5.1.dcm: not a chest radiograph"),
        ("broken", "pathology", "failed", {"file": "/s.tif", "output": "/o", "model": "p", "actor": "dr",
                                           "role": "pathologist", "subject": "Patient/1"}, None,
         "RuntimeError: out of memory"),
    ]
    with database.engine.begin() as connection:
        for sop, path in stored.items():
            connection.execute(text(OLD_INSTANCE), {"sop": sop, "study": "1.5", "series": "1.5.1", "path": path})
        for job_id, kind, state, payload, result, error in rows:
            connection.execute(text(OLD_JOB), {"id": job_id, "kind": kind, "state": state,
                                               "payload": json.dumps(payload), "error": error,
                                               "result": json.dumps(result) if result else ""})  # fmt: skip
    database.migrate()
    return database


def test_old_jobs_read_through_the_typed_models(legacy: Database) -> None:
    with legacy.session() as session:
        done, refused, broken = (jobs.read_job(session, i, kind=k) for i, k in (
            ("done", "preread"), ("refused", "preread"), ("broken", "pathology")))  # fmt: skip
    payload = done.payload_as(PrereadPayload)
    assert [(i.sop_instance_uid, i.study_uid, i.path.name) for i in payload.instances] == [
        ("1.5.1", "1.5", "1.5.1.dcm"), ("1.5.2", "1.5", "odd-name.dcm")]  # from the index, whatever the file name
    report = done.outcome_as(PrereadReport)
    assert report.outcomes[0].findings[0].label == "Mass"
    assert report.refusals[0].sop_instance_uids == ("1.5.2",)  # the refusal now names the instance it covers
    assert (refused.state, refused.error_code, refused.refused) == ("failed", "implausible_image", True)
    assert (broken.error_code, broken.refused) == ("RuntimeError", False)  # a failure, not a refusal
    assert broken.payload_as(PathologyPayload).model == "p" and broken.created_by == "dr"


def test_the_upgrade_goes_back_down(legacy: Database) -> None:
    from alembic import command
    from alembic.config import Config

    from cds.store.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with legacy.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    with legacy.engine.connect() as connection:
        payload, = connection.execute(text("SELECT payload FROM jobs WHERE id = 'done'")).one()
    assert json.loads(payload)["files"][1].endswith("odd-name.dcm") and json.loads(payload)["actor"] == "dr"


@pytest.mark.parametrize("dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_the_migrations_build_the_schema_the_tables_declare(dialect: str, request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:  # fmt: skip
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cds.store.tables import Base

    url = request.getfixturevalue("postgres_url") if dialect == "postgresql" else f"sqlite:///{tmp_path}/s.db"
    database = Database(url)
    database.migrate()
    with database.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []  # a column, index or unique constraint in tables.py that no migration makes, or back
