"""A cardiologist signs an ECG read with a critical flag: refused until they reviewed the rhythm and every flag,
then the final FHIR report carries their rhythm, corrected measurement and flag verdicts beside the AI's, an amend
follows, and the signed report is shared as a Bundle this site signed that its key set verifies."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient
from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds.consortium.bundle_signature import verify_bundle
from cds.consortium.site_keys import SiteKeyRing, TrustStore, public_key_set
from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer
from tests.serving.api.test_ecg_api import _csv, _submit
from tests.support.jobs import wait_for_job
from training.data.ecg_signals import generate_ecg


def test_a_cardiologist_signs_a_reviewed_ecg_and_shares_it(client: TestClient) -> None:
    ecg = generate_ecg(np.random.default_rng([730_000, 1]), "sinus_rhythm", sampling_hz=500, duration_s=10,
                       st_mv={"V2": 0.35, "V3": 0.35, "V4": 0.3})  # fmt: skip
    headers = bearer(client, Role.CARDIOLOGIST, subject="dr-chen")
    queued = _submit(client, "stemi.csv", _csv(ecg.signals, 500), headers, subject="Patient/31", sex="male",
                     age="58")  # fmt: skip
    location = queued.headers["Location"]
    status = wait_for_job(client, location, headers)
    assert status["state"] == "done", status
    flags = [f["code"] for f in status["result"]["flags"]]
    assert "possible_stemi" in flags
    early = client.post(f"{location}/signatures", json={"impression": "急性前壁心肌梗死可能"}, headers=headers)
    assert early.status_code == 422 and early.json()["code"] == "unreviewed_items"
    assert "rhythm" in early.json()["detail"] and "possible_stemi" in early.json()["detail"]
    reviews = [{"item": "rhythm", "verdict": "accepted"}, {"item": "qrs_ms", "verdict": "corrected", "value": "104"}]
    reviews += [{"item": code, "verdict": "accepted" if code == "possible_stemi" else "rejected"} for code in flags]
    for body in reviews:
        assert client.post(f"{location}/reviews", json=body, headers=headers).status_code == 201
    signed = client.post(f"{location}/signatures", json={"impression": "窦性心律，V2-V4 ST段抬高，急性前壁心梗可能。",
                                                          "signer_name": "陈医生"}, headers=headers)  # fmt: skip
    assert signed.status_code == 201, signed.text
    assert (signed.json()["version"], signed.json()["status"]) == (1, "final")
    report = client.get(f"{location}/signed-diagnostic-report.json", headers=headers).json()
    DiagnosticReport.model_validate(report)
    contained = {r["id"]: r for r in report["contained"]}
    assert report["status"] == "final" and report["resultsInterpreter"][0]["display"] == "陈医生"
    readings = [contained[r["reference"][1:]] for r in report["result"] if r["reference"].startswith("#reader-")]
    by_code = {o["code"]["text"]: o for o in readings}
    assert by_code["Rhythm"]["valueCodeableConcept"]["text"] == "Sinus rhythm"
    qrs = next(o for o in readings if o.get("valueQuantity", {}).get("code") == "ms" and o["valueQuantity"]["value"]
               == 104.0)  # fmt: skip
    assert qrs["derivedFrom"][0]["reference"] in {f"#{k}" for k in contained}
    stemi = next(o for o in readings if "valueBoolean" in o and o["valueBoolean"] is True)
    assert contained[stemi["derivedFrom"][0]["reference"][1:]]["interpretation"][0]["coding"][0]["code"] == "AA"
    assert all(contained[k]["status"] == "preliminary" for k in contained if k.startswith("flag-"))
    other = bearer(client, Role.CARDIOLOGIST, subject="dr-wu")
    assert client.post(f"{location}/signatures", json={"impression": "x"}, headers=other).json()["code"] == (
        "unreviewed_items")  # their colleague's reviews are not theirs to sign
    amended = client.post(f"{location}/signatures", json={"impression": "复核：同前。"}, headers=headers)
    assert amended.json()["status"] == "amended"
    history = client.get(f"{location}/signatures", headers=headers).json()
    assert [(h["version"], h["signer"]) for h in history] == [(1, "dr-chen"), (2, "dr-chen")]

    settings = client.app.state.cds.settings  # type: ignore[attr-defined]
    ring = SiteKeyRing(settings.resolved_site_keys_dir, settings.site)
    ring.rotate()
    bundle = client.get(f"{location}/shared-bundle", headers=headers).json()
    assert verify_bundle(bundle, TrustStore.load(None, own=public_key_set(ring))).site == settings.site
    assert client.get(f"{location}/shared-bundle", headers=bearer(client, Role.CARDIOLOGIST,
                                                                   patient="Patient/32")).status_code == 403  # fmt: skip
