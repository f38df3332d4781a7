"""``cds export training``: readers' verdicts on stored radiographs become a de-identified dataset that the training
folder reader takes; only reviewed findings are labelled, disagreeing studies are left out, patients stay in one
split, no original identifier survives, and the same key gives the same export."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cds.cli.main import app
from cds.interop.deidentify import remap_uid
from cds.store.audit import Actor
from cds.store.db import Database
from cds.store.dicom_index import STORED, index_dataset
from cds.store.feedback import ReviewedOutcome, record_feedback
from cds.store.tables import AuditEventRow
from training.chest_xray import PrepareRadiographd
from training.data.dicom_files import write_radiograph
from training.data.folder import read_labels_csv

KEY = b"a-secret-key-of-32-bytes-for-cds"
FINDINGS = ("Effusion", "Mass", "Nodule")
READER_A, READER_B = Actor("dr-a", "radiologist"), Actor("dr-b", "radiologist")


@dataclass(frozen=True)
class Stored:
    sop: str
    study: str
    series: str
    patient: str
    name: str
    accession: str


def _store(database: Database, folder: Path, index: int, patient: int, study: str | None = None) -> Stored:
    rng = np.random.default_rng(index)
    path = folder / f"image-{index}.dcm"
    write_radiograph(path, rng.random((48, 48)), patient_id=f"MRN{patient:05d}", sex="F" if patient % 2 else "M",
                     study_uid=study)
    ds = pydicom.dcmread(path)
    ds.PatientName, ds.AccessionNumber = f"DOE^PATIENT{patient:03d}", f"ACC{index:06d}"
    ds.InstitutionName = "Saint Elsewhere Hospital"
    ds.save_as(path)
    with database.session() as session:
        index_dataset(session, ds, path, origin=STORED)
    return Stored(ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.PatientID, str(ds.PatientName),
                  ds.AccessionNumber)


def _verdict(database: Database, image: Stored, label: str, verdict: str, reader: Actor = READER_A) -> None:
    outcome = ReviewedOutcome(job_id="job-1", uid=image.sop, study_uid=image.study, model="chest-xray:1.0.0",
                              input_sha256="0" * 64, labels=FINDINGS)
    with database.session() as session:
        record_feedback(session, outcome, label=label, verdict=verdict, comment="", actor=reader)


@dataclass(frozen=True)
class Service:
    data_dir: Path
    images: list[Stored]
    expected: dict[str, dict[str, str]]  # original SOP Instance UID -> label -> "0"/"1"
    left_out: set[str]


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("CDS_DATA_DIR", str(data_dir))
    monkeypatch.delenv("CDS_DATABASE_URL", raising=False)
    database = Database(f"sqlite:///{data_dir / 'cds.db'}")
    database.migrate()
    try:
        # 24 patients, the first four with a second study: 28 reviewed images
        images = [_store(database, data_dir / "dicom", i, i) for i in range(24)]
        images += [_store(database, data_dir / "dicom", 24 + i, i) for i in range(4)]
        expected: dict[str, dict[str, str]] = {}
        for i, image in enumerate(images):
            _verdict(database, image, "Effusion", "accepted" if i % 3 == 0 else "rejected")
            _verdict(database, image, "Nodule", "rejected")
            if i % 4 == 0:  # changed mind: the newest verdict counts
                _verdict(database, image, "Nodule", "accepted")
            if i % 5 == 0:  # a second reader who agrees
                _verdict(database, image, "Effusion", "accepted" if i % 3 == 0 else "rejected", READER_B)
            expected[image.sop] = {"Effusion": str(int(i % 3 == 0)), "Nodule": str(int(i % 4 == 0))}
        unreviewed = _store(database, data_dir / "dicom", 100, 100)  # Nodule never reviewed
        _verdict(database, unreviewed, "Effusion", "accepted")
        disputed = _store(database, data_dir / "dicom", 101, 101)  # readers disagree: its whole study is left out
        sibling = _store(database, data_dir / "dicom", 102, 101, study=disputed.study)
        for image in (disputed, sibling):
            _verdict(database, image, "Effusion", "accepted")
            _verdict(database, image, "Nodule", "rejected")
        _verdict(database, disputed, "Nodule", "accepted", READER_B)
        outcome = ReviewedOutcome(job_id="job-2", uid="1.2.826.0.1.999", study_uid="1.2.826.0.1.998",
                                  model="ct-organs:1.0.0", input_sha256="0" * 64, labels=("liver",))
        with database.session() as session:  # a CT series' verdict: no stored radiograph to export
            record_feedback(session, outcome, label="liver", verdict="accepted", comment="", actor=READER_A)
    finally:
        database.close()
    left_out = {unreviewed.sop, disputed.sop, sibling.sop}
    return Service(data_dir, [*images, unreviewed, disputed, sibling], expected, left_out)


def _key_file(path: Path, key: bytes = KEY, mode: int = 0o600) -> Path:
    path.write_bytes(key + b"\n")
    path.chmod(mode)
    return path


def _export(output: Path, key_file: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["export", "training", "--output", str(output), "--key-file", str(key_file),
                                      *extra])  # fmt: skip
    return result.exit_code, result.output


def _rows(folder: Path) -> dict[str, list[dict[str, str]]]:
    rows = {}
    for split in ("train", "validation", "test"):
        with (folder / split / "labels.csv").open(newline="", encoding="utf-8") as handle:
            rows[split] = list(csv.DictReader(handle))
    return rows


def test_only_reviewed_findings_are_labelled_and_patients_stay_in_one_split(service: Service, tmp_path: Path) -> None:
    code, output = _export(tmp_path / "export", _key_file(tmp_path / "key"), "--split", "0.5,0.25,0.25")
    assert code == 0, output
    rows = _rows(tmp_path / "export")
    exported = {row["path"]: (split, row) for split, table in rows.items() for row in table}
    assert len(exported) == 28
    by_uid = {image.sop: image for image in service.images}
    patients: dict[str, set[str]] = {}
    for sop, labels in service.expected.items():
        split, row = exported[f"{remap_uid(sop, key=KEY)}.dcm"]
        assert {label: row[label] for label in labels} == labels
        assert set(row) == {"path", "Effusion", "Nodule", "sex"}  # Mass: nobody reviewed it, no column
        assert row["sex"] == ("F" if int(by_uid[sop].patient[3:]) % 2 else "M")  # a subgroup column
        patients.setdefault(by_uid[sop].patient, set()).add(split)
    for sop in service.left_out:
        assert f"{remap_uid(sop, key=KEY)}.dcm" not in exported
    assert all(len(splits) == 1 for splits in patients.values())
    assert all(rows[split] for split in rows)  # with 24 patients, every split has some

    manifest = json.loads((tmp_path / "export" / "export.json").read_text())
    assert manifest["labels"] == ["Effusion", "Nodule"]
    assert manifest["left_out"] == {"conflicting_verdicts": {"images": 2, "studies": 1},
                                    "image_not_stored": {"images": 1}, "unreviewed_findings": {"images": 1}}
    assert sum(c["images"] for c in manifest["counts"].values()) == 28
    assert sum(c["labels"]["Effusion"]["positive"] for c in manifest["counts"].values()) == 10
    assert sum(c["patients"] for c in manifest["counts"].values()) == 24
    deid = manifest["deidentification"]
    assert "PatientID" in deid["replaced"] and "PatientName" in deid["replaced"]
    assert "AccessionNumber" in deid["emptied"] + deid["removed"] + deid["replaced"]
    assert "InstitutionName" in deid["removed"] and "StudyDate" in deid["dates_shifted"]
    assert deid["uids_remapped"] > 0 and set(deid["how"]) >= {"removed", "replaced", "dates_shifted", "uids"}

    for split, table in rows.items():  # the training folder reader and its image transform take every split
        files = read_labels_csv(tmp_path / "export" / split, ["Effusion", "Nodule"])
        assert files.labels.shape == (len(table), 2) and set(files.subgroups) == {"sex"}
        item = PrepareRadiographd(64)({"image": str(files.paths[0]), "label": files.labels[0]})
        assert item["image"].shape == (1, 64, 64)


def test_no_original_identifier_survives_in_any_file(service: Service, tmp_path: Path) -> None:
    assert _export(tmp_path / "export", _key_file(tmp_path / "key"))[0] == 0
    secrets = {"SYNTHETIC", "Saint Elsewhere"}
    for image in service.images:
        secrets |= {image.sop, image.study, image.series, image.patient, image.name, image.accession}
    files = [path for path in (tmp_path / "export").rglob("*") if path.is_file()]
    assert len(files) > 28
    for path in files:
        content = path.read_bytes()
        leaked = [secret for secret in secrets if secret.encode() in content or secret in path.name]
        assert not leaked, f"{path.name} holds {leaked}"


def test_the_same_key_gives_the_same_export_and_another_key_another(service: Service, tmp_path: Path) -> None:
    key = _key_file(tmp_path / "key")
    other = _key_file(tmp_path / "other", b"another-secret-key-of-32-bytes!!")
    for name, key_file in (("first", key), ("second", key), ("third", other)):
        assert _export(tmp_path / name, key_file)[0] == 0

    def content(folder: Path) -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    assert content(tmp_path / "first") == content(tmp_path / "second")
    assert set(content(tmp_path / "first")).isdisjoint(set(content(tmp_path / "third")) - {
        "export.json", "train/labels.csv", "validation/labels.csv", "test/labels.csv"})


def test_the_export_is_audited_with_counts_only(service: Service, tmp_path: Path) -> None:
    assert _export(tmp_path / "export", _key_file(tmp_path / "key"))[0] == 0
    database = Database(f"sqlite:///{service.data_dir / 'cds.db'}")
    try:
        with database.session() as session:
            events = list(session.execute(
                select(AuditEventRow).where(AuditEventRow.action == "training.export")).scalars())
    finally:
        database.close()
    assert len(events) == 1
    detail = json.loads(events[0].detail)
    assert detail["images"] and detail["conflicting_studies"] == 1 and detail["left_out"]["unreviewed_findings"] == 1
    text = " ".join(str(getattr(events[0], column.name)) for column in AuditEventRow.__table__.columns)
    for image in service.images:
        assert image.patient not in text and image.sop not in text and image.study not in text


@pytest.mark.parametrize("case", ["short key", "world-readable key", "output not empty", "unknown label",
                                  "bad split"])  # fmt: skip
def test_unsafe_or_wrong_requests_are_refused(service: Service, tmp_path: Path, case: str) -> None:
    output, extra = tmp_path / "export", []
    key = _key_file(tmp_path / "key", b"too-short" if case == "short key" else KEY,
                    0o644 if case == "world-readable key" else 0o600)
    if case == "output not empty":
        output.mkdir()
        (output / "keep.txt").write_text("mine")
    extra = {"unknown label": ["--labels", "Effusion,Cardiomegaly"], "bad split": ["--split", "0.7,0.3"]}.get(case, [])
    code, text = _export(output, key, *extra)
    assert code == 2, text
    assert case != "output not empty" or [p.name for p in output.iterdir()] == ["keep.txt"]
    assert case == "output not empty" or not output.exists() or not any(output.iterdir())


def test_fhir_records_exported_with_the_same_key_link_to_the_exported_images(service: Service, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    system = "urn:oid:1.2.156.112604.1.2.1"
    monkeypatch.setenv("CDS_PATIENT_ID_SYSTEM", system)
    key_file = _key_file(tmp_path / "export.key")
    images = tmp_path / "images"
    assert _export(images, key_file)[0] == 0
    image = service.images[0]
    patient = {"resourceType": "Patient", "id": "local-7", "name": [{"text": image.name}],
               "identifier": [{"system": system, "value": image.patient}], "birthDate": "1970-02-03"}
    report = {"resourceType": "DiagnosticReport", "id": "r1", "status": "final", "code": {"text": "CXR"},
              "subject": {"reference": "Patient/local-7"}, "effectiveDateTime": "2026-01-02",
              "identifier": [{"system": "urn:accession", "value": image.accession}],
              "imagingStudy": [{"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{image.study}"}}]}
    inputs = tmp_path / "records"
    inputs.mkdir()
    (inputs / f"{image.name}.json").write_text(json.dumps(patient))  # a file name that names the patient
    (inputs / "reports.ndjson").write_text(json.dumps(report) + "\n\n")
    result = CliRunner().invoke(app, ["export", "fhir", str(inputs / f"{image.name}.json"),
                                      str(inputs / "reports.ndjson"), "--output", str(tmp_path / "fhir"),
                                      "--key-file", str(key_file)])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "fhir").iterdir())
    assert written == ["export.json", "fhir-0001.json", "fhir-0002.ndjson"]
    exported_patient = json.loads((tmp_path / "fhir" / "fhir-0001.json").read_text())
    exported_report = json.loads((tmp_path / "fhir" / "fhir-0002.ndjson").read_text().splitlines()[0])
    dicom = [pydicom.dcmread(p) for p in images.rglob("*.dcm")]
    match = next(d for d in dicom if d.StudyInstanceUID == remap_uid(image.study, key=KEY))
    assert exported_patient["id"] == match.PatientID and exported_report["subject"]["reference"] == (
        f"Patient/{match.PatientID}")
    assert exported_report["imagingStudy"][0]["identifier"]["value"] == f"urn:oid:{match.StudyInstanceUID}"
    everything = "".join(p.read_text() for p in (tmp_path / "fhir").iterdir())
    assert image.patient not in everything and image.name not in everything and image.accession not in everything
    manifest = json.loads((tmp_path / "fhir" / "export.json").read_text())
    manifest_images = json.loads((images / "export.json").read_text())
    assert manifest["key_id"] == manifest_images["key_id"] and manifest["patients"] == 1
    again = CliRunner().invoke(app, ["export", "fhir", str(inputs / "reports.ndjson"), "--output",
                                     str(tmp_path / "fhir"), "--key-file", str(key_file)])  # fmt: skip
    assert again.exit_code == 2 and "output_not_empty" in again.output
