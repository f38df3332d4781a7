"""A pathologist signs a slide read: refused until they gave their own verdict on the slide's AI finding, then the
final FHIR report carries their reading beside the AI's, an amendment follows, the signed report is shared as a
Bundle this site signed, and another site's pathologist sees none of it. A clinic refers a slide to the hub, whose
pathologist signs it, which closes the referral. A slide without tissue has no finding: the impression is enough."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, VLWholeSlideMicroscopyImageStorage, generate_uid

from cds.consortium.bundle_signature import verify_bundle
from cds.consortium.site_keys import SiteKeyRing, TrustStore, public_key_set
from cds.services.slide_signing import study_uid_of
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.audit import verify_chain
from cds.store.tables import AuditEventRow, ReportSignatureRow
from tests.pipelines.pathology.slides import tumour_layout
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job
from training.data.he_slide import write_slide


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def client(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TestClient]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", database_url=url, site="hub", hub_site="hub")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tumour_slide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signed-slides")
    return write_slide(folder / "tumour.tif", 2048, 1536, seed=8, mpp=0.5, tile=256, factor=2,
                       layout=tumour_layout(2048, 1536)).path  # fmt: skip


def _read(client: TestClient, slide: Path, headers: dict[str, str], **params: str) -> tuple[str, dict]:
    """Upload ``slide`` and wait for its read; its location and finished status."""
    queued = client.post("/v1/pathology/jobs", params={"filename": slide.name, **params}, content=slide.read_bytes(),
                         headers=headers | {"Content-Type": "application/octet-stream"})  # fmt: skip
    assert queued.status_code == 202, queued.text
    status = wait_for_job(client, queued.headers["Location"], headers)
    assert status["state"] == "done", status
    return queued.headers["Location"], status


def test_a_pathologist_signs_a_reviewed_slide_and_shares_it(client: TestClient, tumour_slide: Path) -> None:
    headers = bearer(client, Role.PATHOLOGIST, subject="dr-lin")
    location, status = _read(client, tumour_slide, headers, subject="Patient/7")
    finding = status["result"]["finding"]
    assert finding["positive"] is True
    label = finding["label"]
    early = client.post(f"{location}/signatures", json={"impression": "浸润性癌。"}, headers=headers)
    assert early.status_code == 422 and early.json()["code"] == "unreviewed_findings"
    assert label in early.json()["detail"]
    unknown = client.post(f"{location}/feedback", json={"label": "mitosis", "verdict": "accepted"}, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_finding"
    verdict = client.post(f"{location}/feedback", json={"label": label, "verdict": "accepted",
                                                         "comment": "同意，癌巢明显"}, headers=headers)  # fmt: skip
    assert verdict.status_code == 201, verdict.text
    assert verdict.json()["uid"] == status["result"]["input_sha256"]
    ai_report = client.get(f"{location}/diagnostic-report.json", headers=headers).json()
    assert ai_report["subject"] == {"reference": "Patient/7"}  # the AI's report names the patient it is about
    history = client.get(f"{location}/feedback", headers=headers).json()
    assert [(v["label"], v["verdict"], v["actor"], v["comment"]) for v in history] == [
        (label, "accepted", "dr-lin", "同意，癌巢明显")]  # fmt: skip
    colleague = bearer(client, Role.PATHOLOGIST, subject="dr-wu")
    theirs = client.post(f"{location}/signatures", json={"impression": "x"}, headers=colleague)
    assert theirs.json()["code"] == "unreviewed_findings"  # dr-lin's verdict is not dr-wu's to sign

    signed = client.post(f"{location}/signatures", json={"impression": "浸润性导管癌，肿瘤面积约 20%。",
                                                          "signer_name": "林医生"}, headers=headers)  # fmt: skip
    assert signed.status_code == 201, signed.text
    assert (signed.json()["version"], signed.json()["status"], signed.json()["site"]) == (1, "final", "hub")
    assert signed.json()["verdicts"] == {label: "accepted"} and signed.json()["sr_sop_instance_uid"] == ""
    report = client.get(f"{location}/signed-diagnostic-report.json", headers=headers).json()
    DiagnosticReport.model_validate(report)
    assert report["status"] == "final" and report["conclusion"] == "浸润性导管癌，肿瘤面积约 20%。"
    assert report["category"][0]["coding"][0]["code"] == "PAT"
    contained = {r["id"]: r for r in report["contained"]}
    assert report["resultsInterpreter"] == [{"reference": "#reader", "display": "林医生"}]
    assert contained["reader"]["identifier"] == [{"system": "urn:cds:site:hub:user", "value": "dr-lin"}]
    readings = [contained[r["reference"][1:]] for r in report["result"] if r["reference"].startswith("#reader-")]
    assert len(readings) == 1
    (reading,) = readings
    assert (reading["status"], reading["code"]["text"], reading["valueBoolean"]) == ("final", label, True)
    assert reading["performer"] == [{"reference": "#reader"}]
    ai = contained[reading["derivedFrom"][0]["reference"][1:]]
    assert ai["status"] == "preliminary" and ai["device"] == {"reference": "#model"} and ai["code"]["text"] == label
    assert {contained[k]["status"] for k in ("area", "mean", "patches")} == {"preliminary"}  # the AI's measurements

    client.post(f"{location}/feedback", json={"label": label, "verdict": "rejected"}, headers=headers)
    amended = client.post(f"{location}/signatures", json={"impression": "复核：反应性增生，非癌。"}, headers=headers)
    assert (amended.json()["version"], amended.json()["status"]) == (2, "amended")
    report = client.get(f"{location}/signed-diagnostic-report.json", headers=headers).json()
    reading = next(r for r in report["contained"] if r["id"].startswith("reader-"))
    assert report["status"] == "amended" and reading["valueBoolean"] is False  # the AI's call, rejected
    versions = client.get(f"{location}/signatures", headers=headers).json()
    assert [(v["version"], v["status"], v["signer"]) for v in versions] == [(1, "final", "dr-lin"),
                                                                             (2, "amended", "dr-lin")]  # fmt: skip

    settings = client.app.state.cds.settings  # type: ignore[attr-defined]
    ring = SiteKeyRing(settings.resolved_site_keys_dir, settings.site)
    ring.rotate()
    bundle = client.get(f"{location}/shared-bundle", headers=headers)
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("application/fhir+json")
    assert verify_bundle(bundle.json(), TrustStore.load(None, own=public_key_set(ring))).site == "hub"

    elsewhere = bearer(client, Role.PATHOLOGIST, subject="dr-other", site="clinic-b")
    for path in ("feedback", "signatures", "shared-bundle", "signed-diagnostic-report.json"):
        assert client.get(f"{location}/{path}", headers=elsewhere).status_code == 404, path
    assert client.post(f"{location}/feedback", json={"label": label, "verdict": "accepted"},
                       headers=elsewhere).status_code == 404  # fmt: skip
    assert client.post(f"{location}/signatures", json={"impression": "x"}, headers=elsewhere).status_code == 404
    scoped = bearer(client, Role.PATHOLOGIST, patient="Patient/8")
    assert client.get(f"{location}/signatures", headers=scoped).status_code == 403
    assert client.get(f"{location}/feedback", headers=bearer(client, Role.RADIOLOGIST)).status_code == 403

    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        assert verify_chain(session).ok
        actions = [e.action for e in session.query(AuditEventRow).order_by(AuditEventRow.seq)]
        signs = session.query(AuditEventRow).filter(AuditEventRow.action == "pathology.report.sign").all()
        rows = session.query(ReportSignatureRow).order_by(ReportSignatureRow.version).all()
    assert actions.count("pathology.feedback") == 2 and "pathology.feedback.read" in actions
    assert "pathology.signatures.read" in actions and "consortium.share" in actions
    assert [e.subject for e in signs] == ["Patient/7", "Patient/7"]
    assert [(r.uid, r.study_uid) for r in rows] == [(status["result"]["input_sha256"], "")] * 2


def test_a_clinic_refers_a_slide_and_the_hubs_signature_closes_the_referral(client: TestClient,
                                                                             tumour_slide: Path) -> None:  # fmt: skip
    clinic = bearer(client, Role.PATHOLOGIST, subject="dr-clinic", site="clinic-a")
    location, status = _read(client, tumour_slide, clinic)
    job_id, label = status["id"], status["result"]["finding"]["label"]
    hub = bearer(client, Role.PATHOLOGIST, subject="dr-hub", site="hub")
    third_site = bearer(client, Role.PATHOLOGIST, subject="dr-c", site="clinic-c")
    assert client.get(location, headers=hub).status_code == 404  # not referred yet
    referred = client.post("/v1/referrals", json={"job_id": job_id, "question": "请会诊：是否浸润？",
                                                  "priority": "urgent"}, headers=clinic)  # fmt: skip
    assert referred.status_code == 201 and referred.json()["to_site"] == "hub"

    assert client.get(location, headers=hub).json()["state"] == "done"
    listed = client.get("/v1/pathology/jobs", headers=hub).json()  # in the hub pathologist's list, not only a link
    assert [j["id"] for j in listed["items"]] == [job_id]
    assert client.get("/v1/pathology/jobs", headers=third_site).json()["items"] == []
    assert client.post(f"{location}/feedback", json={"label": label, "verdict": "accepted"},
                       headers=hub).status_code == 201  # fmt: skip
    signed = client.post(f"{location}/signatures", json={"impression": "浸润性癌。"}, headers=hub)
    assert signed.status_code == 201 and signed.json()["site"] == "hub"
    report = client.get(f"{location}/signed-diagnostic-report.json", headers=clinic).json()  # back at the clinic
    reader = next(r for r in report["contained"] if r["resourceType"] == "Practitioner")
    assert reader["identifier"] == [{"system": "urn:cds:site:hub:user", "value": "dr-hub"}]
    outbox = client.get("/v1/referrals?direction=out", headers=clinic).json()
    assert [(r["job_id"], r["status"], r["signed_by"]) for r in outbox] == [(job_id, "signed", "dr-hub")]
    third = bearer(client, Role.PATHOLOGIST, subject="dr-b", site="clinic-b")
    assert client.get(f"{location}/signatures", headers=third).status_code == 404


def test_a_slide_without_tissue_is_signed_on_the_impression_alone(client: TestClient, tmp_path: Path) -> None:
    headers = bearer(client, Role.PATHOLOGIST, subject="dr-lin")
    blank = write_slide(tmp_path / "blank.tif", 1024, 768, seed=6, mpp=0.5, tile=128, factor=2, blank=True)
    location, status = _read(client, blank.path, headers)
    assert status["result"]["status"] == "no_tissue"
    assert client.get(f"{location}/shared-bundle", headers=headers).json()["code"] == "not_signed"
    empty = client.post(f"{location}/signatures", json={"impression": "   "}, headers=headers)
    assert empty.status_code == 422 and empty.json()["code"] == "empty_impression"
    signed = client.post(f"{location}/signatures", json={"impression": "标本不满意：未见组织。"}, headers=headers)
    assert signed.status_code == 201 and signed.json()["verdicts"] == {}
    report = client.get(f"{location}/signed-diagnostic-report.json", headers=headers).json()
    DiagnosticReport.model_validate(report)
    assert report["status"] == "final" and not [r for r in report["contained"] if r["id"].startswith("reader-")]


def test_a_dicom_slide_is_signed_under_its_study(tmp_path: Path) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = study = generate_uid()
    ds.save_as(tmp_path / "slide.dcm", enforce_file_format=True)
    (tmp_path / "slide.tif").write_bytes(b"II*\x00")
    (tmp_path / "broken.dcm").write_bytes(b"not dicom")
    assert study_uid_of(tmp_path / "slide.dcm") == study
    assert study_uid_of(tmp_path / "slide.tif") == study_uid_of(tmp_path / "broken.dcm") == ""
