"""Anchors for the audit chain outside the database: signed checkpoints of the chain head in a file store.

The hash chain (:mod:`cds.store.audit`) shows any edit, deletion or reordering *inside* the chain, but someone who
can write the database can also truncate it, wipe it, or rewrite it consistently from any event on with fresh
hashes. So the head (sequence number and hash) is signed periodically with an Ed25519 key the database does not
hold, and each signed checkpoint is appended to a file outside the database. :func:`verify_anchor` then holds the
chain to the newest checkpoint whose signature verifies: the chain must still contain that event with that hash.
Truncation (the event is gone), wiping (everything is gone) and consistent rewrites (the hash differs) all fail it;
a forged or edited checkpoint fails its signature.

Keys: ``CDS_AUDIT_KEY_FILE`` names a PEM Ed25519 private key kept away from the database (and its backups); without
one, a key is made in the data folder on first use, which only protects against someone who can write the
database but not the data folder.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from cds.errors import ConfigurationError
from cds.periodic import Periodic
from cds.settings import Settings
from cds.store.db import Database
from cds.store.tables import AuditEventRow, AuditHeadRow

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement that the chain held event ``seq`` with ``hash`` at ``at``."""

    seq: int
    hash: str
    at: str
    signature: str

    @property
    def message(self) -> bytes:
        """What is signed."""
        return f"cds-audit-checkpoint:{self.seq}:{self.hash}:{self.at}".encode()


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 key at ``path``, made (mode 0600) when the file does not exist yet.

    Raises:
        ConfigurationError: ``audit_key_invalid``: the file is not a PEM Ed25519 private key.
    """
    if not path.exists():
        key = Ed25519PrivateKey.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
        path.chmod(0o600)
        log.warning("made a new audit signing key; keep it away from the database and its backups")
        return key
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"{path.name} is not a PEM private key", code="audit_key_invalid") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigurationError(f"{path.name} is not an Ed25519 key", code="audit_key_invalid")
    return loaded


class CheckpointStore:
    """Signed checkpoints appended to ``folder/checkpoints.jsonl``, one JSON object per line.

    Args:
        folder: Where the file lives (outside the database).
        key: The signing key (its public half verifies).
    """

    def __init__(self, folder: Path, key: Ed25519PrivateKey) -> None:
        self.path = folder / CHECKPOINTS
        self.key = key

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The key checkpoints verify with."""
        return self.key.public_key()

    def read(self) -> list[Checkpoint]:
        """Every checkpoint in the file, oldest first (lines that do not parse are skipped, and so fail no one)."""
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(Checkpoint(**json.loads(line)))
            except (ValueError, TypeError):
                continue
        return found

    def write(self, session: Session) -> Checkpoint | None:
        """Sign and append the chain's current head; ``None`` when nothing was appended since the last checkpoint."""
        head = session.get(AuditHeadRow, 1)
        if head is None or head.seq == 0:
            return None
        existing = self.read()
        if existing and existing[-1].seq >= head.seq:
            return None
        at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        unsigned = Checkpoint(seq=head.seq, hash=head.hash, at=at, signature="")
        signature = base64.b64encode(self.key.sign(unsigned.message)).decode()
        checkpoint = Checkpoint(seq=head.seq, hash=head.hash, at=at, signature=signature)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps(checkpoint.__dict__) + "\n")
        return checkpoint


@dataclass(frozen=True)
class AnchorReport:
    """Whether the chain still holds the newest signed checkpoint; where and why not."""

    ok: bool
    anchored_at: int | None
    reason: str = ""


def _signed(checkpoint: Checkpoint, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(checkpoint.signature), checkpoint.message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_anchor(session: Session, checkpoints: list[Checkpoint], key: Ed25519PublicKey) -> AnchorReport:
    """Hold the chain to the newest checkpoint whose signature verifies (see the module docstring)."""
    if not checkpoints:
        return AnchorReport(True, None, "no checkpoint yet")
    forged = [c.seq for c in checkpoints if not _signed(c, key)]
    if forged:
        return AnchorReport(False, None, f"checkpoint(s) at event {', '.join(map(str, forged))} fail their "
                                         "signature: the checkpoint file was edited")  # fmt: skip
    newest = max(checkpoints, key=lambda c: c.seq)
    row = session.execute(select(AuditEventRow).where(AuditEventRow.seq == newest.seq)).scalar_one_or_none()
    if row is None:
        return AnchorReport(False, newest.seq, f"event {newest.seq}, signed at {newest.at}, is gone: the chain was "
                                               "truncated or wiped")  # fmt: skip
    if row.hash != newest.hash:
        return AnchorReport(False, newest.seq, f"event {newest.seq} does not have the hash signed at {newest.at}: "
                                               "the chain was rewritten")  # fmt: skip
    return AnchorReport(True, newest.seq)


def pseudonym_key(key: Ed25519PrivateKey) -> bytes:
    """The audit details' pseudonym key, derived from the signing key (one secret to keep, not two)."""
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                            serialization.NoEncryption())  # fmt: skip
    return hashlib.sha256(b"cds-audit-pseudonyms\0" + raw).digest()


def checkpoint_store(settings: Settings) -> CheckpointStore:
    """The checkpoint store ``settings`` name (its key made on first use)."""
    return CheckpointStore(settings.resolved_audit_checkpoint_dir, load_signing_key(settings.resolved_audit_key_file))


class Checkpointer:
    """Writes a checkpoint every ``interval_s`` in a daemon thread, and a last one when stopped.

    Args:
        database: The chain's database.
        store: Where checkpoints go.
        interval_s: Seconds between checkpoints.
    """

    def __init__(self, database: Database, store: CheckpointStore, interval_s: float) -> None:
        self.database, self.store, self.interval_s = database, store, interval_s
        self._rounds = Periodic("cds-audit-checkpoint", self.checkpoint, interval_s, final=True, join_s=10)

    def checkpoint(self) -> Checkpoint | None:
        """Write one now (``None`` when the head has not moved); a database outage is logged, not raised."""
        try:
            with self.database.session() as session:
                return self.store.write(session)
        except Exception as exc:  # noqa: BLE001 - try again at the next interval
            log.error("audit checkpoint failed: %s", type(exc).__name__)
            return None

    def start(self) -> None:
        """Begin checkpointing."""
        self._rounds.start()

    def stop(self) -> None:
        """Stop, after a last checkpoint."""
        self._rounds.stop()
