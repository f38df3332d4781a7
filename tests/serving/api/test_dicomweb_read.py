"""QIDO-RS searches and WADO-RS retrieval of stored studies and their AI results, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from io import BytesIO
from pathlib import Path

import highdicom as hd
import pydicom
import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.audit import verify_chain
from cds.store.tables import AuditEventRow
from tests.serving.api.conftest import bearer
from tests.serving.api.test_dicomweb import _multipart
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.ct_volumes import generate_case
from training.data.dicom_files import write_radiograph


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=url, preread_saliency_grid=0)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _parts(response) -> list[bytes]:  # noqa: ANN001
    header = f"Content-Type: {response.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + response.content)
    return [part.get_payload(decode=True) for part in message.iter_parts()]


def _value(item: dict, tag: str) -> list:
    return item[tag].get("Value", [])


@pytest.fixture
def archive(client: TestClient, tmp_path: Path) -> dict[str, list[Path]]:
    """Two patients' chest radiographs and one CT series, stored through STOW-RS and pre-read."""
    files = {
        "P-1": [write_radiograph(tmp_path / "a.dcm", render(448, 41, 0)[0], patient_id="P-1")],
        "P-2": [write_radiograph(tmp_path / "b.dcm", render(448, 41, 1)[0], patient_id="P-2")],
        "Q-9": generate_case(41, 0).write_dicom(tmp_path / "ct", patient_id="Q-9"),
    }
    headers = bearer(client, Role.RADIOLOGIST)
    body, content_type = _multipart([f.read_bytes() for paths in files.values() for f in paths])
    stored = client.post("/dicomweb/studies", content=body, headers=headers | content_type)
    assert stored.status_code == 200, stored.text
    assert wait_for_job(client, stored.headers["Location"], headers)["state"] == "done"
    return files


