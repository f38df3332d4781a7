"""Service throughput over loopback: the risk endpoint and the CDS Hooks patient-view call at concurrency 1, 16, 64.

    python -m benchmarks.service_throughput [--requests 300] [--concurrency 1,16,64] [--workers 2]
        [--database-url postgresql+psycopg://postgres@127.0.0.1/bench]

Starts ``cds serve --dev`` (SQLite in a temporary folder, or the database given; every result stored and audited)
with ``--workers`` processes as a child process on a free 127.0.0.1 port, sends a bounded number of requests per
level (and stops a level after ``--max-seconds``), and writes
``benchmarks/results/<device>-<date>-service-throughput-<database>-<n>-workers.{json,md}``. Traffic never leaves
loopback; the load generator (httpx, asyncio) runs on the same cores as the service.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.local_server import dev_server
from benchmarks.reporting import command_line, device_name, write_results
from cds.settings import REPO_ROOT

SAMPLES = REPO_ROOT / "samples"


async def run_level(
    client: httpx.AsyncClient, make_request, total: int, concurrency: int, max_seconds: float  # noqa: ANN001
) -> dict[str, float]:
    """Send ``total`` requests with ``concurrency`` in flight; latency per request."""
    latencies: list[float] = []
    failures = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    deadline = time.perf_counter() + max_seconds

    async def worker() -> None:
        nonlocal failures
        while not queue.empty() and time.perf_counter() < deadline:
            index = queue.get_nowait()
            method, url, kwargs = make_request(index)
            start = time.perf_counter()
            try:
                response = await client.request(method, url, **kwargs)
                failures += response.status_code != 200
            except httpx.TransportError:
                failures += 1
            latencies.append(time.perf_counter() - start)

    start, server_cpu, client_cpu = time.perf_counter(), _server_cpu_s(), _client_cpu_s()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    done = max(1, len(latencies))
    return {"concurrency": concurrency, "requests": len(latencies), "failures": failures,
            "requests_per_s": len(latencies) / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "server_cpu_ms_per_request": (_server_cpu_s() - server_cpu) / done * 1000,
            "client_cpu_ms_per_request": (_client_cpu_s() - client_cpu) / done * 1000}  # fmt: skip


def _client_cpu_s() -> float:
    """CPU seconds used by this process (the load generator), all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu_s() -> float:
    """CPU seconds used so far by this process's descendants: the service under test and its workers."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    family, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - family
        family |= frontier
    return sum(used[pid] for pid in family)


async def measure(base: str, total: int, levels: list[int], max_seconds: float) -> dict[str, list[dict[str, float]]]:
    """Both endpoints at every concurrency level."""
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as setup:
        token = (await setup.post("/v1/dev/token", json={"roles": ["clinician"]})).json()["access_token"]
    risk_body = json.loads((SAMPLES / "risk-pce-request.json").read_text())
    hook_body = json.loads((SAMPLES / "cds-hooks-patient-view.json").read_text())
    audience = base + "/cds-services/cds-risk"
    results: dict[str, list[dict[str, float]]] = {"POST /v1/risk/pce": [], "POST /cds-services/cds-risk": []}
    for level in levels:
        async with httpx.AsyncClient(base_url=base, timeout=60.0) as setup:
            hook_tokens = [
                (await setup.post("/v1/dev/hooks-token", json={"audience": audience})).json()["access_token"]
                for _ in range(total)
            ]  # one per call: each jti is single-use
        limits = httpx.Limits(max_connections=level, max_keepalive_connections=level)
        async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:  # fresh connections
            results["POST /v1/risk/pce"].append(await run_level(
                client, lambda _i: ("POST", "/v1/risk/pce", {"json": risk_body,
                                                             "headers": {"Authorization": f"Bearer {token}"}}),
                total, level, max_seconds))  # fmt: skip
        async with httpx.AsyncClient(base_url=base, timeout=60.0, limits=limits) as client:
            results["POST /cds-services/cds-risk"].append(await run_level(
                client, lambda i, tokens=hook_tokens: ("POST", "/cds-services/cds-risk", {"json": hook_body,
                                   "headers": {"Authorization": f"Bearer {tokens[i]}"}}),
                total, level, max_seconds))  # fmt: skip
        print(f"concurrency {level}: done", file=sys.stderr)
    return results


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Start the service, measure, write results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per endpoint and level")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time cap per endpoint and level")
    parser.add_argument("--database-url", default=None, help="e.g. postgresql+psycopg://postgres@127.0.0.1/test "
                        "(default: SQLite in a temporary folder)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="service worker processes (cds serve --workers)")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    with dev_server(args.database_url, workers=args.workers) as base:
        results = asyncio.run(measure(base, args.requests, levels, args.max_seconds))
    report: dict[str, object] = {
        "benchmark": "service_throughput", "device": device_name(), "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.service_throughput", argv),
        "server": f"cds serve --dev --workers {args.workers} ({'PostgreSQL' if args.database_url else 'SQLite'}, "
                  "every result stored + audited, group commit)", "workers": args.workers, "results": results,
    }  # fmt: skip
    database = "postgresql" if args.database_url else "sqlite"
    lines = [f"# Service throughput ({report['device']}, {report['date']})", f"Command: `{report['command']}`",
             f"Server: {report['server']}; client: httpx over loopback on the same 2-core machine. CPU per request: "
             "the service's processes and the load generator's, over each level.", "",
             "| endpoint | concurrency | requests | failures | requests/s | p50 ms | p99 ms | server CPU ms/request "
             "| load generator CPU ms/request |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for endpoint, rows in results.items():
        lines += [f"| {endpoint} | {r['concurrency']} | {r['requests']} | {r['failures']} | {r['requests_per_s']:.1f} "
                  f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['server_cpu_ms_per_request']:.1f} "
                  f"| {r['client_cpu_ms_per_request']:.1f} |" for r in rows]  # fmt: skip
    write_results(f"service-throughput-{database}-{args.workers}-workers", report, "\n".join(lines) + "\n")
    return report


if __name__ == "__main__":
    main()



