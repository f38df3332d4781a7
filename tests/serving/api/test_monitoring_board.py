"""The clinician's monitoring board: patients by alert level, each one's scores over time, all their alerts; on
SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import datetime as dt

from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer
from tests.serving.api.test_observations import NOW, ingest, scored_set, vital


def for_patient(bundle: dict, patient: str) -> dict:
    """``bundle`` about ``patient``, each Observation's id made that patient's own."""
    bundle = copy.deepcopy(bundle)
    for entry in bundle["entry"]:
        entry["resource"]["subject"] = {"reference": patient}
        entry["resource"]["id"] = f"{patient.removeprefix('Patient/')}-{entry['resource']['id']}"
    return bundle


def test_patients_are_listed_most_urgent_first_with_latest_scores(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)

    def post(bundle: dict) -> dict:
        return ingest(client, bundle, headers)

    post(for_patient(scored_set("a", 120, rr=22, pulse=112), "Patient/calm"))  # NEWS2 4: no alert
    post(for_patient(scored_set("a", 120, rr=25, pulse=112), "Patient/urgent"))  # 5: urgent
    post(for_patient(scored_set("a", 90, rr=26, pulse=135), "Patient/worst"))  # 6: urgent
    post(for_patient(scored_set("b", 30, rr=30, pulse=135), "Patient/worst"))  # 6, then a rise: still urgent
    post(for_patient(scored_set("a", 60, rr=25, pulse=135), "Patient/emergency"))  # 6: urgent
    fever = for_patient(scored_set("b", 20, rr=25, pulse=135), "Patient/emergency")
    fever["entry"].append(vital("emergency-t2", "8310-5", 39.5, "Cel", minutes_ago=19, patient="Patient/emergency"))
    post(fever)  # 8: emergency
    old = for_patient(scored_set("a", 60 * 30, rr=25, pulse=135), "Patient/yesterday")  # 30 hours ago
    post(old)

    board = client.get("/v1/monitoring/patients", headers=headers)
    assert board.status_code == 200, board.text
    listed = [(p["patient"], p["alert_level"], p["latest"]["news2"]["score"]) for p in board.json()]
    assert listed == [("Patient/emergency", "emergency", 8), ("Patient/worst", "urgent", 6),
                      ("Patient/urgent", "urgent", 5), ("Patient/calm", None, 4)]  # not the one seen 30 h ago
    emergency = board.json()[0]
    assert emergency["open_alerts"] == 1 and emergency["observations"] == 15
    assert emergency["latest"]["qsofa"]["score"] == 1  # RR ≥ 22 only: SBP 120 and alert
    wider = client.get("/v1/monitoring/patients", params={"since": "2000-01-01T00:00:00Z"}, headers=headers).json()
    assert "Patient/yesterday" in [p["patient"] for p in wider]
    assert client.get("/v1/monitoring/patients", params={"since": NOW.isoformat()}, headers=headers).json() == []

    (alert,) = client.get("/v1/alerts", params={"patient": "Patient/urgent"}, headers=headers).json()
    client.post(f"/v1/alerts/{alert['id']}/acknowledge", headers=headers).raise_for_status()
    after = {p["patient"]: (p["alert_level"], p["open_alerts"]) for p in
             client.get("/v1/monitoring/patients", headers=headers).json()}  # fmt: skip
    assert after["Patient/urgent"] == (None, 0)
    both = client.get("/v1/alerts", params={"patient": "Patient/urgent", "state": "all"}, headers=headers).json()
    assert [a["state"] for a in both] == ["acknowledged"]

    scoped = bearer(client, Role.CLINICIAN, patient="Patient/calm")
    assert [p["patient"] for p in client.get("/v1/monitoring/patients", headers=scoped).json()] == ["Patient/calm"]
    assert client.get("/v1/monitoring/patients", headers=bearer(client, Role.RADIOLOGIST)).status_code == 403


def test_a_patients_scores_come_back_in_order_with_their_bands(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    for tag, minutes, rr in (("a", 90, 16), ("b", 60, 22), ("c", 30, 25)):
        answer = client.post("/v1/observations", json=scored_set(tag, minutes, rr=rr, pulse=75), headers=headers)
        assert answer.status_code == 200, answer.text
    scores = client.get("/v1/monitoring/scores", params={"patient": "Patient/w1"}, headers=headers).json()
    news2 = [(s["score"], s["band"]) for s in scores if s["method"] == "news2"]
    assert [score for score, _ in news2] == [0, 2, 3]  # RR 16, 22 and 25 score 0, 2 and 3; the rest 0
    assert news2[-1][1] != news2[0][1]  # a single red parameter moves the band
    assert [s["at"] for s in scores] == sorted(s["at"] for s in scores)
    observed = [s["observed_at"] for s in scores if s["method"] == "news2"]  # when the sets were measured
    assert [dt.datetime.fromisoformat(t) for t in observed] == [NOW - dt.timedelta(minutes=m) for m in (90, 60, 30)]
    assert {s["method"] for s in scores} == {"news2", "qsofa"}
    assert client.get("/v1/monitoring/scores", params={"patient": "w1"}, headers=headers).status_code == 422
    other = bearer(client, Role.CLINICIAN, patient="Patient/someone-else")
    assert client.get("/v1/monitoring/scores", params={"patient": "Patient/w1"}, headers=other).status_code == 403
