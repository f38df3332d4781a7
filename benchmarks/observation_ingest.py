"""Observation ingest over loopback: a simulated cohort of bedside monitors sending NEWS2 sets to the service.

    python -m benchmarks.observation_ingest [--patients 200] [--rounds 5] [--concurrency 16] [--sets-per-request 1]
                                            [--home-monitors 0]
                                            [--database-url postgresql+psycopg://postgres@127.0.0.1/test]

Starts ``cds serve --dev`` (SQLite in a temporary folder, or the given database) on a free 127.0.0.1 port. Each
simulated monitor sends one Bundle per round: a full set of 7 vital signs (respiratory rate, SpO2, oxygen, SBP,
pulse, ACVPU, temperature), one minute apart in measurement time, or with ``--sets-per-request K`` the K sets measured
since its last upload, a minute apart (a monitor or wearable that uploads every K minutes; scores are recomputed
once per request, from the newest values); a fifth of the patients deteriorate, so their
NEWS2 crosses the urgent and emergency thresholds and raises and escalates alerts. Every value is stored, every
score released and audited, within the request. Reports observations stored per second, and the latency of the
requests that raised or escalated an alert (the alert exists when the response arrives, so this is the alert
latency from ingest), p50 and p99. ``--home-monitors N`` adds N home blood-pressure monitors of patients in the
hypertension registry (enrolled first), each sending one reading per round taken by the patient at home, a day
apart; a fifth of them read above target, so their week's mean raises home-BP alerts. Writes
``benchmarks/results/<device>-<date>-observation-ingest-<db>.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import sys
import time
from typing import Any

import httpx
import numpy as np

from benchmarks.local_server import dev_server
from benchmarks.reporting import command_line, device_name, write_results


def vital_set(patient: int, round_: int, when: dt.datetime, deteriorating: bool, sets: int = 1) -> dict[str, Any]:
    """One monitor's upload: ``sets`` sets of the 7 NEWS2 parameters of one patient, a minute apart, to ``when``."""
    worse = round_ if deteriorating else 0
    values = [("9279-1", 16 + 3 * worse, "/min"), ("59408-5", 97 - worse, "%"), ("3151-8", 0, "L/min"),
              ("8480-6", 125 - 8 * worse, "mm[Hg]"), ("8867-4", 75 + 15 * worse, "/min"),
              ("8310-5", 37.0 + 0.4 * worse, "Cel")]  # fmt: skip
    entries: list[dict[str, Any]] = []
    for k in range(sets):
        at = (when - dt.timedelta(minutes=sets - 1 - k)).isoformat()
        tag = f"p{patient}-r{round_}-s{k}"
        for code, value, unit in values:
            entries.append({"resource": {
                "resourceType": "Observation", "id": f"{tag}-{code}", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "subject": {"reference": f"Patient/sim-{patient}"},
                "device": {"reference": f"Device/monitor-{patient}"},
                "effectiveDateTime": at, "valueQuantity": {"value": value, "code": unit}}})  # fmt: skip
        entries.append({"resource": {
            "resourceType": "Observation", "id": f"{tag}-acvpu", "status": "final",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1104441000000107"}]},
            "subject": {"reference": f"Patient/sim-{patient}"}, "effectiveDateTime": at,
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct",
                                                 "code": "248234008"}]}}})  # fmt: skip
    return {"resourceType": "Bundle", "type": "batch", "entry": entries}


def home_reading(patient: int, round_: int, when: dt.datetime, high: bool) -> dict[str, Any]:
    """One home BP monitor's reading: a BP panel taken by the patient, no encounter."""
    systolic, diastolic = (148, 92) if high else (124, 78)
    return {"resourceType": "Observation", "id": f"home{patient}-r{round_}", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": f"Patient/home-{patient}"},
            "performer": [{"reference": f"Patient/home-{patient}"}],
            "device": {"display": "home BP monitor"}, "effectiveDateTime": when.isoformat(),
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                           "valueQuantity": {"value": systolic + round_ % 3, "code": "mm[Hg]"}},
                          {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                           "valueQuantity": {"value": diastolic, "code": "mm[Hg]"}}]}  # fmt: skip


