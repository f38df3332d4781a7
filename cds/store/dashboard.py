"""What the ML engineer's dashboard reads from the store and from the model cards.

* :func:`card_headlines` reads the headline of each evaluation split from a model card, in the format
  :mod:`cds.models.card` writes it: ``### test (n = 2000; macro AUC 0.9273)`` for classification and
  ``### test (n = 16 volumes; mean Dice 0.7885)`` for segmentation (the tables under them are not read).
* :func:`refusals_by_day` counts refused images (:attr:`AuditAction.IMAGING_PREREAD` events with outcome
  ``refused``; the reason is in the event's detail) and jobs that failed for good (:attr:`AuditAction.JOB_FAILED`;
  the reason code is in the detail, ``unknown`` for events written before failures recorded their code) per UTC
  day, from the audit trail.
* :func:`agreement` is the share of readers' current verdicts (the newest per finding) that accept the AI finding,
  overall, per model and per (model, label).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from cds.store.audit import AuditAction, AuditOutcome
from cds.store.tables import AuditEventRow, FindingFeedbackRow

_HEADLINE = re.compile(r"^### (?P<split>.+?) \(n = (?P<n>\d+)(?P<volumes> volumes)?; "
                       r"(?P<metric>macro AUC|mean Dice) (?P<value>\d+(?:\.\d+)?|—)\)\s*$", re.MULTILINE)
IMAGE_REFUSED = "image_refused"
JOB_FAILED = "job_failed"


@dataclass(frozen=True)
class CardHeadline:
    """One evaluation split's headline in a model card.

    Attributes:
        split: The split's name as the card gives it (``validation``, ``test``, ``test (Pima.te)``).
        n: Cases (classification) or volumes (segmentation) evaluated.
        unit: ``cases`` or ``volumes``.
        metric: ``macro AUC`` or ``mean Dice``.
        value: The metric; None where the card shows a dash (no label had both classes).
    """

    split: str
    n: int
    unit: str
    metric: str
    value: float | None


def card_headlines(text: str) -> list[CardHeadline]:
    """The split headlines of a model card's Markdown, in the card's order."""
    return [CardHeadline(split=m["split"], n=int(m["n"]), unit="volumes" if m["volumes"] else "cases",
                         metric=m["metric"], value=None if m["value"] == "—" else float(m["value"]))
            for m in _HEADLINE.finditer(text)]  # fmt: skip


def read_card_headlines(path: Path) -> list[CardHeadline]:
    """:func:`card_headlines` of the card at ``path``; none when the card is missing or unreadable."""
    try:
        return card_headlines(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return []


@dataclass(frozen=True)
class RefusalCount:
    """How many refusals of one kind and reason one UTC day saw.

    Attributes:
        day: ``YYYY-MM-DD`` (UTC).
        source: :data:`IMAGE_REFUSED` (an image the pre-read refused) or :data:`JOB_FAILED` (a job that failed
            for good).
        kind: The job kind for a failed job (``preread``, ``pathology``, ``risk_file``); ``preread`` for images.
        reason: The reason code (``implausible_image``, ``truncated_file``, ...).
        count: Events.
    """

    day: str
    source: str
    kind: str
    reason: str
    count: int


def _reason_of(row: AuditEventRow) -> tuple[str, str, str]:
    try:
        detail = json.loads(row.detail or "{}")
    except ValueError:
        detail = {}
    if row.action == AuditAction.IMAGING_PREREAD:
        return IMAGE_REFUSED, "preread", str(detail.get("reason") or "unknown")
    return JOB_FAILED, str(detail.get("kind") or "unknown"), str(detail.get("code") or "unknown")


def refusals_by_day(session: Session, *, since: dt.datetime) -> list[RefusalCount]:
    """Refused images and failed jobs per UTC day since ``since`` (aware), oldest day first."""
    cutoff = since.astimezone(dt.UTC).isoformat(timespec="microseconds")
    row = AuditEventRow
    query = select(row).where(
        row.occurred_at >= cutoff,
        or_(and_(row.action == AuditAction.IMAGING_PREREAD, row.outcome == AuditOutcome.REFUSED),
            row.action == AuditAction.JOB_FAILED))
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for event in session.execute(query).scalars():
        counts[(event.occurred_at[:10], *_reason_of(event))] += 1
    return [RefusalCount(day, source, kind, reason, count)
            for (day, source, kind, reason), count in sorted(counts.items())]  # fmt: skip


@dataclass
class Tally:
    """Current verdicts: accepted and rejected AI findings."""

    accepted: int = 0
    rejected: int = 0

    @property
    def reviewed(self) -> int:
        """Findings with a current verdict."""
        return self.accepted + self.rejected

    @property
    def rate(self) -> float | None:
        """The share accepted: accepted / (accepted + rejected); None before any review."""
        return self.accepted / self.reviewed if self.reviewed else None

    def add(self, verdict: str, count: int) -> None:
        """Count ``count`` verdicts of one kind."""
        if verdict == "accepted":
            self.accepted += count
        elif verdict == "rejected":
            self.rejected += count


@dataclass
class AgreementReport:
    """Readers' agreement with the AI, overall, per model (``name:version``) and per (model, label)."""

    overall: Tally = field(default_factory=Tally)
    by_model: dict[str, Tally] = field(default_factory=dict)
    by_label: dict[tuple[str, str], Tally] = field(default_factory=dict)


def agreement(session: Session) -> AgreementReport:
    """Agreement over the current verdicts: the newest row per (job, outcome, label) of ``finding_feedback``."""
    row = FindingFeedbackRow
    newest = select(func.max(row.id)).group_by(row.job_id, row.uid, row.label)
    query = (select(row.model, row.label, row.verdict, func.count()).where(row.id.in_(newest))
             .group_by(row.model, row.label, row.verdict).order_by(row.model, row.label))  # fmt: skip
    report = AgreementReport()
    for model, label, verdict, count in session.execute(query):
        report.overall.add(verdict, count)
        report.by_model.setdefault(model, Tally()).add(verdict, count)
        report.by_label.setdefault((model, label), Tally()).add(verdict, count)
    return report
