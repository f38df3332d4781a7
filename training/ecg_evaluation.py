"""Held-out accuracy of the ECG path as the service runs it, for the rhythm model's card and the tests.

Each held-out generated record is read the service's way: lead quality, measurements, the rule-based rhythm, and
the classifier over every window with its probabilities averaged (the call is the most probable rhythm). Reported
per rhythm: sensitivity and specificity of both, one rhythm against the rest; and the measurement errors against
the generated truth (:func:`training.ecg_delineation_eval.delineation_errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError
from cds.models.spec import WaveformInput
from cds.pipelines.ecg.measurements import measure
from cds.pipelines.ecg.preprocess import model_windows
from cds.pipelines.ecg.quality import record_quality
from cds.pipelines.ecg.record import EcgRecord
from cds.pipelines.ecg.rhythm import classify_rhythm
from cds.results.ecg import RHYTHM_TEXT, RHYTHMS
from training.data.ecg_signals import generate_ecg

Score = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RhythmCalls:
    """Truth and the two calls of every held-out record."""

    truth: list[str]
    rules: list[str]
    classifier: list[str]


def held_out_calls(score: Score | None, waveform: WaveformInput | None, *, seeds: range, seed_base: int) -> RhythmCalls:
    """Generate each held-out record (seed ``(seed_base, i)``, rhythms in turn) and call its rhythm both ways."""
    truth, rules, classifier = [], [], []
    for index in seeds:
        ecg = generate_ecg(np.random.default_rng([seed_base, index]), RHYTHMS[index % len(RHYTHMS)])
        record = EcgRecord(ecg.signals, ecg.sampling_hz, f"held-out {index}")
        truth.append(ecg.truth.rhythm)
        try:
            rules.append(classify_rhythm(measure(record, record_quality(record)), ecg.sampling_hz).label)
        except InvalidInputError:
            rules.append("refused")
        if score is not None and waveform is not None:
            probabilities = score(model_windows(ecg.signals, ecg.sampling_hz, waveform)).mean(axis=0)
            classifier.append(RHYTHMS[int(np.argmax(probabilities))])
    return RhythmCalls(truth, rules, classifier)


def sensitivity_specificity(truth: list[str], calls: list[str]) -> dict[str, tuple[float, float, int]]:
    """Per rhythm: (sensitivity, specificity, records of that rhythm), one against the rest."""
    t, c = np.asarray(truth), np.asarray(calls)
    out = {}
    for rhythm in RHYTHMS:
        positive, called = t == rhythm, c == rhythm
        sensitivity = float((called & positive).sum() / positive.sum()) if positive.any() else float("nan")
        specificity = float((~called & ~positive).sum() / (~positive).sum()) if (~positive).any() else float("nan")
        out[rhythm] = (sensitivity, specificity, int(positive.sum()))
    return out


def _table(calls: RhythmCalls) -> str:
    rules = sensitivity_specificity(calls.truth, calls.rules)
    model = sensitivity_specificity(calls.truth, calls.classifier) if calls.classifier else {}
    lines = ["| rhythm | records | rules: sensitivity | rules: specificity | classifier: sensitivity | "
             "classifier: specificity |", "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for rhythm in RHYTHMS:
        sens, spec, count = rules[rhythm]
        m_sens, m_spec, _ = model.get(rhythm, (float("nan"), float("nan"), 0))
        lines.append(f"| {RHYTHM_TEXT[rhythm]} | {count} | {sens:.3f} | {spec:.3f} | {m_sens:.3f} | {m_spec:.3f} |")
    agree = np.mean(np.asarray(calls.rules) == np.asarray(calls.truth))
    lines.append(f"\nAccuracy over all records: rules {agree:.3f}"
                 + (f", classifier {np.mean(np.asarray(calls.classifier) == np.asarray(calls.truth)):.3f}"
                    if calls.classifier else "") + ".")  # fmt: skip
    return "\n".join(lines)


def _errors_table(errors: dict[str, dict[str, float]]) -> str:
    units = {"heart_rate_bpm": "/min", "qrs_axis_deg": "degrees", "st_j_mv": "mV, per lead"}
    lines = ["| measurement | measured | not measured | mean error | mean absolute error | 95th percentile of "
             "absolute error | largest |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for name, v in errors.items():
        if "mae" not in v:
            continue
        digits = 3 if name == "st_j_mv" else 1
        lines.append(f"| {name} ({units.get(name, 'ms')}) | {v['count']:.0f} | {v['missing']:.0f} | "
                     f"{v['mean']:+.{digits}f} | {v['mae']:.{digits}f} | {v['p95']:.{digits}f} | "
                     f"{v['max']:.{digits}f} |")
    beats, p_wave = errors.get("beats", {}), errors.get("p_wave", {})
    if beats:
        lines.append(f"\nBeats: sensitivity {beats['sensitivity']:.4f}, positive predictive value {beats['ppv']:.4f} "
                     f"({beats['found']:.0f} found, {beats['true']:.0f} generated; a match is within 50 ms).")
    if p_wave:
        lines.append(f"P waves found in {p_wave['found_when_present']:.0%} of records that have them (the misses are "
                     f"mostly fast sinus rhythms whose P wave lies on the T wave) and in "
                     f"{p_wave['found_when_absent']:.0%} of those without (fibrillation, flutter).")
    return "\n".join(lines)


CART_MEASUREMENTS = {"RR Interval": "rr_ms", "PR Interval": "pr_ms", "QRS Duration": "qrs_ms",
                     "QT Interval": "qt_ms", "QRS Axis": "qrs_axis_deg"}  # fmt: skip


def real_ecg_report(score: Score | None, waveform: WaveformInput | None) -> str:
    """pydicom's real 12-lead ECG (the one real 12-lead recording a package ships): the engine's measurements
    beside the cart's own (stored in the file), the rules' rhythm and the classifier's probabilities."""
    import pydicom
    from pydicom.data import get_testdata_file

    from cds.pipelines.ecg.readers import read_ecg

    path = Path(get_testdata_file("waveform_ecg.dcm", download=False))
    record = read_ecg(path)
    beats = measure(record, record_quality(record))
    cart = {}
    for item in pydicom.dcmread(path).get("WaveformAnnotationSequence", []):
        names = item.get("ConceptNameCodeSequence")
        if names and "NumericValue" in item and names[0].CodeMeaning in CART_MEASUREMENTS:
            cart[CART_MEASUREMENTS[names[0].CodeMeaning]] = float(item.NumericValue)
    m = beats.measurements.model_dump()
    rows = [f"| {name} | {cart[name]:g} | {m[name]:.0f} |" for name in CART_MEASUREMENTS.values() if name in cart
            and m.get(name) is not None]  # fmt: skip
    text = ("pydicom's `waveform_ecg.dcm` (a real 10-s 12-lead ECG, Mortara cart, 1000 Hz): the cart's own "
            "measurements stored in the file beside the engine's.\n\n| measurement | cart | engine |\n"
            "| --- | ---: | ---: |\n" + "\n".join(rows) + f"\n\nRules: "
            f"{classify_rhythm(beats, record.sampling_hz).label}.")
    if score is not None and waveform is not None:
        probabilities = score(model_windows(record.signals, record.sampling_hz, waveform)).mean(axis=0)
        ranked = sorted(zip(RHYTHMS, probabilities, strict=True), key=lambda pair: -pair[1])
        text += " Classifier: " + ", ".join(f"{label} {p:.3f}" for label, p in ranked[:3]) + "."
    return text


def held_out_report(score: Score | None, waveform: WaveformInput | None, *, seeds: range, seed_base: int) -> str:
    """The card's Markdown section (see the module docstring)."""
    from training.ecg_delineation_eval import delineation_errors

    calls = held_out_calls(score, waveform, seeds=seeds, seed_base=seed_base)
    errors = delineation_errors(range(900_000, 900_000 + min(len(seeds), 300)))
    return (f"{len(seeds)} held-out generated records (the test split's seeds `({seed_base}, i)`), each read as the "
            "service reads it. A refused record (too few usable leads) counts as a miss for the rules.\n\n"
            f"{_table(calls)}\n\nMeasurements against the generated truth on {min(len(seeds), 300)} other held-out "
            "records (seeds `900000 + i`; the engine's own delineation, not the model):\n\n"
            f"{_errors_table(errors)}\n\nA real recording: {real_ecg_report(score, waveform)}")
