"""``cds serve``, ``cds audit``, ``cds apikey``: run the service and administer its store."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from cds.cli.common import out, run_command
from cds.settings import Settings

serve_app = typer.Typer()
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for service accounts.", no_args_is_help=True)


@serve_app.command("serve")
def serve(
    dev: Annotated[bool, typer.Option(help="Dev mode: self-signed tokens at POST /v1/dev/token.")] = False,
    host: Annotated[str | None, typer.Option(help="Listen address (default $CDS_HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default $CDS_PORT or 8000).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, one per core; with more than one, use "
                                         "PostgreSQL (SQLite lets one process write at a time).")] = 1,
) -> None:
    """Run the decision-support service (FastAPI under uvicorn) with the settings from CDS_* variables."""
    import os
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from cds.serving.api.app import check_security, create_app
    from cds.store.db import Database

    def body() -> None:
        if dev:
            os.environ["CDS_DEV_MODE"] = "true"  # for the worker processes too
        settings = Settings()
        address, listen = host or settings.host, port or settings.port
        if workers == 1:
            app = create_app(settings)
            out(f"cds serving on http://{address}:{listen} (OpenAPI at /docs)")
            uvicorn.run(app, host=address, port=listen, log_level="info", access_log=False)
            return
        check_security(settings)
        database = Database(settings.resolved_database_url)
        database.migrate(site=settings.site)  # once, before the workers start
        database.close()
        out(f"cds serving on http://{address}:{listen} with {workers} worker processes (OpenAPI at /docs)")
        config = uvicorn.Config("cds.serving.api.app:service_from_environment", factory=True, workers=workers,
                                host=address, port=listen, log_level="info", access_log=False)  # fmt: skip
        listener = config.bind_socket()
        # The workers' connections inherit this; without it, keep-alive responses wait ~40 ms for delayed ACKs
        # (asyncio sets it only on sockets it knows are TCP, and a socket handed to a worker process is not).
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        Multiprocess(config, sockets=[listener]).run()

    run_command(body)


@serve_app.command("fetch")
def fetch(
    study_uid: Annotated[str, typer.Argument(help="Study Instance UID")],
    url: Annotated[str, typer.Option(help="The PACS's DICOMweb root, e.g. http://pacs:8042/dicom-web")],
) -> None:
    """Fetch a study from a PACS over DICOMweb, store it and queue its pre-read (run by the service or `cds worker`)."""
    from cds.services.dicomweb_fetch import fetch_study
    from cds.serving.engine import build_engine
    from cds.store.audit import Actor

    def body() -> None:
        engine = build_engine(Settings())
        engine.database.migrate()
        try:
            receipt = fetch_study(engine, url, study_uid, actor=Actor("cli:fetch", "radiologist"))
        finally:
            engine.close()
        out(json.dumps({"stored": len(receipt.stored), "refused": [r.reason for r in receipt.refused],
                        "job": receipt.job_id}))  # fmt: skip

    run_command(body)


@serve_app.command("worker")
def worker() -> None:
    """Run background jobs from the database (for scaling out; set CDS_JOB_WORKERS=0 on the servers then)."""
    from cds.services.metrics import MetricsFlusher
    from cds.serving.engine import build_engine
    from cds.serving.worker import engine_worker

    def body() -> None:
        engine = build_engine(Settings())
        engine.database.migrate()
        engine.load_models()
        job_worker = engine_worker(engine)
        flusher = MetricsFlusher(engine.metrics, engine.database.session, engine.settings.metrics_flush_s)
        where = engine.database.engine.url.render_as_string(hide_password=True)
        out(f"cds worker {job_worker.worker_id} polling {where}")
        job_worker.start()
        flusher.start()
        try:
            job_worker.wait()
        except KeyboardInterrupt:
            out("stopping")
        finally:
            job_worker.stop()
            flusher.stop()
            engine.close()

    run_command(body)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit chain and hold it to its newest signed checkpoint; exit 1 naming what is wrong.

    Finds edited, deleted, inserted or reordered events inside the chain, and truncation, wiping or a consistent
    rewrite against the checkpoints kept outside the database.
    """
    from cds.store.audit import verify_chain
    from cds.store.audit_anchor import checkpoint_store, verify_anchor
    from cds.store.db import Database

    def body() -> None:
        settings = Settings()
        database, store = Database(settings.resolved_database_url), checkpoint_store(settings)
        database.migrate()
        with database.session() as session:
            report = verify_chain(session)
            anchor = verify_anchor(session, store.read(), store.public_key)
        if not report.ok:
            out(f"AUDIT CHAIN BROKEN at event {report.broken_at}: {report.reason} ({report.checked} events verified)")
        if not anchor.ok:
            out(f"AUDIT CHAIN DOES NOT MATCH ITS CHECKPOINT: {anchor.reason}")
        if not (report.ok and anchor.ok):
            raise typer.Exit(1)
        where = f"anchored at event {anchor.anchored_at}" if anchor.anchored_at else anchor.reason
        out(f"audit chain intact: {report.checked} events ({where})")

    run_command(body)


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head and append it to the checkpoint file (the service also does so every minute)."""
    from cds.store.audit_anchor import checkpoint_store
    from cds.store.db import Database

    def body() -> None:
        settings = Settings()
        database = Database(settings.resolved_database_url)
        database.migrate()
        with database.session() as session:
            checkpoint = checkpoint_store(settings).write(session)
        out(f"checkpoint at event {checkpoint.seq}" if checkpoint else "no new event since the last checkpoint")

    run_command(body)


@audit_app.command("export")
def audit_export() -> None:
    """Print every audit event as a FHIR AuditEvent (one JSON object per line)."""
    from sqlalchemy import select

    from cds.store.audit import to_fhir_audit_event
    from cds.store.db import Database
    from cds.store.tables import AuditEventRow

    def body() -> None:
        database = Database(Settings().resolved_database_url)
        database.migrate()
        with database.session() as session:
            for row in session.execute(select(AuditEventRow).order_by(AuditEventRow.seq)).scalars():
                out(json.dumps(to_fhir_audit_event(row)))

    run_command(body)


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Argument(help="Service account name.")],
    role: Annotated[list[str], typer.Option(help="Role; repeat for several (clinician, radiologist, ...).")],
) -> None:
    """Create an API key; it is printed once and only its hash is stored."""
    from cds.models.spec import coerce_enum
    from cds.serving.api.auth import Role, create_api_key
    from cds.store.db import Database

    def body() -> None:
        roles = [coerce_enum(Role, r) for r in role]
        database = Database(Settings().resolved_database_url)
        database.migrate()
        with database.session() as session:
            key = create_api_key(session, name, roles)
        out(key)

    run_command(body)
