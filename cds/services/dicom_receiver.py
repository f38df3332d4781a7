"""Studies arriving over DICOM C-STORE: held per study until they settle, then stored and read like a STOW-RS one.

A modality or PACS sends a study as a stream of C-STORE requests, often over several associations, with no message
that says "the study is complete". Each received instance is written to disk as it arrives (``data_dir/
dicom-incoming/<study>/``) and checked by the defensive reader at once, so a bad one is refused in its own C-STORE
response. A study is complete when nothing of it has arrived for ``settle_s`` seconds: it is then stored and
indexed, and one pre-read is queued (:func:`cds.services.stow.accept_instances`). Instances already stored (a PACS
re-sending a study) are dropped, so a study is never read twice for the same images. The waiting studies are files,
not memory: a restart finds them and settles them.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from cds.errors import CdsError
from cds.services.engine import Engine
from cds.services.stow import OVER_BUDGET, PLAIN_UID, accept_instances, check_part
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.tables import DicomInstanceRow

log = logging.getLogger(__name__)
SENDER_FILE = "sender.txt"  # the calling AE title of the study's first association


@dataclass(frozen=True)
class Received:
    """The outcome of one C-STORE: ``None`` reason when kept."""

    study_uid: str | None
    reason: str | None
    too_large: bool = False


@dataclass(frozen=True)
class Settled:
    """A study that settled: the pre-read queued (``None`` when nothing new was stored) and what was dropped."""

    study_uid: str
    job_id: str | None
    stored: int
    already_stored: int
    refused: int


class StudyReceiver:
    """Holds received instances per study and hands each settled study to the STOW-RS path."""

    def __init__(self, engine: Engine, *, settle_s: float) -> None:
        self.engine = engine
        self.settle_s = settle_s
        self.incoming = engine.settings.data_dir / "dicom-incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)

    def receive(self, data: bytes, calling_ae: str) -> Received:
        """Check one instance (a Part 10 file's bytes) and hold it under its study; the reason when refused."""
        if len(data) > self.engine.settings.max_instance_bytes:
            return Received(None, "instance_too_large", too_large=True)
        scratch = self.incoming / f".{uuid.uuid4().hex}.part"
        scratch.write_bytes(data)
        checked = check_part(scratch, "C-STORE", self.engine.settings.max_instance_bytes)
        if checked.error is not None:
            scratch.unlink(missing_ok=True)
            return Received(None, checked.error.code, too_large=checked.error.code in OVER_BUDGET)
        uids = checked.uids
        study = uids["StudyInstanceUID"]
        folder = self.incoming / hashlib.sha256(study.encode()).hexdigest()[:32]
        folder.mkdir(exist_ok=True)
        if not (folder / SENDER_FILE).exists():
            (folder / SENDER_FILE).write_text(calling_ae[:16], encoding="ascii", errors="replace")
        sop = uids["SOPInstanceUID"]
        scratch.replace(folder / (f"{sop}.dcm" if PLAIN_UID.match(sop) else f"{uuid.uuid4().hex}.dcm"))
        return Received(study, None)

    def settle(self, now: float | None = None) -> list[Settled]:
        """Store and queue every study that received nothing for ``settle_s`` seconds."""
        now = time.time() if now is None else now
        settled = []
        for folder in sorted(p for p in self.incoming.iterdir() if p.is_dir()):
            files = sorted(folder.glob("*.dcm"))
            newest = max((f.stat().st_mtime for f in files), default=folder.stat().st_mtime)
            if now - newest < self.settle_s:
                continue
            try:
                settled.append(self._store(folder, files))
            except CdsError as exc:  # e.g. the job queue is full: the study waits for the next round
                log.warning("a received study could not be stored yet: %s", exc.code)
        return settled

    def _store(self, folder: Path, files: list[Path]) -> Settled:
        """Store the study's new instances and queue their read; the study leaves the waiting folder only then."""
        sender = (folder / SENDER_FILE).read_text(encoding="ascii") if (folder / SENDER_FILE).exists() else ""
        site = self.engine.settings.dicom_calling_sites.get(sender.strip(), "")  # "": this deployment's own
        actor = Actor(f"dicom:{sender or 'unknown'}", "modality", site=site)
        with self.engine.database.session() as session:
            known = set(session.scalars(select(DicomInstanceRow.sop_instance_uid).where(
                DicomInstanceRow.sop_instance_uid.in_([f.stem for f in files]))))  # fmt: skip
        fresh = [f for f in files if f.stem not in known]
        receipt = None
        if fresh:
            target = self.engine.settings.data_dir / "dicom" / uuid.uuid4().hex
            target.mkdir(parents=True)
            linked = [_link(f, target / f.name) for f in fresh]
            # a failure (the job queue full) removes the target, not the waiting study: the next round retries it
            receipt = accept_instances(self.engine, target, linked, actor=actor)
        _discard(folder, files)
        stored = receipt.stored if receipt else []
        study_uid = stored[0].study_uid if stored else ""
        with self.engine.database.session() as session:
            record_event(session, AuditAction.IMAGING_RECEIVE, actor, f"ImagingStudy/{study_uid or 'unknown'}",
                         detail={"stored": len(stored), "already_stored": len(files) - len(fresh),
                                 "refused": len(receipt.refused) if receipt else 0,
                                 "job": receipt.job_id or "" if receipt else ""})  # fmt: skip
        return Settled(study_uid, receipt.job_id if receipt else None, len(stored), len(files) - len(fresh),
                       len(receipt.refused) if receipt else 0)  # fmt: skip


def _discard(folder: Path, files: list[Path]) -> None:
    """Remove the files this round handled; the folder too unless an instance arrived meanwhile (it waits)."""
    for path in files:
        path.unlink(missing_ok=True)
    if not any(folder.glob("*.dcm")):
        shutil.rmtree(folder, ignore_errors=True)


def _link(source: Path, target: Path) -> Path:
    """``target`` as a hard link to ``source`` (a copy across file systems)."""
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copyfile(source, target)
    return target
