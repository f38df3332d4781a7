"""The ML engineer's dashboard: models and their card metrics, live engine metrics, refusals, readers' agreement.

``GET /v1/dashboard`` answers, in one document:

* every registered model version (task, modality, intended use, what it serves here) with the headline of each
  evaluation split from its model card (:func:`cds.store.dashboard.card_headlines`);
* per model, the engine calls this process has made since it started, from the service's Prometheus histograms
  (``cds_inference_seconds``, ``cds_inference_batch_size``): calls, items, mean batch size and latency percentiles,
  which are **interpolated within histogram buckets** as Prometheus' ``histogram_quantile`` does (so a p95 is
  only as fine as the bucket it falls in); and scored requests by method and outcome (``cds_inferences_total``);
* refused images and failed jobs per day and reason from the audit trail;
* the readers' agreement rate with the AI findings (accepted / reviewed, over current verdicts).

The read is audited.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from prometheus_client import Metric
from pydantic import BaseModel

from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import StateDep, require
from cds.serving.api.state import AppState
from cds.store.audit import AuditAction, record_event
from cds.store.dashboard import Tally, agreement, read_card_headlines, refusals_by_day

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
    """A model's engine calls in this process since it started (percentiles interpolated within buckets)."""

    model: str
    calls: int
    items: int
    mean_batch: float | None
    mean_ms: float | None
    p50_ms: float | None
    p95_ms: float | None


class MethodCount(BaseModel):
    """Scored requests of one method and outcome (``cds_inferences_total``)."""

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
    since: str  # first day of the refusal window
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


@dataclass
class _Histogram:
    """One label set of a Prometheus histogram."""

    buckets: list[tuple[float, float]] = field(default_factory=list)  # (upper bound, cumulative count)
    total: float = 0.0
    count: float = 0.0


def _by_model(metric: Metric) -> dict[str, _Histogram]:
    """A histogram's buckets, sum and count per ``model`` label."""
    found: dict[str, _Histogram] = {}
    for sample in metric.samples:
        entry = found.setdefault(sample.labels.get("model", ""), _Histogram())
        if sample.name.endswith("_bucket"):
            entry.buckets.append((float(sample.labels["le"]), float(sample.value)))
        elif sample.name.endswith("_sum"):
            entry.total = float(sample.value)
        elif sample.name.endswith("_count"):
            entry.count = float(sample.value)
    return found


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000.0 * seconds


def engine_stats(state: AppState) -> list[EngineStats]:
    """Engine calls per model from the service's histograms."""
    (seconds,) = state.metrics.engine_seconds.collect()
    (sizes,) = state.metrics.batch_size.collect()
    timing, batches = _by_model(seconds), _by_model(sizes)
    stats = []
    for model, time_entry in sorted(timing.items()):
        calls, items = time_entry.count, batches.get(model, _Histogram()).total
        buckets = sorted(time_entry.buckets)
        stats.append(EngineStats(
            model=model, calls=int(calls), items=int(items), mean_batch=items / calls if calls else None,
            mean_ms=_ms(time_entry.total / calls) if calls else None, p50_ms=_ms(bucket_quantile(0.5, buckets)),
            p95_ms=_ms(bucket_quantile(0.95, buckets))))  # fmt: skip
    return stats


def method_counts(state: AppState) -> list[MethodCount]:
    """``cds_inferences_total`` by method and outcome."""
    (metric,) = state.metrics.inferences.collect()
    return sorted((MethodCount(method=s.labels["method"], outcome=s.labels["outcome"], count=int(s.value))
                   for s in metric.samples if s.name.endswith("_total")), key=lambda m: (m.method, m.outcome))


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
              days: Annotated[int, Query(ge=1, le=366, description="refusals over this many days")] = 14,
              ) -> DashboardPublic:  # fmt: skip
    """Models and card metrics, engine metrics since start, refusals per day and reason, agreement (audited)."""
    now = dt.datetime.now(dt.UTC)
    since = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    with state.database.session() as session:
        refusals = refusals_by_day(session, since=since)
        agreed = agreement(session)
        record_event(session, AuditAction.DASHBOARD_READ, principal.actor, "Dashboard", detail={"days": days})
    return DashboardPublic(
        generated_at=now.isoformat(timespec="seconds"), since=since.date().isoformat(), days=days,
        percentiles="interpolated within the buckets of the service's Prometheus histograms",
        models=models(state), engine=engine_stats(state), methods=method_counts(state),
        refusals=[RefusalPublic(**vars(r)) for r in refusals],
        agreement=_agreement("", "", agreed.overall),
        agreement_by_model=[_agreement(model, "", t) for model, t in sorted(agreed.by_model.items())],
        agreement_by_label=[_agreement(model, label, t) for (model, label), t in sorted(agreed.by_label.items())],
    )  # fmt: skip
