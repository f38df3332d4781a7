"""What the study viewer reads besides the pre-read: the patient's priors, one instance's DICOM JSON (the tag view)
and each series' thumbnail (the series strip)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select

from cds.serving.api.auth import Role
from cds.store.dicom_index import STORED, index_dataset
from cds.store.tables import AuditEventRow
from tests.serving.api.conftest import bearer
from tests.serving.api.test_dicomweb import _multipart
from tests.support.seeded_reads import seed_reads
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

PATIENT, OTHER_PATIENT = "P-PRIOR-7", "P-PRIOR-8"


def _index(client: TestClient, study: str, patient: str, date: str, *, site: str = "", description: str = "",
           modality: str = "CR") -> None:  # fmt: skip
    """Index instance ``<study>.1`` of series ``<study>.2`` (no file: listing priors reads no pixels)."""
    state = client.app.state.cds  # type: ignore[attr-defined]
    ds = Dataset()
    ds.SOPInstanceUID, ds.SOPClassUID, ds.StudyInstanceUID = f"{study}.1", "1.2.840.10008.5.1.4.1.1.1", study
    ds.SeriesInstanceUID, ds.PatientID, ds.Modality, ds.StudyDate = f"{study}.2", patient, modality, date
    if description:
        ds.StudyDescription = description
    with state.database.session() as session:
        index_dataset(session, ds, state.settings.data_dir / f"{study}.dcm", origin=STORED, site=site)


@pytest.fixture
def history(client: TestClient) -> dict[str, str]:
    """A pre-read study of PATIENT dated 2024-06-01 among their earlier and later studies, an earlier study of
    another patient and one of PATIENT's at another site."""
    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        ids = seed_reads(session, state.settings.data_dir, patient=PATIENT, study="1.5")
    _index(client, "1.5", PATIENT, "20240601", description="CHEST PA")  # the seeded instance, now dated
    _index(client, "1.4", PATIENT, "20230115", description="CHEST PA FOLLOW-UP")
    _index(client, "1.3", PATIENT, "20220301", modality="DX")
    _index(client, "1.6", PATIENT, "20250101")  # later: not a prior
    _index(client, "1.2", OTHER_PATIENT, "20200101", description="OTHER PATIENT")
    _index(client, "1.1", PATIENT, "20190101", site="clinic-b")  # the same ID issued by another site
    return {"job": ids["preread"], "uid": "1.5.1"}


def test_priors_are_the_same_patients_earlier_studies_at_the_same_site(client: TestClient,
                                                                      history: dict[str, str]) -> None:
    headers = bearer(client, Role.RADIOLOGIST, subject="dr-priors")
    answer = client.get(f"/v1/preread/{history['job']}/{history['uid']}/priors", headers=headers)
    assert answer.status_code == 200, answer.text
    priors = answer.json()
    assert [(p["study_uid"], p["study_date"], p["description"], p["modalities"]) for p in priors] == [
        ("1.4", "20230115", "CHEST PA FOLLOW-UP", ["CR"]), ("1.3", "20220301", "", ["DX"])]  # newest first
    for hidden in ("1.2", "1.1", "1.6", OTHER_PATIENT, "OTHER PATIENT"):
        assert f'"{hidden}"' not in answer.text
    worklist = client.get("/v1/worklist", headers=headers).json()["items"]
    assert [i["priors"] for i in worklist if i["study_uid"] == "1.5"] == [len(priors)]  # the count agrees
    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        events = session.scalars(select(AuditEventRow).where(AuditEventRow.actor == "dr-priors",
                                                             AuditEventRow.action == "imaging.search")).all()
    assert [json.loads(e.detail)["priors"] for e in events] == [2]


def test_priors_follow_the_patient_scope(client: TestClient, history: dict[str, str]) -> None:
    url = f"/v1/preread/{history['job']}/{history['uid']}/priors"
    own = client.get(url, headers=bearer(client, Role.RADIOLOGIST, patient=f"Patient/{PATIENT}"))
    assert own.status_code == 200 and len(own.json()) == 2
    other = client.get(url, headers=bearer(client, Role.RADIOLOGIST, patient=f"Patient/{OTHER_PATIENT}"))
    assert other.status_code == 403 and "1.4" not in other.text
    assert client.get(url, headers=bearer(client, Role.CLINICIAN)).status_code == 403


def test_a_study_without_earlier_ones_has_no_priors(client: TestClient, history: dict[str, str]) -> None:
    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        ids = seed_reads(session, state.settings.data_dir, patient="P-NEW", study="2.1")
    answer = client.get(f"/v1/preread/{ids['preread']}/2.1.1/priors", headers=bearer(client, Role.RADIOLOGIST))
    assert answer.status_code == 200 and answer.json() == []


