"""DICOM results go back to the site whose data they are: each destination serves the sites it names (none: this
deployment's own), so a clinic's pre-read results and the hub's signed report of its referred study are queued to
the clinic's PACS only, never to the hub's or another clinic's; a site with no destination keeps its results (a
warning naming the site, no patient data); the destinations' shape and residency are checked at start-up."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydantic
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from cds.services.dicom_sender import queue_results
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.serving.engine import build_engine
from cds.settings import Settings
from cds.store.tables import AuditEventRow, OutboxRow
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

STUDY = "1.2.826.0.1.3680043.10.1.77"
DESTINATIONS: list[dict[str, Any]] = [  # nobody listens: these tests look at what is queued, not at what arrives
    {"name": "hub-pacs", "kind": "dimse", "host": "127.0.0.1", "port": 1104, "ae_title": "HUB"},
    {"name": "clinic-a-pacs", "kind": "dimse", "host": "127.0.0.1", "port": 1105, "ae_title": "CLINICA",
     "sites": ["clinic-a"]},
    {"name": "clinic-b-vna", "kind": "dicomweb", "url": "http://127.0.0.1:1106/dicom-web", "sites": ["clinic-b"]},
]  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_url") if request.param == "postgresql" else None


def _queued(session: Any, study: str) -> set[tuple[str, str]]:
    """(outbox destination, result file name) of the study's DICOM messages."""
    rows = session.scalars(select(OutboxRow).where(OutboxRow.topic == "dicom",
                                                   OutboxRow.about == f"ImagingStudy/{study}"))  # fmt: skip
    return {(row.destination, Path(json.loads(row.payload)["file"]).name) for row in rows}


def test_results_are_queued_only_to_the_destinations_of_their_site(
        tmp_path: Path, database_url: str | None, caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    engine = build_engine(Settings(data_dir=tmp_path / "data", database_url=database_url, site="hub",
                                   dicom_destinations=DESTINATIONS))  # fmt: skip
    engine.database.migrate()
    sr, seg = tmp_path / "sr.dcm", tmp_path / "seg.dcm"
    now = dt.datetime.now(dt.UTC)
    try:
        with engine.database.session() as session:
            sent = {
                site: queue_results(session, engine.settings, [sr, seg], study_uid=f"{STUDY}.{i}", site=site, now=now)
                for i, site in enumerate(["clinic-a", "clinic-b", "hub", ""])
            }
        with caplog.at_level(logging.WARNING, logger="cds.services.dicom_sender"), engine.database.session() as s:
            unserved = queue_results(s, engine.settings, [sr], study_uid=f"{STUDY}.9", site="clinic-c", now=now)
        with engine.database.session() as session:
            queued = {i: _queued(session, f"{STUDY}.{i}") for i in (0, 1, 2, 3, 9)}
    finally:
        engine.close()
    assert sent == {"clinic-a": ["clinic-a-pacs"], "clinic-b": ["clinic-b-vna"], "hub": ["hub-pacs"],
                    "": ["hub-pacs"]}  # "": the deployment's own site  # fmt: skip
    assert queued[0] == {("dicom:clinic-a-pacs", "sr.dcm"), ("dicom:clinic-a-pacs", "seg.dcm")}
    assert queued[1] == {("dicom:clinic-b-vna", "sr.dcm"), ("dicom:clinic-b-vna", "seg.dcm")}
    assert queued[2] == queued[3] == {("dicom:hub-pacs", "sr.dcm"), ("dicom:hub-pacs", "seg.dcm")}
    assert unserved == [] and queued[9] == set()  # a site with no destination: nothing leaves
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "cds.services.dicom_sender"]
    assert "clinic-c" in warning and STUDY not in warning and "sr.dcm" not in warning


