"""``/v1/consortium/shared-results``: a member's signed result is kept once when it verifies, refused with the
reason when it does not, and read back exactly as signed; patient-scoped callers reach only their patient's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.consortium.bundle_signature import sign_bundle
from cds.consortium.shared_result import shareable_bundle
from cds.consortium.site_keys import SiteKeyRing, public_key_set
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.consortium.conftest import signed_report
from tests.serving.api.conftest import bearer

URL = "/v1/consortium/shared-results"


@pytest.fixture
def hub(tmp_path: Path) -> SiteKeyRing:
    ring = SiteKeyRing(tmp_path / "hub-keys", "hub")
    ring.rotate()
    return ring


@pytest.fixture
def client(hub: SiteKeyRing, tmp_path: Path) -> Iterator[TestClient]:
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "hub.jwks.json").write_text(json.dumps(public_key_set(hub)))
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", site="clinic-a", consortium_keys_dir=trusted,
                        max_json_bytes=64_000)  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _shared(hub: SiteKeyRing, patient: str = "MRN-0042") -> dict[str, object]:
    report = signed_report(patient=patient)
    report["subject"] = {"reference": f"Patient/{patient}"}
    for resource in report["contained"]:
        if resource["resourceType"] == "Observation":
            resource["subject"] = report["subject"]
    return sign_bundle(shareable_bundle(report, site="hub"), hub)


def test_a_verified_result_is_kept_once_and_read_back_as_signed(client: TestClient, hub: SiteKeyRing) -> None:
    bundle = _shared(hub)
    headers = bearer(client, Role.CLINICIAN)
    created = client.post(URL, json=bundle, headers=headers)
    assert created.status_code == 201, created.text
    kept = created.json()
    assert (kept["origin_site"], kept["report_status"], kept["subject"]) == ("hub", "final", "Patient/MRN-0042")
    assert created.headers["Location"] == f"{URL}/{kept['id']}"
    again = client.post(URL, json=bundle, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == kept["id"]
    read = client.get(f"{URL}/{kept['id']}", headers=headers)
    assert read.headers["content-type"].startswith("application/fhir+json") and read.json() == bundle
    assert [r["id"] for r in client.get(URL, params={"subject": "Patient/MRN-0042"}, headers=headers).json()] == [
        kept["id"]]
    assert client.get(f"{URL}/00000000-0000-0000-0000-000000000000", headers=headers).json()["code"] == (
        "shared_result_not_found")


def test_a_changed_or_unsigned_result_is_refused_with_its_reason(client: TestClient, hub: SiteKeyRing) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    tampered = _shared(hub)
    tampered["entry"][0]["resource"]["conclusion"] = "No effusion."  # type: ignore[index]
    refused = client.post(URL, json=tampered, headers=headers)
    assert refused.status_code == 422 and refused.json()["code"] == "signature_invalid"
    unsigned = shareable_bundle(signed_report(), site="hub")
    assert client.post(URL, json=unsigned, headers=headers).json()["code"] == "unsigned"
    assert client.post(URL, json=[1, 2], headers=headers).status_code == 422
    assert client.get(URL, headers=headers).json() == []
    events = client.get("/v1/audit/events?limit=100", headers=bearer(client, Role.ADMIN)).json()
    refusals = [e for e in events if e["type"]["code"] == "consortium.import"]
    assert [e["outcome"] for e in refusals] == ["4", "4"]  # minor failure: refused for its input


def test_a_patient_scoped_caller_imports_and_reads_only_their_patient(client: TestClient, hub: SiteKeyRing) -> None:
    own = bearer(client, Role.CLINICIAN, patient="MRN-0042")
    other = client.post(URL, json=_shared(hub, patient="MRN-7"), headers=own)
    assert other.status_code == 403
    assert client.get(URL, headers=bearer(client, Role.ADMIN)).json() == []  # nothing was kept
    mine = client.post(URL, json=_shared(hub), headers=own)
    assert mine.status_code == 201
    assert client.get(URL, params={"subject": "Patient/MRN-7"}, headers=own).status_code == 403