async def simulate(base: str, patients: int, rounds: int, concurrency: int, sets: int = 1,
                   home_monitors: int = 0) -> dict[str, float]:  # fmt: skip
    """Send every monitor's rounds with ``concurrency`` requests in flight; measure throughput and latencies."""
    async with httpx.AsyncClient(base_url=base, timeout=120.0) as setup:
        token = (await setup.post("/v1/dev/token", json={"roles": ["clinician"]})).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for home in range(home_monitors):
            (await setup.post("/v1/registries/hypertension", json={"patient": f"Patient/home-{home}"},
                              headers=headers)).raise_for_status()  # fmt: skip
    start_time = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=(rounds + 1) * sets)
    now = dt.datetime.now(dt.UTC)
    work = [(r, p) for r in range(rounds) for p in range(patients)]  # round by round, as monitors send
    work += [(r, -1 - h) for r in range(rounds) for h in range(home_monitors)]  # home monitors: negative numbers
    random.Random(7).shuffle(work)
    work.sort(key=lambda item: item[0])  # still round by round, bedside and home devices mixed within a round
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    stored = failures = 0
    all_ms: list[float] = []
    alert_ms: list[float] = []

    async def monitor(client: httpx.AsyncClient) -> None:
        nonlocal stored, failures
        while not queue.empty():
            round_, patient = queue.get_nowait()
            if patient < 0:  # a home monitor: one reading a day, the last one now
                home = -1 - patient
                when = now - dt.timedelta(days=rounds - 1 - round_, minutes=1)
                body: dict[str, Any] = home_reading(home, round_, when, home % 5 == 0)
            else:
                body = vital_set(patient, round_, start_time + dt.timedelta(minutes=(round_ + 1) * sets),
                                 patient % 5 == 0, sets)  # fmt: skip
            sent = time.perf_counter()
            response = await client.post("/v1/observations", json=body, headers=headers)
            elapsed = (time.perf_counter() - sent) * 1000
            all_ms.append(elapsed)
            if response.status_code != 200:
                failures += 1
                continue
            answer = response.json()
            stored += answer["stored"]
            if any(a["action"] in ("opened", "escalated") for a in answer["alerts"]):
                alert_ms.append(elapsed)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=120.0, limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(monitor(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - began
    return {"requests": len(all_ms), "failures": failures, "observations_stored": stored, "seconds": seconds,
            "observations_per_s": stored / seconds, "requests_per_s": len(all_ms) / seconds,
            "p50_ms": float(np.percentile(all_ms, 50)), "p99_ms": float(np.percentile(all_ms, 99)),
            "alerts_raised": len(alert_ms),
            "alert_p50_ms": float(np.percentile(alert_ms, 50)) if alert_ms else float("nan"),
            "alert_p99_ms": float(np.percentile(alert_ms, 99)) if alert_ms else float("nan")}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Start the service, simulate the monitors, write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sets-per-request", type=int, default=1, help="vital sets per upload, a minute apart")
    parser.add_argument("--home-monitors", type=int, default=0, help="home BP monitors of registry patients")
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    args = parser.parse_args(argv)
    with dev_server(args.database_url) as base:
        result = asyncio.run(simulate(base, args.patients, args.rounds, args.concurrency, args.sets_per_request,
                                      args.home_monitors))
    database = "postgresql" if args.database_url else "sqlite"
    report: dict[str, object] = {
        "benchmark": "observation_ingest", "device": device_name(), "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.observation_ingest", argv), "database": database,
        "patients": args.patients, "rounds": args.rounds, "concurrency": args.concurrency,
        "sets_per_request": args.sets_per_request, "home_monitors": args.home_monitors, "results": result,
    }  # fmt: skip
    print(result, file=sys.stderr)
    lines = [f"# Observation ingest ({report['device']}, {report['date']}, {database})",
             f"Command: `{report['command']}`",
             "Server: cds serve --dev, one uvicorn worker; client: httpx over loopback on the same machine. Each "
             f"request is one monitor's Bundle of {args.sets_per_request} set(s) of 7 vital signs, or one home BP "
             f"reading ({args.home_monitors} home monitors); every value stored, NEWS2 and qSOFA released and "
             "audited, home BP checked against the registry's target, alerts raised, within the request.", "",
             "| monitors | rounds | sets/request | concurrency | requests | failures | observations/s | p50 ms | "
             "p99 ms | alerts | alert p50 ms | alert p99 ms |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
             f"| {args.patients} | {args.rounds} | {args.sets_per_request} | {args.concurrency} | {result['requests']} "
             f"| {result['failures']} "
             f"| {result['observations_per_s']:.0f} | {result['p50_ms']:.1f} | {result['p99_ms']:.1f} "
             f"| {result['alerts_raised']} | {result['alert_p50_ms']:.1f} | {result['alert_p99_ms']:.1f} |",
             ]  # fmt: skip
    batched = f"-{args.sets_per_request}-sets" if args.sets_per_request > 1 else ""
    batched += f"-{args.home_monitors}-home" if args.home_monitors else ""
    write_results(f"observation-ingest-{database}{batched}", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()
