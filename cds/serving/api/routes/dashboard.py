"""The ML engineer's dashboard: models and their card metrics, live engine metrics, refusals, readers' agreement.

``GET /v1/dashboard`` answers, in one document:

* every registered model version (task, modality, intended use, what it serves here) with the headline of each
  evaluation split from its model card (:func:`cds.store.dashboard.card_headlines`);
* per model version (``name:version``), the engine calls every process of the service made over the window, as kept
  in the database (:mod:`cds.store.engine_metrics`: flushed every ``CDS_METRICS_FLUSH_S`` and at shutdown, so the
  history survives restarts): calls, items, mean batch size and latency percentiles, which are **interpolated
  within histogram buckets** (the buckets of ``cds_inference_seconds``) as Prometheus' ``histogram_quantile`` does
  (so a p95 is only as fine as the bucket it falls in); and scored requests by method and outcome;
* refused images and failed jobs per day and reason from the audit trail;
* the readers' agreement rate with the AI findings (accepted / reviewed, over current verdicts).

The read is audited.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, require
from cds.serving.api.state import AppState
from cds.store.audit import AuditAction, record_event
from cds.store.dashboard import Tally, agreement, read_card_headlines, refusals_by_day
from cds.store.engine_metrics import History, engine_history

router = APIRouter(tags=["dashboard"])
Engineer = Annotated[Principal, Depends(require(Role.ML_ENGINEER, Role.ADMIN))]


class HeadlinePublic(BaseModel):
    """One evaluation split's headline from the model card."""

    split: str
    n: int
    unit: str
    metric: str
    value: float | None


class ModelPublic(BaseModel):
    """A registered model version."""

    key: str
    name: str
    version: str
    task: str
    modality: str
    labels: int
    intended_use: str
    not_for_diagnostic_use: bool
    model_card: str
    serves: list[str]  # what this service uses it for (newest version only), e.g. "radiograph pre-read"
    card_metrics: list[HeadlinePublic]


class EngineStats(BaseModel):
    """A model version's engine calls over the window, every process (percentiles interpolated within buckets)."""

    model: str
    calls: int
    items: int
    mean_batch: float | None
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class MethodCount(BaseModel):
    """Scored requests of one method and outcome over the window."""

    method: str
    outcome: str
    count: int


class RefusalPublic(BaseModel):
    """Refused images or failed jobs of one kind and reason on one UTC day."""

    day: str
    source: str
    kind: str
    reason: str
    count: int


class AgreementPublic(BaseModel):
    """Readers' current verdicts on AI findings: accepted / (accepted + rejected)."""

    model: str
    label: str
    accepted: int
    rejected: int
    rate: float | None


class DashboardPublic(BaseModel):
    """The dashboard's data."""

    generated_at: str
    since: str  # first day of the window (refusals, engine calls)
    days: int
    percentiles: str
    models: list[ModelPublic]
    engine: list[EngineStats]
    methods: list[MethodCount]
    refusals: list[RefusalPublic]
    agreement: AgreementPublic
    agreement_by_model: list[AgreementPublic]
    agreement_by_label: list[AgreementPublic]


def bucket_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of a histogram, interpolated linearly within the bucket it falls in.

    ``buckets`` are ``(upper bound, cumulative count)`` in increasing order, the last bound ``+inf``. As in
    Prometheus' ``histogram_quantile``, the lowest bucket starts at 0 and a quantile in the ``+inf`` bucket is the
    highest finite bound. None without observations.
    """
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, cumulative in buckets:
        if cumulative >= rank and cumulative > below:
            if math.isinf(upper):
                return lower
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds


def engine_stats(history: History) -> list[EngineStats]:
    """Engine calls per model version from the kept metrics."""
    stats = []
    for model, tally in sorted(history.calls.items()):
        calls, items, buckets = tally.calls, tally.items, tally.cumulative()
        stats.append(EngineStats(
            model=model, calls=calls, items=items, mean_batch=items / calls if calls else None,
            mean_ms=_ms(tally.seconds / calls) if calls else None, p50_ms=_ms(bucket_quantile(0.5, buckets)),
            p95_ms=_ms(bucket_quantile(0.95, buckets))))  # fmt: skip
    return stats


def method_counts(history: History) -> list[MethodCount]:
    """Scored requests by method and outcome from the kept metrics."""
    return [MethodCount(method=method, outcome=outcome, count=count)
            for (method, outcome), count in sorted(history.scored.items())]  # fmt: skip


def _serves(state: AppState) -> dict[str, list[str]]:
    """``name:version`` -> what this service uses it for (the newest version of each configured model)."""
    settings, registry = state.settings, state.registry
    uses: dict[str, list[str]] = {}
    configured = [(settings.preread_model, "radiograph pre-read"), (settings.ct_model, "CT pre-read"),
                  (settings.pathology_model, "pathology read"),
                  *((name, "risk scoring") for name in state.engine.served)]
    for name, use in configured:
        if not name or name not in registry.names():
            continue
        spec = registry.get(name)
        uses.setdefault(spec.key, []).append(use)
        gate = spec.imaging.plausibility_model if spec.imaging is not None else None
        if gate and use.endswith("pre-read"):
            uses.setdefault(gate, []).append(f"plausibility gate of the {use}")
    return uses


def models(state: AppState) -> list[ModelPublic]:
    """Every registered model version with its card's split headlines."""
    serves = _serves(state)
    return [ModelPublic(key=spec.key, name=spec.name, version=spec.version, task=spec.task.value,
                        modality=spec.modality.value, labels=len(spec.labels), intended_use=spec.intended_use,
                        not_for_diagnostic_use=spec.not_for_diagnostic_use, model_card=spec.model_card.name,
                        serves=serves.get(spec.key, []),
                        card_metrics=[HeadlinePublic(**vars(h)) for h in read_card_headlines(spec.model_card)])
            for spec in state.registry]  # fmt: skip


def _agreement(model: str, label: str, tally: Tally) -> AgreementPublic:
    return AgreementPublic(model=model, label=label, accepted=tally.accepted, rejected=tally.rejected,
                           rate=tally.rate)


@router.get("/v1/dashboard")
def dashboard(state: StateDep, principal: Engineer,
              days: Annotated[int, Query(ge=1, le=366, description="window in days (refusals, engine calls)")] = 14,
              ) -> DashboardPublic:  # fmt: skip
    """Models and card metrics, engine metrics and refusals per day and reason over the window, agreement (audited)."""
    now = dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    state.metrics.pending.flush(state.database.session)  # this process's latest calls too
    with state.database.session() as session:
        refusals = refusals_by_day(session, since=since)
        agreed = agreement(session)
        history = engine_history(session, since=since)
        record_event(session, AuditAction.DASHBOARD_READ, principal.actor, "Dashboard", detail={"days": days})
    return DashboardPublic(
        generated_at=now.isoformat(timespec="seconds"), since=since.date().isoformat(), days=days,
        percentiles="interpolated within the buckets of the engine-call latency histogram",
        models=models(state), engine=engine_stats(history), methods=method_counts(history),
        refusals=[RefusalPublic(**vars(r)) for r in refusals],
        agreement=_agreement("", "", agreed.overall),
        agreement_by_model=[_agreement(model, "", t) for model, t in sorted(agreed.by_model.items())],
        agreement_by_label=[_agreement(model, label, t) for (model, label), t in sorted(agreed.by_label.items())],
    )  # fmt: skip
