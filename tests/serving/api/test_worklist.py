"""Worklist, viewer data, rendered pictures and finding feedback: order, filters, paging, validation, persistence,
audit, roles and patient scope.

The listing tests write jobs and index entries straight into the store (no model runs; SQLite and PostgreSQL);
the viewer and feedback tests run one real pre-read of a generated radiograph and CT series (SQLite).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom import Dataset
from sqlalchemy import select

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.audit import pseudonym, verify_chain
from cds.store.dicom_index import STORED, index_dataset
from cds.store.tables import FindingFeedbackRow, JobRow
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.ct_volumes import generate_case
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

NOW = dt.datetime(2026, 11, 20, 12, 0, 0)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=url, job_workers=0)  # nothing runs


def _instance(client: TestClient, folder: Path, *, sop: str, study: str, patient: str, modality: str) -> str:
    ds = Dataset()
    ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID = sop, "1.2.840.10008.5.1.4.1.1.1", study
    ds.SeriesInstanceUID, ds.PatientID, ds.Modality = f"{study}.1", patient, modality
    path = folder / f"{sop}.dcm"
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        index_dataset(session, ds, path, origin=STORED)
    return str(path)


def _job(client: TestClient, *, minutes: int, state: str, files: list[str], result: dict[str, Any] | None = None,
         error: str = "", kind: str = "preread", refused: bool = False) -> str:
    job_id = f"00000000-0000-0000-0000-{minutes:012d}"
    created = NOW + dt.timedelta(minutes=minutes)
    instances = [{"path": f, "sop_instance_uid": Path(f).stem, "study_uid": ""} for f in files]  # as STOW stores them
    payload = {"instances": instances, "output": "/nonexistent", "model": "chest-xray-demo"}
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        session.add(JobRow(id=job_id, kind=kind, state=state, attempts=1, max_attempts=3, payload=json.dumps(payload),
                           result=json.dumps(result) if result else "", error=error,
                           error_code=error.partition(":")[0], refused=refused, subject="", created_by="t",
                           role="radiologist", created_at=created, updated_at=created, lease_until=None, worker=""))
    return job_id


def _outcome(study: str, uid: str, findings: list[tuple[str, float, float]]) -> dict[str, Any]:
    summary = [{"label": label, "probability": p, "threshold": t, "positive": p >= t} for label, p, t in findings]
    return {"kind": "radiograph", "study_uid": study, "series_uid": f"{study}.1", "uid": uid,
            "model": "chest-xray-demo:2.0.0", "input_sha256": "0" * 64, "summary": summary}


@pytest.fixture
def listed(client: TestClient, tmp_path: Path) -> dict[str, str]:
    """Seven pre-read jobs in every state (and a risk job that must not show)."""
    f = tmp_path
    a = _instance(client, f, sop="1.1.1", study="1.1", patient="P1", modality="CR")
    b = _instance(client, f, sop="1.2.1", study="1.2", patient="P2", modality="CR")
    c = [_instance(client, f, sop=f"1.3.{k}", study="1.3", patient="P3", modality="CT") for k in (1, 2)]
    d = _instance(client, f, sop="1.4.1", study="1.4", patient="P4", modality="CR")
    e = _instance(client, f, sop="1.5.1", study="1.5", patient="P5", modality="DX")
    g1 = _instance(client, f, sop="1.6.1", study="1.6", patient="P6", modality="CR")
    g2 = _instance(client, f, sop="1.7.1", study="1.7", patient="P7", modality="MR")
    return {
        "critical": _job(client, minutes=0, state="done", files=[a], result={"outcomes": [_outcome(
            "1.1", "1.1.1", [("Effusion", 0.6, 0.2), ("Mass", 0.3, 0.1), ("Nodule", 0.01, 0.1)])], "refusals": []}),
        "routine": _job(client, minutes=20, state="done", files=[b], result={"outcomes": [_outcome(
            "1.2", "1.2.1", [("Effusion", 0.1, 0.2)])], "refusals": []}),
        "queued": _job(client, minutes=10, state="queued", files=c),
        "refused": _job(client, minutes=30, state="failed", files=[d],
                        error="implausible_image: 1.4.1.dcm: this is not a chest radiograph", refused=True),
        "failed": _job(client, minutes=40, state="failed", files=[e], error="RuntimeError: out of memory"),
        "mixed": _job(client, minutes=5, state="done", files=[g1, g2], result={
            "outcomes": [_outcome("1.6", "1.6.1", [("Mass", 0.5, 0.1)])],
            "refusals": [{"source": "1.7.1.dcm", "reason": "wrong_modality", "message": "no model for MR",
                          "sop_instance_uids": ["1.7.1"]}]}),
        "risk": _job(client, minutes=50, state="done", files=[], kind="risk_file", result={"rows": 1}),
    }


def _items(client: TestClient, query: str = "", role: Role = Role.RADIOLOGIST, **token: Any) -> list[dict[str, Any]]:
    answer = client.get(f"/v1/worklist{query}", headers=bearer(client, role, **token))
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


def test_worklist_lists_urgent_studies_first_then_newest(client: TestClient, listed: dict[str, str]) -> None:
    items = _items(client)
    order = [(i["job_id"], i["study_uid"]) for i in items]
    assert order == [(listed["mixed"], "1.6"), (listed["critical"], "1.1"),  # urgent findings, newest first
                     (listed["failed"], "1.5"), (listed["refused"], "1.4"), (listed["routine"], "1.2"),
                     (listed["queued"], "1.3"), (listed["mixed"], "1.7")]
    by_study = {i["study_uid"]: i for i in items}
    critical = by_study["1.1"]
    assert critical["positive_findings"] == 2 and critical["max_ratio"] == 3.0
    assert (critical["urgency"], critical["critical"]) == ("urgent", False)  # effusion and mass: urgent, not critical
    assert critical["urgency_findings"] == [{"label": "Effusion", "probability": 0.6, "model": "chest-xray-demo:2.0.0"},
                                            {"label": "Mass", "probability": 0.3, "model": "chest-xray-demo:2.0.0"}]
    assert {i["urgency"] for i in items if i["study_uid"] != "1.1"} == {"urgent", "none"}
    assert critical["patient_id"] == "P1" and critical["modalities"] == ["CR"] and critical["state"] == "done"
    assert critical["outcomes"] == [{"uid": "1.1.1", "kind": "radiograph", "model": "chest-xray-demo:2.0.0"}]
    assert critical["created_at"].endswith("+00:00")
    assert by_study["1.2"]["positive_findings"] == 0 and by_study["1.2"]["max_ratio"] == 0.5
    assert by_study["1.3"]["state"] == "queued" and by_study["1.3"]["modalities"] == ["CT"]
    assert by_study["1.3"]["patient_id"] == "P3" and by_study["1.3"]["outcomes"] == []
    assert (by_study["1.4"]["state"], by_study["1.4"]["refused_reasons"]) == ("refused", ["implausible_image"])
    assert (by_study["1.5"]["state"], by_study["1.5"]["refused_reasons"]) == ("failed", [])
    assert (by_study["1.7"]["state"], by_study["1.7"]["refused_reasons"]) == ("refused", ["wrong_modality"])
    assert by_study["1.7"]["patient_id"] == "P7" and by_study["1.7"]["modalities"] == ["MR"]
    assert by_study["1.6"]["state"] == "done"
    assert listed["risk"] not in {i["job_id"] for i in items}


def _study(client: TestClient, folder: Path, *, study: str, patient: str, date: str, accession: str = "",
           description: str = "") -> str:
    ds = Dataset()
    ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID = f"{study}.1.1", "1.2.840.10008.5.1.4.1.1.1", study
    ds.SeriesInstanceUID, ds.PatientID, ds.Modality, ds.StudyDate = f"{study}.1", patient, "CR", date
    ds.AccessionNumber, ds.StudyDescription = accession, description
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        index_dataset(session, ds, path, origin=STORED)
    return str(path)


def _verdict(client: TestClient, job: str, uid: str, actor: str) -> None:
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        session.add(FindingFeedbackRow(job_id=job, uid=uid, label="Effusion", verdict="accepted", comment="",
                                       model="chest-xray-demo:2.0.0", actor=actor, role="radiologist",
                                       created_at=NOW, site=""))  # fmt: skip


def test_only_a_confident_critical_label_makes_a_study_critical(client: TestClient, tmp_path: Path) -> None:
    """Five studies: a pneumothorax at 0.99 tops the list; an emphysema at 0.36 (3x its threshold) is routine."""
    thresholds = {"Pneumothorax": 0.124036, "Emphysema": 0.115587, "Effusion": 0.173385}

    def read(study: str, **probabilities: float) -> dict[str, Any]:
        findings = [(label, p, thresholds[label]) for label, p in probabilities.items()]
        return {"outcomes": [_outcome(study, f"{study}.1.1", findings)], "refusals": []}

    f = tmp_path
    _study(client, f, study="2.0", patient="PA", date="20240105")  # an earlier study of PA, never pre-read
    files = {study: _study(client, f, study=study, patient=f"P{study[-1]}" if study != "2.1" else "PA",
                           date="20261120", accession=f"ACC{study[-1]}", description=f"Chest {study}")
             for study in ("2.1", "2.2", "2.3", "2.4", "2.5")}  # fmt: skip
    jobs = {
        "pneumothorax": _job(client, minutes=100, state="done", files=[files["2.1"]],
                             result=read("2.1", Pneumothorax=0.99, Effusion=0.01)),
        "emphysema": _job(client, minutes=140, state="done", files=[files["2.2"]], result=read("2.2", Emphysema=0.36)),
        "nothing": _job(client, minutes=130, state="done", files=[files["2.3"]],
                        result=read("2.3", Pneumothorax=0.05, Emphysema=0.02, Effusion=0.1)),
        "effusion": _job(client, minutes=110, state="done", files=[files["2.4"]], result=read("2.4", Effusion=0.6)),
        "unsure": _job(client, minutes=120, state="done", files=[files["2.5"]],
                       result=read("2.5", Pneumothorax=0.3, Emphysema=0.9)),  # positive, below the critical 0.5
    }
    _verdict(client, jobs["effusion"], "2.4.1.1", "dr-colleague")  # read by a colleague at the same site
    _verdict(client, jobs["unsure"], "2.5.1.1", "dr-triage")  # read by the caller
    items = _items(client, subject="dr-triage")
    assert [i["study_uid"] for i in items] == ["2.1", "2.5", "2.4", "2.2", "2.3"]
    assert [(i["urgency"], i["critical"]) for i in items] == [
        ("critical", True), ("urgent", False), ("urgent", False), ("routine", False), ("none", False)]
    by_study = {i["study_uid"]: i for i in items}
    assert [f["label"] for f in by_study["2.1"]["urgency_findings"]] == ["Pneumothorax"]
    assert by_study["2.5"]["urgency_findings"] == [{"label": "Pneumothorax", "probability": 0.3,
                                                    "model": "chest-xray-demo:2.0.0"}]  # not the emphysema
    assert by_study["2.2"]["urgency_findings"][0]["label"] == "Emphysema" and by_study["2.3"]["urgency_findings"] == []
    first = by_study["2.1"]
    assert (first["study_date"], first["accession_number"], first["description"]) == ("20261120", "ACC1", "Chest 2.1")
    assert [i["priors"] for i in items] == [1, 0, 0, 0, 0]
    assert [(i["read"], i["read_by_caller"]) for i in items] == [
        (False, False), (True, True), (True, False), (False, False), (False, False)]
    other_site = _items(client, subject="dr-elsewhere", site="clinic-b")
    assert other_site == []  # another site's studies, read or not, are not its worklist


def test_worklist_filters_by_state_and_modality_and_pages(client: TestClient, listed: dict[str, str]) -> None:
    assert [i["study_uid"] for i in _items(client, "?state=refused")] == ["1.4", "1.7"]
    assert [i["study_uid"] for i in _items(client, "?state=queued&state=failed")] == ["1.5", "1.3"]
    assert [i["study_uid"] for i in _items(client, "?modality=ct")] == ["1.3"]
    assert [i["study_uid"] for i in _items(client, "?modality=CR&state=done")] == ["1.6", "1.1", "1.2"]
    headers = bearer(client, Role.ADMIN)
    page = client.get("/v1/worklist?limit=2&offset=2", headers=headers).json()
    assert (page["total"], page["limit"], page["offset"]) == (7, 2, 2)
    assert [i["study_uid"] for i in page["items"]] == ["1.5", "1.4"]
    assert client.get("/v1/worklist?offset=7", headers=headers).json()["items"] == []


def test_worklist_refuses_bad_filters(client: TestClient) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    bad_state = client.get("/v1/worklist?state=finished", headers=headers)
    assert bad_state.status_code == 422 and bad_state.json()["code"] == "invalid_request"
    assert bad_state.headers["content-type"] == "application/problem+json"
    for query in ("?modality=C1", "?limit=0", "?limit=500", "?offset=-1"):
        answer = client.get(f"/v1/worklist{query}", headers=headers)
        assert answer.status_code == 422 and answer.json()["code"] == "invalid_request", query


def test_worklist_is_audited_and_guarded(client: TestClient, listed: dict[str, str]) -> None:
    assert client.get("/v1/worklist").status_code == 401
    assert client.get("/v1/worklist", headers=bearer(client, Role.CLINICIAN)).json()["code"] == "role_required"
    _items(client, "?state=done&modality=CR", subject="dr-reader")
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    reads = [e for e in events if e["type"]["code"] == "imaging.worklist.read"]
    assert len(reads) == 1 and reads[0]["agent"][0]["who"]["display"] == "dr-reader"
    assert json.loads(reads[0]["outcomeDesc"]) == {"modality": "CR", "returned": 3, "state": ["done"]}
    denied = [e for e in events if e["type"]["code"] == "access.denied" and "/v1/worklist" in e["entity"][0]["what"]
              ["display"]]
    assert len(denied) == 2  # the 401 and the 403


def test_a_patient_scoped_token_sees_only_its_patient(client: TestClient, listed: dict[str, str]) -> None:
    assert [i["study_uid"] for i in _items(client, patient="Patient/P3")] == ["1.3"]
    assert _items(client, patient="Patient/nobody") == []


# --- viewer, pictures and feedback over a real pre-read --------------------------------------------------------


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, dict[str, Any]]]]:
    """One app with a pre-read of a radiograph with positive findings and of a small CT series."""
    root = tmp_path_factory.mktemp("worklist-reader")
    app = create_app(Settings(dev_mode=True, data_dir=root / "data", preread_saliency_grid=3))
    cr = write_radiograph(root / "cr.dcm", render(256, 5, 0, findings={"Cardiomegaly", "Effusion"})[0],
                          patient_id="SYNTH-W")
    ct = generate_case(31, 0).write_dicom(root / "ct")
    with TestClient(app) as client:
        headers = bearer(client, Role.RADIOLOGIST)
        content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        body = multipart_body([cr.read_bytes()] + [f.read_bytes() for f in ct])
        stored = client.post("/dicomweb/studies", content=body, headers=headers | {"Content-Type": content_type})
        assert stored.status_code == 200, stored.text
        status = wait_for_job(client, stored.headers["Location"], headers)
        assert status["state"] == "done", status
        outcomes = {o["kind"]: o | {"job_id": status["id"]} for o in status["result"]["outcomes"]}
        yield client, outcomes


def _base(outcome: dict[str, Any]) -> str:
    return f"/v1/preread/{outcome['job_id']}/{outcome['uid']}"


def _png(answer: Any) -> np.ndarray:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png" and answer.headers["cache-control"] == "no-store"
    return np.asarray(Image.open(io.BytesIO(answer.content)))


def test_the_view_shows_findings_against_thresholds_and_the_models_caveat(reader: Any) -> None:
    client, outcomes = reader
    view = client.get(f"{_base(outcomes['radiograph'])}/view",
                      headers=bearer(client, Role.RADIOLOGIST) | {"Accept-Language": "en-GB"}).json()
    assert view["kind"] == "radiograph" and view["patient_id"] == "SYNTH-W"
    # whose film it is, from its header: shown beside the image
    assert (view["patient_name"], view["patient_sex"], view["patient_birth_date"]) == ("SYNTHETIC IMAGE", "O", None)
    assert view["model"]["key"] == "chest-xray-demo:2.0.0" and view["model"]["not_for_diagnostic_use"] is True
    assert "Not a medical device" in view["model"]["intended_use"]
    chinese = client.get(f"{_base(outcomes['radiograph'])}/view", headers=bearer(client, Role.RADIOLOGIST)).json()
    assert "不是医疗器械" in chinese["model"]["intended_use"]  # no Accept-Language: the site's (a Chinese one here)
    assert len(view["findings"]) == 18
    for finding in view["findings"]:
        assert finding["ratio"] == pytest.approx(finding["probability"] / finding["threshold"])
    positives = {f["label"] for f in view["findings"] if f["positive"]}
    drawn = {f["label"] for f in view["findings"] if f["heatmap"]}
    assert drawn <= positives  # overlays exist for positive findings only
    result = client.get(f"{_base(outcomes['radiograph'])}/result.json", headers=bearer(client, Role.RADIOLOGIST)).json()
    notes = " ".join(result["result"]["warnings"])
    assert all(label in notes for label in positives - drawn) and ("no localisation" in notes) == bool(positives - drawn)
    assert view["image"] | {"min": 0, "max": 0} == {"width": 256, "height": 256, "slices": 1, "initial_slice": 0,
                                                     "window": 4096.0, "level": 2048.0, "min": 0, "max": 0,
                                                     "units": "", "sop_instance_uids": [outcomes["radiograph"]["uid"]]}
    ct = client.get(f"{_base(outcomes['ct'])}/view", headers=bearer(client, Role.ADMIN)).json()
    assert ct["kind"] == "ct" and ct["outlines"] is True and ct["findings"] == []
    assert ct["patient_name"] == "SYNTHETIC VOLUME"  # from the series' first slice
    assert ct["image"]["slices"] == 34 and ct["image"]["units"] == "HU" and ct["image"]["min"] == -1024
    assert len(set(ct["image"]["sop_instance_uids"])) == 34  # the slices the browser loads over WADO-RS, in order
    assert (ct["image"]["window"], ct["image"]["level"]) == (400.0, 40.0)
    assert 0 < ct["image"]["initial_slice"] < 33
    assert [(s["label"], s["segment"]) for s in ct["structures"]] == [
        ("liver", 1), ("spleen", 2), ("kidney_left", 3), ("kidney_right", 4)]
    assert ct["structures"][0]["colour"] == "#e6194b" and ct["structures"][0]["volume_ml"] > 0


def test_the_image_is_windowed_on_the_server(reader: Any) -> None:
    client, outcomes = reader
    headers, base = bearer(client, Role.RADIOLOGIST), _base(outcomes["radiograph"])
    default = _png(client.get(f"{base}/render/image.png", headers=headers))
    assert default.shape == (256, 256) and default.dtype == np.uint8
    same = _png(client.get(f"{base}/render/image.png?window=4096&level=2048", headers=headers))
    assert np.array_equal(default, same)
    narrow = _png(client.get(f"{base}/render/image.png?window=400&level=1500", headers=headers))
    assert (narrow == 0).mean() > (default == 0).mean() + 0.05  # a narrow window clips more of the image
    ct = _base(outcomes["ct"])
    first, middle = (_png(client.get(f"{ct}/render/image.png?slice={k}", headers=headers)) for k in (0, 17))
    assert first.shape == (128, 128) and not np.array_equal(first, middle)
    out_of_range = client.get(f"{ct}/render/image.png?slice=34", headers=headers)
    assert out_of_range.status_code == 422 and out_of_range.json()["code"] == "slice_out_of_range"
    assert client.get(f"{base}/render/image.png?window=0", headers=headers).status_code == 422


def test_heatmap_and_outline_layers(reader: Any) -> None:
    client, outcomes = reader
    headers, base = bearer(client, Role.RADIOLOGIST), _base(outcomes["radiograph"])
    positive = next(f["label"] for f in outcomes["radiograph"]["summary"] if f["positive"])
    layer = _png(client.get(f"{base}/render/heatmap.png", params={"label": positive}, headers=headers))
    assert layer.shape == (224, 224, 4)  # the model's grid, stretched over the image by the browser
    probability = next(f["probability"] for f in outcomes["radiograph"]["summary"] if f["label"] == positive)
    assert layer[..., 3].max() == round(255 * probability) and (layer[..., 3] == 0).any()  # as opaque as it is likely
    negative = next(f["label"] for f in outcomes["radiograph"]["summary"] if not f["positive"])
    missing = client.get(f"{base}/render/heatmap.png", params={"label": negative}, headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "heatmap_not_found"
    values = client.get(f"{base}/render/heatmap.f32", params={"label": positive}, headers=headers)
    assert values.status_code == 200 and values.headers["x-heatmap-shape"] == "224,224"
    assert values.headers["x-heatmap-floor"] == "0.05" and values.headers["x-heatmap-scale"] == "probability"
    grid = np.frombuffer(values.content, dtype="<f4").reshape(224, 224)  # the same map, for the browser to colour
    assert np.array_equal(np.round(255 * grid).astype(np.uint8)[grid > 0.05], layer[..., 3][grid > 0.05])
    assert client.get(f"{base}/render/heatmap.f32", params={"label": negative}, headers=headers).status_code == 404
    ct = _base(outcomes["ct"])
    outline = _png(client.get(f"{ct}/render/outline.png?slice=17", headers=headers))
    assert outline.shape == (128, 128, 4)
    drawn = outline[outline[..., 3] == 255][:, :3]
    assert len(drawn) > 20 and {tuple(c) for c in drawn} <= {(230, 25, 75), (60, 180, 75), (255, 225, 25),
                                                               (0, 130, 200)}
    none = client.get(f"{base}/render/outline.png", headers=headers)
    assert none.status_code == 404 and none.json()["code"] == "no_segmentation"


def test_heatmaps_are_on_the_fixed_probability_scale(reader: Any) -> None:
    client, outcomes = reader
    headers, base = bearer(client, Role.RADIOLOGIST), _base(outcomes["radiograph"])
    view = client.get(f"{base}/view", headers=headers).json()
    assert view["heatmap_scale"] == "probability" and view["heatmap_floor"] == 0.05
    drawn = [f for f in outcomes["radiograph"]["summary"] if f["positive"]]
    peaks = {}
    for finding in drawn:
        values = client.get(f"{base}/render/heatmap.f32", params={"label": finding["label"]}, headers=headers)
        if values.status_code == 404:  # a positive finding without localisation (said in the result's warnings)
            continue
        peaks[finding["label"]] = (float(np.frombuffer(values.content, dtype="<f4").max()), finding["probability"])
    assert len(peaks) >= 2, peaks  # an effusion and a threshold-level finding, on the same scale
    for peak, probability in peaks.values():  # never above the finding's probability, and reaching it
        assert probability * 0.999 <= peak <= probability + 1e-6, peaks
    low, high = min(peaks.values(), key=lambda p: p[1]), max(peaks.values(), key=lambda p: p[1])
    assert low[0] < high[0]  # the less likely finding is drawn fainter, not like a certain one


def test_heatmaps_written_before_the_probability_scale_are_marked_as_peak_normalised(reader: Any) -> None:
    client, outcomes = reader
    headers, base = bearer(client, Role.RADIOLOGIST), _base(outcomes["radiograph"])
    (result,) = [p for p in Path(client.app.state.cds.settings.data_dir).rglob("result.json")  # type: ignore[attr-defined]
                 if json.loads(p.read_text()).get("heatmap_scale")]
    saved = result.read_text()
    older = json.loads(saved)
    del older["heatmap_scale"]  # as a pre-read before the change wrote it
    result.write_text(json.dumps(older))
    try:
        view = client.get(f"{base}/view", headers=headers).json()
        assert view["heatmap_scale"] == "peak" and view["heatmap_floor"] == 0.2
        positive = next(f["label"] for f in outcomes["radiograph"]["summary"] if f["positive"])
        values = client.get(f"{base}/render/heatmap.f32", params={"label": positive}, headers=headers)
        assert values.headers["x-heatmap-scale"] == "peak" and values.headers["x-heatmap-floor"] == "0.2"
    finally:
        result.write_text(saved)


def test_feedback_is_validated_stored_listed_and_audited(reader: Any) -> None:
    client, outcomes = reader
    radiologist = bearer(client, Role.RADIOLOGIST, subject="dr-feedback")
    base = _base(outcomes["radiograph"])
    accepted = client.post(f"{base}/feedback", headers=radiologist,
                           json={"label": "Cardiomegaly", "verdict": "accepted", "comment": "  agree  "})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json() | {"id": 0, "created_at": ""} == {
        "id": 0, "job_id": outcomes["radiograph"]["job_id"], "uid": outcomes["radiograph"]["uid"],
        "label": "Cardiomegaly", "verdict": "accepted", "comment": "agree", "model": "chest-xray-demo:2.0.0",
        "actor": "dr-feedback", "created_at": ""}
    rejected = client.post(f"{base}/feedback", headers=radiologist, json={"label": "Effusion", "verdict": "rejected"})
    assert rejected.status_code == 201 and rejected.json()["comment"] == ""
    structure = client.post(f"{_base(outcomes['ct'])}/feedback", headers=bearer(client, Role.ADMIN),
                            json={"label": "liver", "verdict": "accepted", "comment": "x" * 1000})
    assert structure.status_code == 201  # a segmented structure is reviewed like a finding; 1000 characters fit

    listed = client.get(f"{base}/feedback", headers=radiologist).json()
    assert [(f["label"], f["verdict"]) for f in listed] == [("Effusion", "rejected"), ("Cardiomegaly", "accepted")]
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        rows = session.execute(select(FindingFeedbackRow).order_by(FindingFeedbackRow.id)).scalars().all()
        assert [(r.label, r.verdict, r.actor) for r in rows][:2] == [("Cardiomegaly", "accepted", "dr-feedback"),
                                                                     ("Effusion", "rejected", "dr-feedback")]
        assert verify_chain(session).ok
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    reviews = [e for e in events if e["type"]["code"] == "imaging.feedback"]
    assert len(reviews) == 3
    detail = json.loads(reviews[0]["outcomeDesc"])
    assert detail == {"comment_chars": 5, "job": outcomes["radiograph"]["job_id"], "label": "Cardiomegaly",
                      "uid": pseudonym(outcomes["radiograph"]["uid"]), "verdict": "accepted"}  # the comment stays out
    assert reviews[0]["entity"][0]["what"]["display"] == f"ImagingStudy/{outcomes['radiograph']['study_uid']}"


@pytest.mark.parametrize(("body", "code"), [
    ({"label": "Pneumonitis", "verdict": "accepted"}, "unknown_finding"),
    ({"label": "Mass", "verdict": "accepted", "comment": "y" * 1001}, "comment_too_long"),
    ({"label": "Mass", "verdict": "maybe"}, "invalid_request"),
    ({"label": "", "verdict": "accepted"}, "invalid_request"),
    ({"verdict": "accepted"}, "invalid_request"),
])  # fmt: skip
def test_bad_feedback_is_refused_with_a_code(reader: Any, body: dict[str, Any], code: str) -> None:
    client, outcomes = reader
    answer = client.post(f"{_base(outcomes['radiograph'])}/feedback", json=body,
                         headers=bearer(client, Role.RADIOLOGIST))
    assert answer.status_code == 422 and answer.json()["code"] == code, answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def test_unknown_jobs_outcomes_and_unfinished_jobs(reader: Any) -> None:
    client, outcomes = reader
    headers, job = bearer(client, Role.RADIOLOGIST), outcomes["radiograph"]["job_id"]
    unknown_job = client.get(f"/v1/preread/00000000-0000-0000-0000-000000000000/{outcomes['ct']['uid']}/view",
                             headers=headers)
    assert unknown_job.status_code == 404 and unknown_job.json()["code"] == "job_not_found"
    unknown_uid = client.post(f"/v1/preread/{job}/1.2.3/feedback", headers=headers,
                              json={"label": "Mass", "verdict": "accepted"})
    assert unknown_uid.status_code == 404 and unknown_uid.json()["code"] == "outcome_not_found"
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        row = session.get(JobRow, job)
        queued = JobRow(**{c.name: getattr(row, c.name) for c in JobRow.__table__.columns} | {
            "id": "11111111-1111-1111-1111-111111111111", "state": "running", "result": ""})
        session.add(queued)
    busy = client.get(f"/v1/preread/{queued.id}/{outcomes['radiograph']['uid']}/feedback", headers=headers)
    assert busy.status_code == 422 and busy.json()["code"] == "job_not_done"


def test_viewer_and_feedback_need_a_radiology_role_and_the_right_patient(reader: Any) -> None:
    client, outcomes = reader
    base = _base(outcomes["radiograph"])
    paths = [("GET", f"{base}/view"), ("GET", f"{base}/feedback"), ("POST", f"{base}/feedback"),
             ("GET", f"{base}/render/image.png")]
    for method, path in paths:
        body = {"label": "Mass", "verdict": "accepted"}
        assert client.request(method, path, json=body).status_code == 401
        forbidden = client.request(method, path, json=body, headers=bearer(client, Role.CLINICIAN))
        assert forbidden.status_code == 403 and forbidden.json()["code"] == "role_required"
        other = client.request(method, path, json=body, headers=bearer(client, Role.RADIOLOGIST,
                                                                       patient="Patient/SOMEONE-ELSE"))
        assert other.status_code == 403 and other.json()["code"] == "patient_scope", (method, path)
    own = client.get(f"{base}/view", headers=bearer(client, Role.RADIOLOGIST, patient="Patient/SYNTH-W"))
    assert own.status_code == 200


def test_viewer_reads_are_audited_with_the_model_and_input(reader: Any) -> None:
    client, outcomes = reader
    outcome = outcomes["ct"]
    headers = bearer(client, Role.RADIOLOGIST, subject="dr-audit")
    client.get(f"{_base(outcome)}/view", headers=headers)
    client.get(f"{_base(outcome)}/render/outline.png?slice=3", headers=headers)
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    mine = [e for e in events if e["agent"][0]["who"]["display"] == "dr-audit"]
    assert [e["type"]["code"] for e in mine] == ["imaging.viewer.open", "imaging.viewer.render"]
    assert json.loads(mine[1]["outcomeDesc"]) == {"job": outcome["job_id"], "layer": "outline", "slice": 3,
                                                  "uid": pseudonym(outcome["uid"])}  # a keyed hash, not the UID
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        from cds.store.tables import AuditEventRow

        row = session.execute(select(AuditEventRow).where(AuditEventRow.actor == "dr-audit")).scalars().first()
        assert row is not None and row.model == "ct-organs-demo:1.0.0" and row.input_sha256 == outcome["input_sha256"]


def test_a_session_audits_each_view_once_and_every_verdict_and_export(reader: Any) -> None:
    """20 polls of an unchanged worklist and 30 re-draws of one image write one event each; verdicts, exports and
    a changed worklist are audited every time; a new sign-in is a new session."""
    client, outcomes = reader
    headers = bearer(client, Role.RADIOLOGIST, subject="dr-session")  # one token: one session
    base = _base(outcomes["radiograph"])
    positive = next(f["label"] for f in outcomes["radiograph"]["summary"] if f["positive"])
    for _ in range(20):
        assert client.get("/v1/worklist", headers=headers).status_code == 200
    assert client.get(f"{base}/view", headers=headers).status_code == 200
    for k in range(30):  # window/level drags and heatmap toggles
        query = f"window={100 + 10 * k}&level={1000 + k}"
        path = f"{base}/render/image.png?{query}" if k % 3 else f"{base}/render/heatmap.png?label={positive}"
        assert client.get(path, headers=headers).status_code == 200, path
    assert client.get(f"{base}/view", headers=headers).status_code == 200  # back from the worklist: same view
    for verdict in ("accepted", "rejected"):
        answer = client.post(f"{base}/feedback", headers=headers, json={"label": positive, "verdict": verdict})
        assert answer.status_code == 201
    for _ in range(2):
        assert client.get(f"{base}/result.json", headers=headers).status_code == 200
    for _ in range(5):
        assert client.get("/v1/worklist", headers=headers).status_code == 200  # the study now reads "read"

    def codes(subject: str) -> list[str]:
        events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
        return sorted(e["type"]["code"] for e in events if e["agent"][0]["who"]["display"] == subject)

    assert codes("dr-session") == sorted([
        "imaging.worklist.read", "imaging.viewer.open", "imaging.viewer.render",  # the first of each
        "imaging.feedback", "imaging.feedback",  # every verdict
        "imaging.result.read", "imaging.result.read",  # every export
        "imaging.worklist.read",  # the worklist changed (the study was read): audited once more
    ])
    again = bearer(client, Role.RADIOLOGIST, subject="dr-session")  # a new sign-in
    client.get(f"{base}/render/image.png", headers=again)
    client.get(f"{base}/render/image.png", headers=again)
    assert codes("dr-session").count("imaging.viewer.render") == 2
    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
