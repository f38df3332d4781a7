"""A radiologist signs a real pre-read: their verdict on every AI finding first, then the impression; the final FHIR
report and a COMPLETE, VERIFIED DICOM SR come out (dciodvfy-clean, served by QIDO/WADO), signing again amends it,
and the signed report is shared as a Bundle this site signed that verifies with its key set."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds.consortium.bundle_signature import verify_bundle
from cds.consortium.site_keys import SiteKeyRing, TrustStore, public_key_set
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.serving.api.conftest import bearer
from tests.support.dciodvfy import TOOL, dciodvfy_errors
from tests.support.jobs import wait_for_job
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

READER, OTHER = "dr-wang", "dr-zhao"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, Any], Settings]]:
    """One app with a finished pre-read of a radiograph with positive findings."""
    root = tmp_path_factory.mktemp("signing")
    settings = Settings(dev_mode=True, data_dir=root / "data", preread_saliency_grid=3, site="hub",
                        site_name="市第一人民医院")  # fmt: skip
    cr = write_radiograph(root / "cr.dcm", render(256, 7, 0, findings={"Effusion"})[0], patient_id="SYNTH-S")
    with TestClient(create_app(settings)) as client:
        headers = bearer(client, Role.RADIOLOGIST, subject=READER)
        content_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
        stored = client.post("/dicomweb/studies", content=multipart_body([cr.read_bytes()]),
                             headers=headers | {"Content-Type": content_type})  # fmt: skip
        assert stored.status_code == 200, stored.text
        status = wait_for_job(client, stored.headers["Location"], headers)
        assert status["state"] == "done", status
        outcome = status["result"]["outcomes"][0] | {"job_id": status["id"]}
        yield client, outcome, settings


def _base(outcome: dict[str, Any]) -> str:
    return f"/v1/preread/{outcome['job_id']}/{outcome['uid']}"


def test_signing_needs_the_signers_own_verdict_on_every_finding_then_writes_the_final_report(signed: Any) -> None:
    client, outcome, _ = signed
    base, headers = _base(outcome), bearer(client, Role.RADIOLOGIST, subject=READER)
    labels = [f["label"] for f in outcome["summary"]]
    premature = client.post(f"{base}/signatures", json={"impression": "右侧胸腔积液"}, headers=headers)
    assert premature.status_code == 422 and premature.json()["code"] == "unreviewed_findings"
    positive = {f["label"] for f in outcome["summary"] if f["positive"]}
    rejected = sorted(positive)[0] if positive else labels[0]
    for label in labels:
        verdict = "rejected" if label == rejected else "accepted"
        assert client.post(f"{base}/feedback", json={"label": label, "verdict": verdict},
                           headers=headers).status_code == 201  # fmt: skip
    other = client.post(f"{base}/signatures", json={"impression": "x"}, headers=bearer(client, Role.RADIOLOGIST,
                                                                                   subject=OTHER))  # fmt: skip
    assert other.json()["code"] == "unreviewed_findings"  # another reader's verdicts are not theirs to sign
    first = client.post(f"{base}/signatures", json={"impression": "右侧少量胸腔积液，建议复查。", "signer_name": "王立新"},
                        headers=headers)  # fmt: skip
    assert first.status_code == 201, first.text
    assert (first.json()["version"], first.json()["status"], first.json()["signer"]) == (1, "final", READER)
    report = client.get(f"{base}/signed-diagnostic-report.json", headers=headers).json()
    DiagnosticReport.model_validate(report)
    assert report["status"] == "final" and report["conclusion"] == "右侧少量胸腔积液，建议复查。"
    contained = {r["id"]: r for r in report["contained"]}
    assert report["resultsInterpreter"][0]["display"] == "王立新"
    assert contained["reader"]["identifier"] == [{"system": "urn:cds:site:hub:user", "value": READER}]
    readings = [contained[r["reference"][1:]] for r in report["result"] if r["reference"].startswith("#reader-")]
    ai = [contained[r["reference"][1:]] for r in report["result"] if r["reference"].startswith("#finding-")]
    assert len(readings) == len(ai) == len(labels)
    assert {o["status"] for o in readings} == {"final"} and {o["status"] for o in ai} == {"preliminary"}
    by_label = {o["code"]["text"]: o for o in readings}
    ai_positive = {f["label"]: f["positive"] for f in outcome["summary"]}
    assert by_label[rejected]["valueBoolean"] is (not ai_positive[rejected])
    assert all(by_label[label]["valueBoolean"] is ai_positive[label] for label in labels if label != rejected)


def test_the_signed_sr_is_complete_verified_valid_and_served_and_an_amendment_keeps_its_predecessor(
        signed: Any, tmp_path: Path) -> None:  # fmt: skip
    client, outcome, _ = signed
    base, headers = _base(outcome), bearer(client, Role.RADIOLOGIST, subject=READER)
    first = pydicom.dcmread(io.BytesIO(client.get(f"{base}/signed-report-sr.dcm", headers=headers).content))
    assert (first.CompletionFlag, first.VerificationFlag) == ("COMPLETE", "VERIFIED")
    assert str(first.VerifyingObserverSequence[0].VerifyingObserverName) == "王立新"
    assert first.VerifyingObserverSequence[0].VerifyingOrganization == "市第一人民医院"
    assert first.StudyInstanceUID == outcome["study_uid"] and first.SpecificCharacterSet == "ISO_IR 192"
    if TOOL is not None:
        path = tmp_path / "signed.dcm"
        first.save_as(path)
        assert dciodvfy_errors(path) == set()
    amended = client.post(f"{base}/signatures", json={"impression": "右侧少量胸腔积液（已复核）。"}, headers=headers)
    assert amended.status_code == 201 and amended.json()["status"] == "amended" and amended.json()["version"] == 2
    second = pydicom.dcmread(io.BytesIO(client.get(f"{base}/signed-report-sr.dcm", headers=headers).content))
    predecessor = second.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert predecessor.ReferencedSOPInstanceUID == first.SOPInstanceUID != second.SOPInstanceUID
    for sr in (first, second):  # both versions stay in the study, each under its own UID
        wado = client.get(f"/dicomweb/studies/{sr.StudyInstanceUID}/series/{sr.SeriesInstanceUID}/instances/"
                          f"{sr.SOPInstanceUID}", headers=headers | {"Accept": 'multipart/related; '
                                                                    'type="application/dicom"'})  # fmt: skip
        assert wado.status_code == 200 and sr.SOPInstanceUID.encode() in wado.content
    history = client.get(f"{base}/signatures", headers=headers).json()
    assert [(h["version"], h["status"]) for h in history] == [(1, "final"), (2, "amended")]


def test_a_signed_report_is_shared_as_a_bundle_the_sites_key_set_verifies(signed: Any) -> None:
    client, outcome, settings = signed
    base, headers = _base(outcome), bearer(client, Role.RADIOLOGIST, subject=READER)
    unkeyed = client.get(f"{base}/shared-bundle", headers=headers)
    assert unkeyed.status_code == 503 and unkeyed.json()["code"] == "site_keys_missing"
    ring = SiteKeyRing(settings.resolved_site_keys_dir, "hub")
    ring.rotate()
    shared = client.get(f"{base}/shared-bundle", headers=headers)
    assert shared.status_code == 200 and shared.headers["content-type"].startswith("application/fhir+json")
    bundle = shared.json()
    assert verify_bundle(bundle, TrustStore.load(None, own=public_key_set(ring))).site == "hub"
    reports = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport"]
    assert [r["status"] for r in reports] == ["amended"]
    organisation = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Organization")
    assert organisation["name"] == "市第一人民医院"