def test_qido_finds_stored_studies_and_their_ai_results(client: TestClient, archive: dict[str, list[Path]]) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    studies = client.get("/dicomweb/studies", headers=headers)
    assert studies.status_code == 200 and studies.headers["content-type"] == "application/dicom+json"
    by_patient = {_value(s, "00100020")[0]: s for s in studies.json()}
    assert set(by_patient) == {"P-1", "P-2", "Q-9"}
    ct = by_patient["Q-9"]
    assert {"CT", "SEG", "SR"} <= set(_value(ct, "00080061"))  # the AI results live in the source study
    assert {"CR", "SR"} <= set(_value(by_patient["P-1"], "00080061"))
    ct_study = _value(ct, "0020000D")[0]
    assert _value(ct, "00081190")[0].endswith(f"/dicomweb/studies/{ct_study}")

    def patients(params: dict[str, str]) -> list[str]:
        answer = client.get("/dicomweb/studies", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return sorted(_value(s, "00100020")[0] for s in answer.json())

    assert patients({"PatientID": "P-1"}) == ["P-1"]
    assert patients({"PatientID": "P-*"}) == ["P-1", "P-2"]
    assert patients({"PatientID": "P_1"}) == []  # SQL LIKE characters are literal
    assert patients({"ModalitiesInStudy": "CT"}) == ["Q-9"]
    assert patients({"StudyDate": "19000101-19991231"}) == []
    assert patients({"StudyDate": "20000101-"}) == ["P-1", "P-2"]  # the generated CT series carries no StudyDate
    assert len(patients({"limit": "2"})) == 2 and len(patients({"limit": "2", "offset": "2"})) == 1
    bad = client.get("/dicomweb/studies", params={"StudyDate": "yesterday"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_request"  # the schema holds the date pattern
    ignored = client.get("/dicomweb/studies", params={"PatientSex": "F", "includefield": "all"}, headers=headers)
    assert ignored.status_code == 200 and "PatientSex" in ignored.headers["warning"]
    assert "includefield" not in ignored.headers["warning"]
    unicode_key = client.get("/dicomweb/studies?%C4%80=null", headers=headers)  # found by the OpenAPI fuzz test
    assert unicode_key.status_code == 200 and "\\u0100" in unicode_key.headers["warning"]

    metrics = client.get("/metrics").text  # the pre-read's engine calls, by model name and version only
    for model, version in (("chest-xray-demo", "2.0.0"), ("chest-xray-plausibility", "2.0.0"),
                           ("ct-organs-demo", "1.0.0")):  # fmt: skip
        count = re.search(rf'cds_inference_batch_size_count{{model="{model}",version="{version}"}} (\S+)', metrics)
        assert count and float(count.group(1)) >= 1, model
    assert "P-1" not in metrics and "Q-9" not in metrics

    series = client.get(f"/dicomweb/studies/{ct_study}/series", headers=headers).json()
    modalities = {_value(s, "00080060")[0]: _value(s, "00201209")[0] for s in series}
    assert modalities["CT"] == len(archive["Q-9"]) and modalities["SEG"] == 1 and modalities["SR"] == 1
    ct_series = next(_value(s, "0020000E")[0] for s in series if _value(s, "00080060") == ["CT"])
    instances = client.get(f"/dicomweb/studies/{ct_study}/series/{ct_series}/instances", headers=headers).json()
    expected = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in archive["Q-9"]}
    assert {_value(i, "00080018")[0] for i in instances} == expected


def test_wado_returns_the_stored_bytes_and_the_ai_segmentation(client: TestClient,
                                                               archive: dict[str, list[Path]]) -> None:  # fmt: skip
    headers = bearer(client, Role.RADIOLOGIST)
    (study,) = client.get("/dicomweb/studies", params={"PatientID": "Q-9"}, headers=headers).json()
    study_uid = _value(study, "0020000D")[0]
    found = client.get(f"/dicomweb/studies/{study_uid}/series", headers=headers).json()
    series = {_value(s, "00080060")[0]: _value(s, "0020000E")[0] for s in found}
    assert set(series) == {"CT", "SEG", "SR", "OT"}  # OT: the overlay as a secondary capture

    ct = client.get(f"/dicomweb/studies/{study_uid}/series/{series['CT']}", headers=headers)
    assert ct.status_code == 200 and ct.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    assert sorted(_parts(ct)) == sorted(p.read_bytes() for p in archive["Q-9"])  # byte for byte as stored

    (seg_instance,) = client.get(f"/dicomweb/studies/{study_uid}/series/{series['SEG']}/instances",
                                 headers=headers).json()  # fmt: skip
    url = _value(seg_instance, "00081190")[0].split("testserver", 1)[1]
    seg = client.get(url, headers=headers | {"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'})
    (part,) = _parts(seg)
    segmentation = hd.seg.Segmentation.from_dataset(pydicom.dcmread(BytesIO(part)))
    assert [s.SegmentLabel for s in segmentation.SegmentSequence][0] == "liver"

    whole = client.get(f"/dicomweb/studies/{study_uid}", headers=headers)
    assert len(_parts(whole)) == len(archive["Q-9"]) + 3 == sum(_value(s, "00201209")[0] for s in found)

    metadata = client.get(f"/dicomweb/studies/{study_uid}/series/{series['CT']}/metadata", headers=headers)
    assert metadata.status_code == 200 and len(metadata.json()) == len(archive["Q-9"])
    first = metadata.json()[0]
    assert _value(first, "0020000D") == [study_uid]
    assert set(first["7FE00010"]) == {"vr", "BulkDataURI"} and "/instances/" in first["7FE00010"]["BulkDataURI"]
    pixels = client.get(first["7FE00010"]["BulkDataURI"].removeprefix("http://testserver"), headers=headers)
    assert pixels.status_code == 200 and pixels.headers["content-type"].startswith(
        'multipart/related; type="application/octet-stream"')  # fmt: skip
    (value,) = _parts(pixels)
    source = next(pydicom.dcmread(f) for f in archive["Q-9"]
                  if pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID == _value(first, "00080018")[0])
    assert value == source.pixel_array.astype("<u2").tobytes()  # uncompressed little-endian, as the metadata says
    missing = first["7FE00010"]["BulkDataURI"].removeprefix("http://testserver").replace("7FE00010", "00420011")
    assert client.get(missing, headers=headers).json()["code"] == "element_not_found"

    refused = client.get(f"/dicomweb/studies/{study_uid}", headers=headers | {"Accept": "application/json"})
    assert refused.status_code == 406 and refused.json()["code"] == "not_acceptable"
    missing = client.get("/dicomweb/studies/1.2.3.4", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert client.get("/dicomweb/studies/not-a-uid", headers=headers).status_code == 422

    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
        actions = [r.action for r in session.query(AuditEventRow).all()]
    assert actions.count("imaging.retrieve") >= 4 and actions.count("imaging.search") >= 3


def test_dicomweb_reads_respect_roles_and_patient_scope(client: TestClient, archive: dict[str, list[Path]]) -> None:
    radiologist = bearer(client, Role.RADIOLOGIST)
    studies = {_value(s, "00100020")[0]: _value(s, "0020000D")[0]
               for s in client.get("/dicomweb/studies", headers=radiologist).json()}  # fmt: skip
    scoped = bearer(client, Role.RADIOLOGIST, patient="P-1")
    visible = client.get("/dicomweb/studies", headers=scoped).json()
    assert [_value(s, "00100020")[0] for s in visible] == ["P-1"]
    assert client.get("/dicomweb/studies", params={"PatientID": "P-2"}, headers=scoped).json() == []
    assert client.get(f"/dicomweb/studies/{studies['P-1']}", headers=scoped).status_code == 200
    other = client.get(f"/dicomweb/studies/{studies['P-2']}", headers=scoped)
    assert other.status_code == 403 and other.json()["code"] == "patient_scope"
    other_metadata = client.get(f"/dicomweb/studies/{studies['P-2']}/metadata", headers=scoped)
    assert other_metadata.status_code == 403

    clinician = bearer(client, Role.CLINICIAN)
    for path in ("/dicomweb/studies", f"/dicomweb/studies/{studies['P-1']}",
                 f"/dicomweb/studies/{studies['P-1']}/series"):  # fmt: skip
        assert client.get(path, headers=clinician).status_code == 403
        assert client.get(path).status_code == 401


def test_a_browser_viewer_on_an_allowed_origin_may_call_dicomweb(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from cds.serving.api.app import create_app
    from cds.settings import Settings

    viewer, stranger = "https://ohif.hospital.example", "https://elsewhere.example"
    app = create_app(Settings(dev_mode=True, data_dir=tmp_path, job_workers=0, cors_origins=[viewer]))
    with TestClient(app) as client:
        preflight = client.options("/dicomweb/studies", headers={
            "Origin": viewer, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})  # fmt: skip
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == viewer
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = client.get("/dicomweb/studies", headers={"Origin": viewer})  # no token: 401, readable by it
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == viewer
        other = client.options("/dicomweb/studies", headers={"Origin": stranger, "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in other.headers
    with pytest.raises(ValueError, match="never"):
        Settings(cors_origins=["*"])


def test_wado_rendered_windows_fits_and_negotiates_the_picture(client: TestClient,
                                                                archive: dict[str, list[Path]]) -> None:  # fmt: skip
    import io

    import numpy as np
    from PIL import Image

    headers = bearer(client, Role.RADIOLOGIST)
    source = pydicom.dcmread(archive["P-1"][0])
    url = (f"/dicomweb/studies/{source.StudyInstanceUID}/series/{source.SeriesInstanceUID}/instances/"
           f"{source.SOPInstanceUID}/rendered")  # fmt: skip
    default = client.get(url, headers=headers)
    assert default.status_code == 200 and default.headers["content-type"] == "image/jpeg"  # PS3.18's default
    picture = Image.open(io.BytesIO(default.content))
    assert picture.format == "JPEG" and picture.size == (source.Columns, source.Rows) and picture.mode == "L"
    png = client.get(url, headers=headers | {"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    full = np.asarray(Image.open(io.BytesIO(png.content)), dtype=float)
    centre, width = float(source.WindowCenter), float(source.WindowWidth)
    narrow = client.get(f"{url}?window={centre},{width / 8}", headers=headers | {"Accept": "image/png"})
    saturated = np.asarray(Image.open(io.BytesIO(narrow.content)), dtype=float)
    assert ((saturated == 0) | (saturated == 255)).mean() > ((full == 0) | (full == 255)).mean() + 0.2
    small = client.get(f"{url}?viewport=100,100", headers=headers | {"Accept": "image/png"})
    assert max(Image.open(io.BytesIO(small.content)).size) == 100
    assert client.get(url, headers=headers | {"Accept": "image/gif"}).status_code == 406
    assert client.get(f"{url}?window=wide", headers=headers).status_code == 422
    assert client.get(url, headers=bearer(client, Role.RADIOLOGIST, patient="Patient/P-2")).status_code == 403


def test_wado_frames_are_the_native_pixels(client: TestClient, archive: dict[str, list[Path]]) -> None:
    import numpy as np

    headers = bearer(client, Role.RADIOLOGIST)
    source = pydicom.dcmread(archive["Q-9"][3])  # a CT slice: 16-bit stored values
    url = (f"/dicomweb/studies/{source.StudyInstanceUID}/series/{source.SeriesInstanceUID}/instances/"
           f"{source.SOPInstanceUID}/frames/1")  # fmt: skip
    answer = client.get(url, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith('multipart/related; type="application/octet-stream"')
    (frame,) = _parts(answer)
    assert np.array_equal(np.frombuffer(frame, dtype="<u2").reshape(source.Rows, source.Columns),
                          source.pixel_array.astype("<u2"))  # fmt: skip
    assert client.get(url.replace("/frames/1", "/frames/2"), headers=headers).json()["code"] == "frame_not_found"
    assert client.get(url, headers=headers | {"Accept": "multipart/related; type=\"image/jp2\""}).status_code == 406
    assert client.get(url.replace("/frames/1", "/frames/0"), headers=headers).status_code == 422


def test_qido_includefield_adds_the_attributes_asked_for(client: TestClient, archive: dict[str, list[Path]]) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    source = pydicom.dcmread(archive["P-1"][0], stop_before_pixels=True)
    plain = client.get("/dicomweb/studies", params={"PatientID": "P-1"}, headers=headers).json()
    assert "00100040" not in plain[0] and "00080070" not in plain[0]  # PatientSex, Manufacturer: not by default
    asked = client.get("/dicomweb/studies", headers=headers,
                       params=[("PatientID", "P-1"), ("includefield", "PatientSex"),
                               ("includefield", "00080070,StudyDescription")]).json()  # fmt: skip
    assert asked[0]["00100040"]["Value"] == [source.PatientSex]
    assert "00081030" in asked[0] or "StudyDescription" not in source  # present when the study has it
    assert "Warning" not in client.get("/dicomweb/studies", params={"includefield": "PatientSex"},
                                       headers=headers).headers  # fmt: skip
    series = client.get(f"/dicomweb/studies/{source.StudyInstanceUID}/series", params={"includefield": "all"},
                        headers=headers).json()  # fmt: skip
    stored = next(s for s in series if s["0020000E"]["Value"] == [source.SeriesInstanceUID])
    assert stored["00280010"]["Value"] == [source.Rows] and "7FE00010" not in stored  # never the pixels
    instances = client.get(f"/dicomweb/studies/{source.StudyInstanceUID}/series/{source.SeriesInstanceUID}/instances",
                           params={"includefield": "Rows,Columns"}, headers=headers).json()  # fmt: skip
    assert (instances[0]["00280010"]["Value"], instances[0]["00280011"]["Value"]) == ([source.Rows], [source.Columns])
    bad = client.get("/dicomweb/studies", params={"includefield": "NoSuchKeyword"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_attribute"


def test_qido_says_fuzzy_matching_is_not_done(client: TestClient, archive: dict[str, list[Path]]) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    fuzzy = client.get("/dicomweb/studies", params={"PatientID": "P-1", "fuzzymatching": "true"}, headers=headers)
    assert fuzzy.status_code == 200 and len(fuzzy.json()) == 1
    assert "Only literal matching has been performed" in fuzzy.headers["Warning"]
    assert "Warning" not in client.get("/dicomweb/studies", params={"fuzzymatching": "false"}, headers=headers).headers
