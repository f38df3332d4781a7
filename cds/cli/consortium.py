"""``cds consortium``: this site's signing keys, and signed results shared with the other member sites."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cds.cli.common import out, run_command
from cds.errors import InvalidInputError
from cds.settings import Settings

app = typer.Typer(help="Share signed results with consortium members, and verify theirs.", no_args_is_help=True)
keys_app = typer.Typer(help="This site's signing keys ($CDS_SITE_KEYS_DIR).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _read_json(path: Path) -> dict[str, object]:
    from cds.services.consortium import parse_bundle

    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist", code="input_missing")
    return parse_bundle(path.read_bytes())


def _write_json(document: object, output: Path | None) -> None:
    text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    if output is None:
        out(text.rstrip("\n"))
    else:
        output.write_text(text, encoding="utf-8")
        out(f"wrote {output}")


@keys_app.command("rotate")
def rotate() -> None:
    """Make a new active signing key; the one before it is retired (what it signed still verifies)."""
    from cds.services.consortium import key_ring

    def body() -> None:
        entry = key_ring(Settings()).rotate()
        out(f"active key {entry.kid} (made {entry.created}); publish the key set again: cds consortium keys export")

    run_command(body)


@keys_app.command("revoke")
def revoke(kid: Annotated[str, typer.Argument(help="The key's kid (see `keys list`).")]) -> None:
    """Revoke a key (compromised): it leaves the published key set, so nothing it signed verifies any more."""
    from cds.services.consortium import key_ring

    def body() -> None:
        key_ring(Settings()).revoke(kid)
        out(f"revoked {kid}; publish the key set again")

    run_command(body)


@keys_app.command("list")
def list_keys() -> None:
    """This site's keys and their states."""
    from cds.services.consortium import key_ring

    def body() -> None:
        for entry in key_ring(Settings()).entries():
            out(f"{entry.kid}  {entry.state:8}  {entry.created}")

    run_command(body)


@keys_app.command("export")
def export(output: Annotated[Path | None, typer.Option(help="File to write (default: stdout); members put it in "
                                                       "their $CDS_CONSORTIUM_KEYS_DIR as <site>.jwks.json.")]
           = None) -> None:  # fmt: skip
    """The key set to publish to the other members: public keys only, active and retired, never revoked ones."""
    from cds.consortium.site_keys import public_key_set
    from cds.services.consortium import key_ring

    run_command(lambda: _write_json(public_key_set(key_ring(Settings())), output))


@app.command("share")
def share(
    report: Annotated[Path, typer.Argument(help="A signed (final) FHIR DiagnosticReport, JSON.")],
    output: Annotated[Path | None, typer.Option(help="File for the signed Bundle (default: stdout).")] = None,
) -> None:
    """Sign a report a specialist signed as a Bundle other members verify (audited as consortium.share)."""
    from cds.services.consortium import share_report
    from cds.store.audit import Actor
    from cds.store.db import Database

    def body() -> None:
        settings = Settings()
        database = Database(settings.resolved_database_url)
        try:
            database.migrate()
            _write_json(share_report(database, settings, _read_json(report), actor=Actor("cli:consortium", "admin")),
                        output)  # fmt: skip
        finally:
            database.close()

    run_command(body)


@app.command("verify")
def verify(bundle: Annotated[Path, typer.Argument(help="A shared Bundle, JSON.")]) -> None:
    """Check a shared Bundle's signature against the members' keys; exit 2 with the reason when it fails."""
    from cds.consortium.bundle_signature import verify_bundle
    from cds.services.consortium import trust_store

    def body() -> None:
        verified = verify_bundle(_read_json(bundle), trust_store(Settings()))
        out(f"verified: signed by site {verified.site} with key {verified.kid} at {verified.signed_at}")

    run_command(body)
