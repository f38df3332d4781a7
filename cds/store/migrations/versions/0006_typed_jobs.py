"""Typed job data: a failure's reason code in its own column; pre-read payloads name their stored instances.

Jobs written before this revision are rewritten once into the shapes of :mod:`cds.results.jobs`:

* ``jobs.error_code``: the code of the last failure, taken from the stored ``"<code>: <message>"`` text;
  ``jobs.refused``: whether a failed job failed because its input was refused (its code is a reason code, which
  before this revision only refusals ended a job with).
* pre-read payloads: ``files`` (paths) become ``instances`` (path, SOP Instance UID, Study Instance UID, as the
  DICOM index recorded them when STOW-RS stored the files); ``actor`` and ``role``, which the job row holds
  already, leave the payload; refusals in finished results name the instance they cover.
* pathology payloads: ``actor``, ``role`` and ``subject`` leave the payload (the job row holds them).

Revision ID: 0006
Revises: 0005
"""

import json
from pathlib import PurePath
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None
_WHO = ("actor", "role", "subject")


def _code(error: str) -> str:
    code, separator, _ = error.partition(": ")
    return code[:64] if separator and code.isidentifier() else ""


def _indexed(connection: sa.Connection, paths: list[str]) -> dict[str, tuple[str, str]]:
    """Stored path -> (SOP Instance UID, Study Instance UID), from the DICOM index."""
    query = sa.text("SELECT path, sop_instance_uid, study_uid FROM dicom_instances WHERE origin = 'stored' AND "
                    "path IN :paths").bindparams(sa.bindparam("paths", expanding=True))
    found: dict[str, tuple[str, str]] = {}
    for start in range(0, len(paths), 500):
        found.update({path: (sop, study) for path, sop, study in
                      connection.execute(query, {"paths": paths[start:start + 500]})})  # fmt: skip
    return found


def _preread(indexed: dict[str, tuple[str, str]], payload: dict[str, Any], result: dict[str, Any] | None
             ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    files = [str(f) for f in payload.get("files", [])]
    instances = [{"path": f, "sop_instance_uid": indexed.get(f, ("", ""))[0],
                  "study_uid": indexed.get(f, ("", ""))[1]} for f in files]  # fmt: skip
    typed = {k: v for k, v in payload.items() if k not in ("files", *_WHO)} | {"instances": instances}
    if result is not None:
        by_name = {PurePath(i["path"]).name: i["sop_instance_uid"] for i in instances if i["sop_instance_uid"]}
        for refusal in result.get("refusals", []):
            sop = by_name.get(str(refusal.get("source", "")))
            refusal.setdefault("sop_instance_uids", [sop] if sop else [])
    return typed, result


def upgrade() -> None:
    """Add ``jobs.error_code`` and rewrite existing payloads and results into the typed shapes."""
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("error_code", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("refused", sa.Boolean, nullable=False, server_default=sa.false()))
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, kind, payload, result, error, state FROM jobs")).all()
    files = sorted({str(f) for _i, kind, text, _r, _e, _s in rows if kind == "preread"
                    for f in json.loads(text or "{}").get("files", [])})  # fmt: skip
    indexed = _indexed(connection, files) if files else {}
    for job_id, kind, payload_text, result_text, error, state in rows:
        payload = json.loads(payload_text or "{}")
        result = json.loads(result_text) if result_text else None
        if kind == "preread" and "files" in payload:
            payload, result = _preread(indexed, payload, result)
        elif kind == "pathology":
            payload = {k: v for k, v in payload.items() if k not in _WHO}
        connection.execute(
            sa.text("UPDATE jobs SET payload = :payload, result = :result, error_code = :code, refused = :refused "
                    "WHERE id = :id"),
            {"payload": json.dumps(payload), "code": _code(error or ""), "id": job_id,
             "refused": state == "failed" and _code(error or "").islower(),
             "result": json.dumps(result) if result is not None else (result_text or "")})  # fmt: skip


def downgrade() -> None:
    """Pre-read payloads back to file lists (with the job's actor and role); drop ``jobs.error_code``."""
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, payload, created_by, role FROM jobs WHERE kind = 'preread'")).all()
    for job_id, payload_text, actor, role in rows:
        payload = json.loads(payload_text or "{}")
        if "instances" in payload:
            files = [i["path"] for i in payload.pop("instances")]
            payload |= {"files": files, "actor": actor, "role": role}
            connection.execute(sa.text("UPDATE jobs SET payload = :payload WHERE id = :id"),
                               {"payload": json.dumps(payload), "id": job_id})
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("refused")
        batch.drop_column("error_code")
