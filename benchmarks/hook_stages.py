"""Where a CDS Hooks patient-view call spends its time, stage by stage, in one process without HTTP.

    python -m benchmarks.hook_stages [--calls 300] [--database-url postgresql+psycopg://postgres@127.0.0.1/bench]

Runs the stages of ``POST /cds-services/cds-risk`` on the sample request (``samples/cds-hooks-patient-view.json``)
one after another, as the route and :func:`cds.services.cds_hooks.patient_view` do, and reports each stage's wall
time (median) and CPU time (mean, all threads: the release write runs on the group-commit writer thread). The
first 50 calls warm up. Writes ``benchmarks/results/<device>-<date>-hook-stages-<database>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from benchmarks.reporting import command_line, device_name, write_results
from cds.interop.cds_hooks import HookRequest, card_for, merge_prefetch
from cds.interop.fhir_inputs import parse_bundle
from cds.services import follow_up
from cds.services.risk import assess_record, release_panel
from cds.serving.api.hooks_auth import DevHookClient, HookTokenVerifier
from cds.serving.engine import build_engine
from cds.settings import REPO_ROOT, Settings
from cds.store.audit import Actor, AuditAction, record_event

WARM_UP = 50
AUDIENCE = "http://127.0.0.1:8000/cds-services/cds-risk"


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Time every stage of many calls and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary folder")
    args = parser.parse_args(argv)
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}

    def stage(name: str, run: Callable[[], Any]) -> Any:
        start, used = time.perf_counter(), time.process_time()
        value = run()
        wall.setdefault(name, []).append((time.perf_counter() - start) * 1000)
        cpu.setdefault(name, []).append((time.process_time() - used) * 1000)
        return value

    with tempfile.TemporaryDirectory() as data:
        overrides: dict[str, Any] = {"data_dir": data}
        if args.database_url:
            overrides["database_url"] = args.database_url
        engine = build_engine(Settings(**overrides))
        engine.database.migrate()
        body = json.loads((REPO_ROOT / "samples" / "cds-hooks-patient-view.json").read_text())
        actor = Actor("cds-client:bench", "cds_client")
        ehr = DevHookClient(engine.settings.data_dir / "dev-keys")
        verifier = HookTokenVerifier({ehr.issuer: ehr.client})
        for _ in range(args.calls):
            token = ehr.mint(AUDIENCE)
            client = stage("verify the client's JWT (ES384)", lambda t=token: verifier.verify(t, AUDIENCE))
            request = stage("validate the request", lambda: HookRequest.model_validate(body))
            extracted = stage("read the FHIR record (fhir.resources)", lambda r=request: parse_bundle(
                merge_prefetch(r.prefetch or {}), complete_lists=True))
            entries = stage("score the panel", lambda e=extracted: assess_record(e, engine.settings.risk_population))

            def release(session: Session, c: Any = client, e: Any = entries) -> None:
                verifier.remember(session, c)
                release_panel(session, e, subject="Patient/p1", actor=actor)
                record_event(session, AuditAction.HOOKS_CALL, actor, "cds-services/cds-risk", subject="Patient/p1")

            stage("release: jti, results, audit, commit", lambda r=release: engine.database.write(r))
            stage("registry follow-up", lambda: follow_up.statuses(engine, condition=None, sites=[engine.settings.site],
                                                                   patient="Patient/p1", actor=actor, audited=False))
            cards = stage("cards", lambda e=entries, lang=engine.settings.card_language: [
                card_for(x, "http://127.0.0.1:8000", lang) for x in e])
            stage("response JSON", lambda c=cards: json.dumps([x.model_dump(mode="json", exclude_none=True)
                                                               for x in c]))  # fmt: skip
        engine.close()
    rows = [{"stage": name, "wall_p50_ms": float(np.median(values[WARM_UP:])),
             "cpu_mean_ms": float(np.mean(cpu[name][WARM_UP:]))} for name, values in wall.items()]  # fmt: skip
    database = "postgresql" if args.database_url else "sqlite"
    report: dict[str, object] = {
        "benchmark": "hook_stages", "device": device_name(), "date": dt.date.today().isoformat(),
        "database": database, "command": command_line("benchmarks.hook_stages", argv), "calls": args.calls,
        "cpus": os.cpu_count(), "stages": rows,
    }  # fmt: skip
    lines = [f"# CDS Hooks patient-view, stage by stage ({report['device']}, {database}, {report['date']})",
             f"Command: `{report['command']}`", "",
             "| stage | wall p50 ms | CPU mean ms |", "| --- | ---: | ---: |"]  # fmt: skip
    lines += [f"| {r['stage']} | {r['wall_p50_ms']:.2f} | {r['cpu_mean_ms']:.2f} |" for r in rows]
    lines += [f"| **total** | {sum(r['wall_p50_ms'] for r in rows):.2f} | {sum(r['cpu_mean_ms'] for r in rows):.2f} |"]
    write_results(f"hook-stages-{database}", report, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return report


if __name__ == "__main__":
    main()