def test_a_single_site_configuration_sends_as_before(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", dicom_destinations=[DESTINATIONS[0]])  # site "default"
    (pacs,) = settings.dicom_destinations
    assert pacs.sites == () and pacs.serves("default", home="default") and not pacs.serves("clinic-a", home="default")


@pytest.mark.parametrize("sites", ["clinic-a", ["clinic a"], [""], [1], {"clinic-a": True}])
def test_sites_of_an_unknown_shape_are_refused_at_start_up(tmp_path: Path, sites: object) -> None:
    with pytest.raises(pydantic.ValidationError, match=r"'clinic-a-pacs': sites must be a list of site codes"):
        Settings(data_dir=tmp_path / "data", dicom_destinations=[DESTINATIONS[1] | {"sites": sites}])


def test_sites_are_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_DICOM_DESTINATIONS", json.dumps(DESTINATIONS))
    settings = Settings(data_dir=tmp_path / "data", site="hub")
    sites = [(d.name, d.sites) for d in settings.dicom_destinations]
    assert sites == [("hub-pacs", ()), ("clinic-a-pacs", ("clinic-a",)), ("clinic-b-vna", ("clinic-b",))]


def test_residency_still_applies_to_a_clinics_destination(tmp_path: Path) -> None:
    abroad = DESTINATIONS[:2] + [DESTINATIONS[2] | {"url": "https://vna.clinic-b.example/dicom-web"}]
    with pytest.raises(pydantic.ValidationError, match="clinic-b-vna"):
        Settings(data_dir=tmp_path / "data", site="hub", dicom_destinations=abroad, allowed_destinations=["127.0.0.1"])


@pytest.fixture
def hub(tmp_path: Path, database_url: str | None) -> Iterator[TestClient]:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=database_url, preread_saliency_grid=2,
                        ct_model="", site="hub", hub_site="hub", outbox_interval_s=3600,
                        dicom_destinations=DESTINATIONS)  # fmt: skip
    with TestClient(create_app(settings)) as client:
        yield client


def _store(client: TestClient, path: Path, headers: dict[str, str]) -> dict[str, Any]:
    content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    stored = client.post("/dicomweb/studies", content=multipart_body([path.read_bytes()]),
                         headers=headers | {"Content-Type": content_type})  # fmt: skip
    status = wait_for_job(client, stored.headers["Location"], headers)
    assert status["state"] == "done", status
    return status


def test_the_signed_report_of_a_referred_study_goes_to_the_referring_clinics_pacs_only(
        hub: TestClient, tmp_path: Path) -> None:  # fmt: skip
    clinic = bearer(hub, Role.RADIOLOGIST, subject="dr-clinic", site="clinic-a")
    reader = bearer(hub, Role.RADIOLOGIST, subject="dr-hub", site="hub")
    image = render(256, 9, 0, findings={"Effusion"})[0]
    status = _store(hub, write_radiograph(tmp_path / "a.dcm", image, patient_id="CLINIC-A-9"), clinic)
    job_id, outcome = status["id"], status["result"]["outcomes"][0]
    own = _store(hub, write_radiograph(tmp_path / "h.dcm", image, patient_id="HUB-1"), reader)
    assert hub.post("/v1/referrals", json={"job_id": job_id}, headers=clinic).status_code == 201
    base = f"/v1/preread/{job_id}/{outcome['uid']}"
    for finding in hub.get(f"{base}/view", headers=reader).json()["findings"]:
        assert hub.post(f"{base}/feedback", json={"label": finding["label"], "verdict": "accepted"},
                        headers=reader).status_code == 201  # fmt: skip
    signed = hub.post(f"{base}/signatures", json={"impression": "右侧少量胸腔积液。"}, headers=reader)
    assert signed.status_code == 201, signed.text
    with hub.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        clinics = _queued(session, outcome["study_uid"])
        hubs = _queued(session, own["result"]["outcomes"][0]["study_uid"])
        signing = session.scalars(select(AuditEventRow).where(AuditEventRow.action == "imaging.report.sign")).one()
    assert {destination for destination, _ in clinics} == {"dicom:clinic-a-pacs"}  # not the hub's, not clinic B's
    assert ("dicom:clinic-a-pacs", "signed-report-sr.dcm") in clinics and len(clinics) >= 2  # + the AI's own
    assert {destination for destination, _ in hubs} == {"dicom:hub-pacs"}  # the hub's own study: its own PACS
    assert json.loads(signing.detail)["sent_to"] == ["clinic-a-pacs"]
