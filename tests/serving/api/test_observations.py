"""Observations over time: a ward's or a home device's Bundle in, stored once each, early-warning scores from
in-window values only, refusals named, scope and audit enforced; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def vital(id_: str, loinc: str, value: float, unit: str, *, minutes_ago: int = 10, patient: str = "Patient/w1",
          identifier: str | None = None) -> dict:
    resource = {"resourceType": "Observation", "id": id_, "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                "subject": {"reference": patient}, "device": {"reference": "Device/monitor-7"},
                "effectiveDateTime": (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
                "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}
    if identifier:
        resource["identifier"] = [{"system": "urn:ward-monitor", "value": identifier}]
    return {"fullUrl": f"urn:uuid:{id_}", "resource": resource, "request": {"method": "POST", "url": "Observation"}}


def acvpu(id_: str, level_code: str, display: str, *, minutes_ago: int = 10) -> dict:
    entry = vital(id_, "0", 0, "1", minutes_ago=minutes_ago)
    resource = entry["resource"]
    del resource["valueQuantity"]
    resource["code"] = {"coding": [{"system": "http://snomed.info/sct", "code": "1104441000000107"}]}
    resource["valueCodeableConcept"] = {"coding": [{"system": "http://snomed.info/sct", "code": level_code,
                                                    "display": display}]}  # fmt: skip
    return entry


def full_set(minutes_ago: int = 10) -> dict:
    """One set of NEWS2 observations: RR 22, SpO2 95 %, on 2 L/min oxygen, SBP 105, pulse 112, alert, 38.4 °C."""
    entries = [vital("rr", "9279-1", 22, "/min", minutes_ago=minutes_ago),
               vital("sat", "59408-5", 95, "%", minutes_ago=minutes_ago),
               vital("o2", "3151-8", 2, "L/min", minutes_ago=minutes_ago),
               vital("bp", "8480-6", 105, "mm[Hg]", minutes_ago=minutes_ago),
               vital("hr", "8867-4", 112, "{beats}/min", minutes_ago=minutes_ago),
               acvpu("avpu", "248234008", "Alert", minutes_ago=minutes_ago),
               vital("temp", "8310-5", 101.1, "[degF]", minutes_ago=minutes_ago)]  # fmt: skip
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_a_full_set_is_stored_once_and_scored_from_in_window_values(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    first = client.post("/v1/observations", json=full_set(), headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["stored"] == 7 and body["duplicates"] == 0 and body["refused"] == []
    news2 = next(s for s in body["scores"] if s["method"] == "news2")
    # RR 22 (2) + SpO2 95 on scale 1 (1) + oxygen (2) + SBP 105 (1) + pulse 112 (2) + alert (0) + 38.4 °C (1) = 9
    assert news2["score"] == 9 and news2["band"] == "very_high" and news2["category"].startswith("high")
    assert news2["result_id"] and news2["missing"] == []
    qsofa = next(s for s in body["scores"] if s["method"] == "qsofa")  # mentation from ACVPU: alert, so not altered
    assert qsofa["score"] == 1 and qsofa["category"] == "negative" and qsofa["result_id"]  # RR 22 only
    again = client.post("/v1/observations", json=full_set(), headers=headers).json()
    assert again["stored"] == 0 and again["duplicates"] == 7 and again["scores"] == []  # nothing new: no rescoring
    series = client.get("/v1/observations?patient=Patient/w1", headers=headers).json()
    assert len(series) == 7 and {s["device"] for s in series} == {"Device/monitor-7"}
    temperature = next(s for s in series if s["field"] == "temperature")
    assert abs(temperature["value"] - (101.1 - 32) * 5 / 9) < 1e-9
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    codes = [e["type"]["code"] for e in events]
    assert codes.count("observations.ingest") == 2 and "observations.read" in codes and "result.create" in codes


def test_stale_values_never_enter_a_score(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    client.post("/v1/observations", json=full_set(minutes_ago=5 * 60), headers=headers)  # 5 hours ago: out of window
    fresh = {"resourceType": "Bundle", "type": "batch",
             "entry": [vital("hr-now", "8867-4", 80, "/min", minutes_ago=1)]}  # fmt: skip
    answer = client.post("/v1/observations", json=fresh, headers=headers).json()
    news2 = next(s for s in answer["scores"] if s["method"] == "news2")
    assert news2["result_id"] is None and "heart_rate" not in news2["missing"]
    assert set(news2["missing"]) == {"respiratory_rate", "spo2", "on_oxygen", "systolic_bp", "consciousness",
                                     "temperature"}  # fmt: skip
    qsofa = next(s for s in answer["scores"] if s["method"] == "qsofa")
    assert set(qsofa["missing"]) == {"respiratory_rate", "systolic_bp", "altered_mentation"}


def test_each_bad_observation_is_refused_with_its_reason_and_the_rest_stored(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    future = vital("future", "8867-4", 80, "/min", minutes_ago=-120)
    orphan = vital("orphan", "8867-4", 80, "/min")
    del orphan["resource"]["subject"]
    impossible = vital("slip", "8867-4", 800, "/min")
    unit = vital("unit", "8480-6", 16, "furlongs")
    unknown = vital("weird", "1234-5", 1, "1")
    good = vital("good", "8867-4", 76, "/min", identifier="mon-7-0001")
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [future, orphan, impossible, unit, unknown, good]}
    answer = client.post("/v1/observations", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    refused = {r["source"]: r["code"] for r in answer.json()["refused"]}
    assert refused == {"Observation/future": "future_effective", "Observation/orphan": "missing_subject",
                       "Observation/slip": "impossible_value", "Observation/unit": "unsupported_unit",
                       "Observation/weird": "unrecognised_code"}  # fmt: skip
    assert answer.json()["stored"] == 1
    resent = vital("good-resent-with-another-id", "8867-4", 76, "/min", identifier="mon-7-0001")  # same identifier
    again = client.post("/v1/observations", json=resent["resource"], headers=headers).json()
    assert again["stored"] == 0 and again["duplicates"] == 1
    nothing = client.post("/v1/observations", json={"resourceType": "Bundle", "type": "batch", "entry": [future]},
                          headers=headers)  # fmt: skip
    assert nothing.status_code == 422 and nothing.json()["code"] == "observations_refused"
    assert client.post("/v1/observations", json={"resourceType": "Patient"}, headers=headers).status_code == 422


def test_a_patient_scoped_token_posts_and_reads_only_its_patient(client: TestClient) -> None:
    own = bearer(client, Role.CLINICIAN, patient="Patient/w1")
    assert client.post("/v1/observations", json=vital("a", "8867-4", 70, "/min")["resource"], headers=own).status_code == 200
    other = vital("b", "8867-4", 70, "/min", patient="Patient/w2")["resource"]
    assert client.post("/v1/observations", json=other, headers=own).status_code == 403
    assert client.get("/v1/observations?patient=Patient/w2", headers=own).status_code == 403
    assert client.get("/v1/observations?patient=Patient/w1", headers=bearer(client, Role.RADIOLOGIST)).status_code == 403


def ingest(client: TestClient, bundle: dict, headers: dict[str, str]) -> dict:
    """POST ``bundle`` to /v1/observations; the answer, which must be 200."""
    answer = client.post("/v1/observations", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def scored_set(tag: str, minutes_ago: int, *, rr: float, pulse: float) -> dict:
    """A full set whose NEWS2 is RR's and pulse's points (SpO2 97 on air, SBP 120, alert, 37 °C score 0)."""
    def entry(loinc: str, value: float, unit: str) -> dict:
        return vital(f"{tag}-{loinc}", loinc, value, unit, minutes_ago=minutes_ago)

    entries = [entry("9279-1", rr, "/min"), entry("59408-5", 97, "%"), entry("3151-8", 0, "L/min"),
               entry("8480-6", 120, "mm[Hg]"), entry("8867-4", pulse, "/min"), entry("8310-5", 37.0, "Cel"),
               acvpu(f"{tag}-avpu", "248234008", "Alert", minutes_ago=minutes_ago)]  # fmt: skip
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def test_alerts_open_escalate_deduplicate_and_are_acknowledged(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)

    def post(bundle: dict) -> dict:
        return ingest(client, bundle, headers)

    first = post(scored_set("a", 180, rr=22, pulse=112))  # RR 22 (2) + pulse 112 (2) = 4
    news2 = next(s for s in first["scores"] if s["method"] == "news2")
    assert news2["score"] == 4 and first["alerts"] == []  # 4, no parameter scoring 3: no alert
    urgent = post(scored_set("b", 120, rr=25, pulse=112))  # RR 25 scores 3: 5, urgent (and a rise of 1 only)
    (opened,) = urgent["alerts"]
    assert opened["action"] == "opened" and opened["level"] == "urgent" and opened["rules"] == ["news2_urgent"]
    worse = post(scored_set("c", 60, rr=25, pulse=135))  # 3 + 3 = 6, urgent: the open alert stays as it is
    assert worse["alerts"][0]["action"] == "deduplicated" and worse["alerts"][0]["alert_id"] == opened["alert_id"]
    fever = scored_set("d", 30, rr=26, pulse=135)
    fever["entry"].append(vital("d-temp2", "8310-5", 39.5, "Cel", minutes_ago=29))  # newer than the set's 37 °C
    (escalated,) = post(fever)["alerts"]  # 3 + 3 + 2 (39.5 °C) = 8: emergency
    assert escalated["action"] == "escalated" and escalated["level"] == "emergency"
    assert escalated["alert_id"] == opened["alert_id"] and "news2_emergency" in escalated["rules"]
    listed = client.get("/v1/alerts", headers=headers).json()
    assert [(a["id"], a["level"], a["escalations"]) for a in listed] == [(opened["alert_id"], "emergency", 1)]
    acked = client.post(f"/v1/alerts/{opened['alert_id']}/acknowledge", headers=headers)
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert acked.json()["acknowledged_by"] == "dr-test"
    assert client.get("/v1/alerts", headers=headers).json() == []  # nothing open
    again = post(scored_set("e", 5, rr=25, pulse=135))  # still urgent after acknowledgement: a new alert
    assert again["alerts"][0]["action"] == "opened" and again["alerts"][0]["alert_id"] != opened["alert_id"]
    assert client.post("/v1/alerts/unknown/acknowledge", headers=headers).status_code == 404
    other = bearer(client, Role.CLINICIAN, patient="Patient/someone-else")
    assert client.post(f"/v1/alerts/{again['alerts'][0]['alert_id']}/acknowledge", headers=other).status_code == 403
    assert client.get("/v1/alerts", headers=other).json() == []  # a scoped token sees its own patient's only
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    codes = [e["type"]["code"] for e in events]
    assert codes.count("alert.open") == 2 and codes.count("alert.escalate") == 1
    assert codes.count("alert.acknowledge") == 1


def test_alerts_reach_a_subscriber_that_is_down_and_comes_back_once_each(tmp_path) -> None:  # noqa: ANN001
    from fhir.resources.R4B.communication import Communication

    from cds.services.delivery import deliver_due
    from cds.serving.api.app import create_app
    from cds.settings import Settings
    from cds.store import outbox
    from tests.support.servers import free_port, serve_in_thread

    receiver, received, up = FastAPI(), [], {"now": False}

    @receiver.post("/hook")
    async def hook(request: Request) -> Response:
        if not up["now"]:
            return Response(status_code=503)
        received.append((request.headers["x-cds-message-id"], await request.json()))
        return Response(status_code=204)

    with serve_in_thread(receiver) as base:
        refused = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: the connection is refused
        settings = Settings(dev_mode=True, data_dir=tmp_path / "data", alert_webhooks=[base + "/hook", refused],
                            outbox_interval_s=3600)  # the test runs the delivery rounds itself
        with TestClient(create_app(settings)) as site:
            engine = site.app.state.cds.engine
            answer = site.post("/v1/observations", json=scored_set("x", 20, rr=26, pulse=135),
                               headers=bearer(site, Role.CLINICIAN)).json()  # fmt: skip
            assert answer["alerts"][0]["action"] == "opened"
            clock = dt.datetime.now(dt.UTC)
            assert deliver_due(engine, now=clock) == (0, 2)  # one answers 503, the other refuses the connection
            assert deliver_due(engine, now=clock) == (0, 0)  # not yet due again: backoff
            up["now"] = True
            later = clock + dt.timedelta(minutes=10)
            assert deliver_due(engine, now=later) == (1, 1)  # the receiver is back; the other is still away
            assert deliver_due(engine, now=later + dt.timedelta(minutes=10)) == (0, 1)
            with engine.database.session() as session:
                (left,) = outbox.pending(session)
                assert left.destination == refused and left.attempts == 3 and left.last_error == "ConnectError"
    ((message_id, body),) = received  # delivered once, with its id
    communication = Communication.model_validate(body)
    assert communication.priority == "urgent" and communication.subject.reference == "Patient/w1"
    assert communication.id == message_id and "NEWS2 6" in communication.payload[0].contentString


def test_observations_shaped_like_the_fhir_specifications_own_examples_are_read(client: TestClient) -> None:
    """The R4 spec's blood-pressure panel (components, identifier, profile, interpretation, body site) and its
    glucose example (LOINC 15074-8 in a blood sample, ``mmol/l`` as the unit text, an effectivePeriod)."""
    panel = {"resourceType": "Observation", "id": "blood-pressure", "status": "final",
             "meta": {"profile": ["http://hl7.org/fhir/StructureDefinition/vitalsigns"]},
             "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:187e0c12-8dd2-67e2-99b2-bf273c878281"}],
             "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                       "code": "vital-signs"}]}],
             "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}], "text": "Blood pressure"},
             "subject": {"reference": "Patient/example"}, "effectiveDateTime": "2012-09-17",
             "interpretation": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                                             "code": "L"}]}],
             "bodySite": {"coding": [{"system": "http://snomed.info/sct", "code": "368209003"}]},
             "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"},
                                                {"system": "http://snomed.info/sct", "code": "271649006"}]},
                            "valueQuantity": {"value": 107, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                              "code": "mm[Hg]"}},
                           {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                            "valueQuantity": {"value": 60, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                              "code": "mm[Hg]"}}]}  # fmt: skip
    glucose = {"resourceType": "Observation", "id": "f001", "status": "final",
               "identifier": [{"use": "official", "system": "http://www.bmc.nl/zorgportal/identifiers/observations",
                               "value": "6323"}],
               "code": {"coding": [{"system": "http://loinc.org", "code": "15074-8"}]},
               "subject": {"reference": "Patient/example"}, "effectivePeriod": {"start": "2013-04-02T09:30:10+01:00"},
               "valueQuantity": {"value": 6.3, "unit": "mmol/l", "system": "http://unitsofmeasure.org",
                                 "code": "mmol/L"}}  # fmt: skip
    headers = bearer(client, Role.CLINICIAN)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": panel}, {"resource": glucose}]}
    answer = client.post("/v1/observations", json=bundle, headers=headers).json()
    assert answer["stored"] == 3 and answer["refused"] == []
    series = client.get("/v1/observations?patient=Patient/example&since=2012-01-01T00:00:00Z", headers=headers).json()
    assert {(s["field"], s["value"]) for s in series} == {("systolic_bp", 107), ("diastolic_bp", 60), ("glucose", 6.3)}


def test_an_entry_that_is_not_valid_fhir_is_refused_alone(client: TestClient) -> None:
    headers = bearer(client, Role.CLINICIAN)
    broken = vital("bad", "8867-4", 70, "/min")
    broken["resource"]["status"] = "finalised"  # not a FHIR observation-status
    odd = vital("odd", "8867-4", 71, "/min", minutes_ago=5)
    odd["resource"]["valueQuantity"]["value"] = "seventy"
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [broken, odd, vital("good", "9279-1", 18, "/min"), {"resource": {"resourceType": "Device",
                                                                                         "id": "monitor-7"}}]}
    answer = client.post("/v1/observations", json=bundle, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stored"] == 1
    assert sorted((r["source"], r["code"]) for r in body["refused"]) == [
        ("Observation/bad", "invalid_fhir"), ("Observation/odd", "invalid_fhir")]
    assert "status" in next(r["reason"] for r in body["refused"] if r["source"] == "Observation/bad")
    shell = client.post("/v1/observations", json={"resourceType": "Bundle", "type": "batch", "timestamp": "yesterday", "entry": []},
                        headers=headers)  # fmt: skip
    assert shell.status_code == 422 and shell.json()["code"] == "invalid_fhir"
    none = client.post("/v1/observations", json={"resourceType": "Bundle", "type": "batch", "entry": [broken]},
                       headers=headers)  # fmt: skip
    assert none.status_code == 422 and none.json()["code"] == "observations_refused"


def test_two_sites_keep_their_own_records_of_the_same_patient_reference(client: TestClient) -> None:
    """Two clinics of one deployment know different people as ``Patient/w1``: each one's observations, scores and
    alerts come from its own values only, the same Observation sent by both is stored by both, and neither sees the
    other's."""
    clinic_a, clinic_b = bearer(client, Role.CLINICIAN, site="clinic-a"), bearer(client, Role.CLINICIAN, site="clinic-b")
    sick = ingest(client, scored_set("s", 10, rr=26, pulse=135), clinic_a)  # RR 3 + pulse 3 = NEWS2 6
    (news2,) = [s for s in sick["scores"] if s["method"] == "news2"]
    assert news2["score"] == 6 and [a["level"] for a in sick["alerts"]] == ["urgent"]
    well = ingest(client, scored_set("s", 10, rr=16, pulse=70), clinic_b)  # the same Observation ids, other values
    assert (well["stored"], well["duplicates"]) == (7, 0)  # stored for clinic-b too: not a duplicate of clinic-a's
    (news2,) = [s for s in well["scores"] if s["method"] == "news2"]
    assert news2["score"] == 0 and well["alerts"] == []  # from clinic-b's values alone
    assert ingest(client, scored_set("s", 10, rr=16, pulse=70), clinic_b)["duplicates"] == 7
    for headers, rate in ((clinic_a, 26.0), (clinic_b, 16.0)):
        series = client.get("/v1/observations?patient=Patient/w1", headers=headers).json()
        assert [o["value"] for o in series if o["field"] == "respiratory_rate"] == [rate]
    assert [a["level"] for a in client.get("/v1/alerts", headers=clinic_a).json()] == ["urgent"]
    assert client.get("/v1/alerts", headers=clinic_b).json() == []
    scores_b = client.get("/v1/monitoring/scores?patient=Patient/w1", headers=clinic_b).json()
    assert sorted((s["method"], s["score"]) for s in scores_b) == [("news2", 0.0), ("qsofa", 0.0)]
    board = client.get("/v1/monitoring/patients", headers=bearer(client, Role.CLINICIAN)).json()
    assert board == []  # the deployment's own site holds no observations