@pytest.fixture
def two_series(client: TestClient, tmp_path: Path) -> dict[str, str]:
    """A study of two radiograph series (a 256 x 128 film and a 192 x 192 one), stored through STOW-RS."""
    study, first, second = generate_uid(), generate_uid(), generate_uid()
    wide = render(256, 3, 0)[0][64:192]
    files = [write_radiograph(tmp_path / "a.dcm", wide, patient_id=PATIENT, study_uid=study, series_uid=first),
             write_radiograph(tmp_path / "b.dcm", render(192, 4, 0)[0], patient_id=PATIENT, study_uid=study,
                              series_uid=second)]  # fmt: skip
    body, content_type = _multipart([f.read_bytes() for f in files])
    stored = client.post("/dicomweb/studies", content=body, headers=bearer(client, Role.RADIOLOGIST) | content_type)
    assert stored.status_code == 200, stored.text
    sops = [item["00081155"]["Value"][0] for item in stored.json()["00081199"]["Value"]]
    return {"study": study, "first": first, "second": second, "sop": sops[0]}


def test_one_instances_metadata_is_its_dicom_json(client: TestClient, two_series: dict[str, str]) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    url = f"/dicomweb/studies/{two_series['study']}/series/{two_series['first']}/instances/{two_series['sop']}"
    answer = client.get(f"{url}/metadata", headers=headers)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/dicom+json"
    (instance,) = answer.json()
    assert instance["00100020"] == {"vr": "LO", "Value": [PATIENT]}
    assert instance["00280010"]["Value"] == [128] and instance["00280011"]["Value"] == [256]  # Rows, Columns
    assert instance["7FE00010"] == {"vr": "OW", "BulkDataURI": f"http://testserver{url}/bulk/7FE00010"}
    wrong_series = f"/dicomweb/studies/{two_series['study']}/series/{two_series['second']}/instances/" \
                   f"{two_series['sop']}/metadata"
    assert client.get(wrong_series, headers=headers).status_code == 404
    scoped = bearer(client, Role.RADIOLOGIST, patient=f"Patient/{OTHER_PATIENT}")
    assert client.get(f"{url}/metadata", headers=scoped).status_code == 403


def test_a_series_thumbnail_is_its_picture_fitted_small(client: TestClient, two_series: dict[str, str],
                                                        tmp_path: Path) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    study = f"/dicomweb/studies/{two_series['study']}"
    answer = client.get(f"{study}/series/{two_series['first']}/thumbnail?viewport=64,64",
                        headers=headers | {"Accept": "image/png"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (64, 32)  # the 256 x 128 film's aspect
    jpeg = client.get(f"{study}/series/{two_series['second']}/thumbnail", headers=headers)
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).size == (128, 128)
    refused = client.get(f"{study}/series/{two_series['first']}/thumbnail", headers=headers | {"Accept": "text/html"})
    assert refused.status_code == 406
    assert client.get(f"{study}/series/1.2.3/thumbnail", headers=headers).status_code == 404

    report = Dataset()  # a series without pixels (a structured report) has no thumbnail
    report.file_meta = FileMetaDataset()
    report.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report.SOPInstanceUID, report.SOPClassUID = "9.9.1", "1.2.840.10008.5.1.4.1.1.88.22"
    report.StudyInstanceUID, report.SeriesInstanceUID, report.PatientID = two_series["study"], "9.9.2", PATIENT
    report.file_meta.MediaStorageSOPClassUID = report.SOPClassUID
    report.file_meta.MediaStorageSOPInstanceUID = report.SOPInstanceUID
    path = tmp_path / "sr.dcm"
    report.save_as(path, enforce_file_format=True)
    state = client.app.state.cds  # type: ignore[attr-defined]
    with state.database.session() as session:
        index_dataset(session, report, path, origin=STORED)
    no_image = client.get(f"{study}/series/9.9.2/thumbnail", headers=headers)
    assert no_image.status_code == 404 and no_image.json()["code"] == "no_image"


def test_the_dictionary_names_standard_tags_and_leaves_private_ones_out(client: TestClient) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    answer = client.get("/v1/dicom-dictionary?tags=00100020,7fe00010,60023000,00291010,FFFF0001", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "00100020": {"keyword": "PatientID", "name": "Patient ID", "vr": "LO"},
        "7FE00010": {"keyword": "PixelData", "name": "Pixel Data", "vr": "OB or OW"},
        "60023000": {"keyword": "OverlayData", "name": "Overlay Data", "vr": "OB or OW"},  # a repeating group
    }
    assert client.get("/v1/dicom-dictionary?tags=0010002", headers=headers).status_code == 422
    assert client.get("/v1/dicom-dictionary?tags=00100020", headers=bearer(client, Role.CLINICIAN)).status_code == 403
