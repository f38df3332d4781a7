"""Errors of the ECG measurements against generated ECGs whose truth is exact, for the tests and the model card.

Each seed gives one record of :func:`training.data.ecg_signals.generate_ecg`: rhythm ``RHYTHMS[seed % 6]``,
sampling rate ``RATES_HZ[(seed // 6) % 5]`` (250 to 2000 Hz), noise on, and ST levels on two to four random leads
(±0.05 to 0.4 mV, drawn from a second generator seeded by the seed so the record itself does not change). Its
quality is judged and it is measured as the pipeline measures it (:func:`cds.pipelines.ecg.measurements.measure`).

Seed ranges: the rhythm model trains on seeds below 100 000; the measurement thresholds were set on seeds from
800 000; the tests hold out seeds from 900 000.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cds.pipelines.ecg.measurements import measure
from cds.pipelines.ecg.quality import lead_quality
from cds.pipelines.ecg.record import STANDARD_LEADS, EcgRecord
from cds.results.ecg import RHYTHMS
from training.data.ecg_signals import GeneratedEcg, generate_ecg

RATES_HZ = (250.0, 360.0, 500.0, 1000.0, 2000.0)
MATCH_S = 0.05
INTERVALS = ("heart_rate_bpm", "pr_ms", "qrs_ms", "qt_ms", "qrs_axis_deg", "st_j_mv")


@dataclass(frozen=True)
class RecordErrors:
    """One record's errors (measured − true; None where either side is missing) and beat matches."""

    seed: int
    rhythm: str
    sampling_hz: float
    errors: dict[str, float | None]
    st_errors: list[float]
    true_beats: int
    found_beats: int
    matched_beats: int
    pr_truth: bool
    pr_measured: bool


def generated(seed: int) -> GeneratedEcg:
    """The record of ``seed`` (see the module docstring)."""
    extra = np.random.default_rng([seed, 1])
    leads = extra.choice(len(STANDARD_LEADS), size=int(extra.integers(2, 5)), replace=False)
    st = {STANDARD_LEADS[i]: float(extra.choice([-1, 1]) * extra.uniform(0.05, 0.4)) for i in leads}
    return generate_ecg(np.random.default_rng(seed), RHYTHMS[seed % len(RHYTHMS)],
                        sampling_hz=RATES_HZ[(seed // len(RHYTHMS)) % len(RATES_HZ)], st_mv=st)  # fmt: skip


def matched(true: np.ndarray, found: np.ndarray, tolerance: float) -> int:
    """Beats of ``true`` with a beat of ``found`` within ``tolerance`` samples (each found beat used once)."""
    used = np.zeros(len(found), dtype=bool)
    count = 0
    for peak in true:
        distance = np.where(used, np.inf, np.abs(found - peak).astype(np.float64))
        if len(distance) and distance.min() <= tolerance:
            used[int(np.argmin(distance))] = True
            count += 1
    return count


def record_errors(seed: int) -> RecordErrors:
    """Measure the record of ``seed`` and compare with its truth."""
    ecg = generated(seed)
    record = EcgRecord(ecg.signals, ecg.sampling_hz, f"generated-{seed}")
    quality = [lead_quality(ecg.signals[i], ecg.sampling_hz, lead) for i, lead in enumerate(STANDARD_LEADS)]
    analysis = measure(record, quality)
    m, truth = analysis.measurements, ecg.truth
    errors: dict[str, float | None] = {
        "heart_rate_bpm": _difference(m.heart_rate_bpm, truth.heart_rate_bpm),
        "pr_ms": _difference(m.pr_ms, truth.pr_ms),
        "qrs_ms": _difference(m.qrs_ms, truth.qrs_ms),
        "qt_ms": _difference(m.qt_ms, truth.qt_ms),
        "qrs_axis_deg": None if m.qrs_axis_deg is None else
        float((m.qrs_axis_deg - truth.qrs_axis_deg + 180) % 360 - 180),
    }  # fmt: skip
    st_errors = [level - truth.st_mv.get(lead, 0.0) for lead, level in m.st_j_mv.items()]
    return RecordErrors(seed, truth.rhythm, ecg.sampling_hz, errors, st_errors, len(truth.r_peaks),
                        len(analysis.r_peaks), matched(truth.r_peaks, analysis.r_peaks, MATCH_S * ecg.sampling_hz),
                        truth.pr_ms is not None, m.pr_ms is not None)  # fmt: skip


def _difference(measured: float | None, true: float | None) -> float | None:
    return None if measured is None or true is None else float(measured - true)


def summarise(records: list[RecordErrors]) -> dict[str, dict[str, float]]:
    """Per measurement: mean error, mean absolute error, 95th percentile of the absolute error, count, and how often
    it was missing where the truth has it; beat sensitivity and positive predictive value; P-wave calls."""
    summary: dict[str, dict[str, float]] = {}
    for name in INTERVALS:
        if name == "st_j_mv":
            values = np.array([e for record in records for e in record.st_errors])
            possible = len(values)
        else:
            values = np.array([r.errors[name] for r in records if r.errors[name] is not None], dtype=np.float64)
            possible = sum(1 for r in records if name != "pr_ms" or r.pr_truth)
        summary[name] = {"mean": float(values.mean()) if len(values) else float("nan"),
                         "mae": float(np.abs(values).mean()) if len(values) else float("nan"),
                         "p95": float(np.percentile(np.abs(values), 95)) if len(values) else float("nan"),
                         "max": float(np.abs(values).max()) if len(values) else float("nan"),
                         "count": float(len(values)), "missing": float(max(possible - len(values), 0))}  # fmt: skip
    true_beats = sum(r.true_beats for r in records)
    found_beats = sum(r.found_beats for r in records)
    hits = sum(r.matched_beats for r in records)
    summary["beats"] = {"sensitivity": hits / max(true_beats, 1), "ppv": hits / max(found_beats, 1),
                        "true": float(true_beats), "found": float(found_beats)}  # fmt: skip
    with_p = [r for r in records if r.pr_truth]
    without_p = [r for r in records if not r.pr_truth]
    summary["p_wave"] = {
        "found_when_present": sum(r.pr_measured for r in with_p) / max(len(with_p), 1),
        "found_when_absent": sum(r.pr_measured for r in without_p) / max(len(without_p), 1),
    }
    return summary


def delineation_errors(seeds: range) -> dict[str, dict[str, float]]:
    """Errors of the measurements over the records of ``seeds`` (see :func:`summarise`): ms for intervals, bpm for
    the rate, degrees for the axis, mV for ST at J."""
    return summarise([record_errors(seed) for seed in seeds])
