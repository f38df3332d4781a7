"""ECG measurements from the usable leads: rate, intervals, frontal axis and ST levels, with the beats behind them.

:func:`measure` finds the beats (:func:`~cds.pipelines.ecg.beats.detect_beats`) and delineates their median beats
(:func:`~cds.pipelines.ecg.delineation.delineate`) on the leads that :mod:`cds.pipelines.ecg.quality` found usable,
then reads off:

- heart rate 60 000 / mean RR (ms) and the mean RR;
- PR = QRS onset − P onset, QRS = J point − QRS onset, QT = T end − QRS onset, all global (across leads);
- QTc by Bazett (QT / √RR) and Fridericia (QT / ∛RR), RR in seconds;
- the frontal QRS axis, ``atan2(area aVF, area I)`` of the net QRS areas (QRS onset to J) of the median beats; when
  lead I or aVF is not usable, their areas are solved (least squares) from the usable limb leads by Einthoven's and
  Goldberger's relations;
- ST at J per usable lead: the median beat's level at the J point minus its PR baseline (the flattest 8 ms of the
  30 ms before QRS onset, the isoelectric point).

A measurement that cannot be made is None, never zero: fewer than three beats give no rate or intervals, a record
without P waves no PR, a median beat without a credible QRS (noise taken for beats) no rate and no intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cds.pipelines.ecg.beats import Baseline, detect_beats
from cds.pipelines.ecg.delineation import Delineation, delineate
from cds.pipelines.ecg.quality import LeadQuality
from cds.pipelines.ecg.record import INDEPENDENT_LEADS, STANDARD_LEADS, EcgRecord
from cds.results.ecg import Measurements

MIN_BEATS = 3
_ROOT3_2 = np.sqrt(3) / 2
# Frontal-plane projection of each limb lead: (leftward, inferior) components (Einthoven, Goldberger).
LIMB_VECTORS = {"I": (1.0, 0.0), "II": (0.5, _ROOT3_2), "III": (-0.5, _ROOT3_2), "aVR": (-0.75, -_ROOT3_2 / 2),
                "aVL": (0.75, -_ROOT3_2 / 2), "aVF": (0.0, _ROOT3_2)}  # fmt: skip


@dataclass(frozen=True)
class BeatAnalysis:
    """The measurements and the beats they rest on, for the rhythm rules and the reader's calipers.

    Attributes:
        measurements: Rate, intervals, axis and ST levels.
        r_peaks: Beat fiducials (sample indices of the record).
        p_wave: Per beat, whether the dominant P wave precedes it.
        template_correlation: Per beat, correlation of its QRS with the dominant template (NaN: not measurable).
        dominant: Per beat, whether it belongs to the dominant morphology.
        qrs_width_ms: Per beat, a QRS width measure (area of the QRS velocity over its peak, ms).
        delineation: The median beats and fiducials (None without usable leads or beats).
    """

    measurements: Measurements
    r_peaks: np.ndarray
    p_wave: np.ndarray
    template_correlation: np.ndarray
    dominant: np.ndarray
    qrs_width_ms: np.ndarray
    delineation: Delineation | None = None


def measure(record: EcgRecord, quality: list[LeadQuality]) -> BeatAnalysis:
    """Measure ``record`` on the leads ``quality`` says are usable (see the module docstring)."""
    usable = tuple(q.lead for q in quality if q.usable and q.lead in STANDARD_LEADS)
    if not usable:
        return _nothing(Measurements())
    signals = np.asarray(record.signals[[STANDARD_LEADS.index(lead) for lead in usable]], dtype=np.float64)
    fs = record.sampling_hz
    baseline = Baseline.of(signals, fs)
    detection = [usable.index(lead) for lead in _independent(usable)]
    r_peaks = detect_beats(signals[detection], fs, baseline=baseline.rows(detection))
    if len(r_peaks) < MIN_BEATS:
        return _nothing(Measurements(beats=len(r_peaks), leads_measured=usable), r_peaks)
    delineation = delineate(signals, r_peaks, fs, baseline=baseline)
    fiducials = delineation.fiducials
    values: dict[str, object] = {"beats": len(r_peaks), "leads_measured": usable}
    if fiducials is not None:  # without a credible median QRS, the "beats" are noise: no rate either
        rr_ms = float(np.mean(np.diff(r_peaks))) / fs * 1000
        rr_s = rr_ms / 1000
        qrs_onset, j_point = fiducials.qrs_onset_ms, fiducials.qrs_offset_ms
        values.update(heart_rate_bpm=60_000 / rr_ms, rr_ms=rr_ms, qrs_ms=j_point - qrs_onset)
        if fiducials.p_onset_ms is not None:
            values["pr_ms"] = qrs_onset - fiducials.p_onset_ms
        if fiducials.t_end_ms is not None:
            qt = fiducials.t_end_ms - qrs_onset
            values.update(qt_ms=qt, qtc_bazett_ms=qt / np.sqrt(rr_s), qtc_fridericia_ms=qt / np.cbrt(rr_s))
        medians = delineation.median_beats - delineation.pr_level[:, None]
        st = delineation.levels_at(j_point) - delineation.pr_level
        values["st_j_mv"] = {lead: float(level) for lead, level in zip(usable, st, strict=True)}
        values["qrs_axis_deg"] = _axis(medians, usable, _samples(delineation, qrs_onset),
                                       _samples(delineation, j_point))  # fmt: skip
    measurements = Measurements.model_validate({key: _plain(value) for key, value in values.items()})
    return BeatAnalysis(measurements, r_peaks, delineation.p_wave, delineation.template_correlation,
                        delineation.dominant, delineation.qrs_width_ms, delineation)  # fmt: skip


def _independent(usable: tuple[str, ...]) -> tuple[str, ...]:
    """The leads to find the beats on: with I and II usable, the usable ones of I, II and V1–V6, else all usable.

    III, aVR, aVL and aVF are combinations of I and II and add no timing.
    """
    if "I" in usable and "II" in usable:
        return tuple(lead for lead in usable if lead in INDEPENDENT_LEADS)
    return usable


def _samples(delineation: Delineation, ms: float) -> float:
    return delineation.r_index + ms * delineation.sampling_hz / 1000


def _plain(value: object) -> object:
    return float(value) if isinstance(value, np.floating) else value


def _nothing(measurements: Measurements, r_peaks: np.ndarray | None = None) -> BeatAnalysis:
    peaks = np.zeros(0, dtype=np.int64) if r_peaks is None else r_peaks
    count = len(peaks)
    return BeatAnalysis(measurements, peaks, np.zeros(count, dtype=bool), np.full(count, np.nan),
                        np.ones(count, dtype=bool), np.full(count, np.nan))  # fmt: skip


def _axis(medians: np.ndarray, usable: tuple[str, ...], onset: float, offset: float) -> float | None:
    """Frontal QRS axis (degrees, (−180, 180]) from the net QRS areas of the usable limb leads.

    ``medians`` are the PR-levelled median beats of the usable leads; ``onset`` and ``offset`` are in their samples.
    """
    limb = [i for i, lead in enumerate(usable) if lead in LIMB_VECTORS]
    if not limb:
        return None
    start, stop = int(np.floor(onset)), int(np.ceil(offset))
    beats = medians[limb, start : stop + 1]
    areas = beats.sum(axis=1) - beats[:, [0, -1]].sum(axis=1) / 2  # trapezoid, in sample units
    names = [usable[i] for i in limb]
    if "I" in names and "aVF" in names:
        area_i, area_avf = areas[names.index("I")], areas[names.index("aVF")]
    else:
        vectors = np.array([LIMB_VECTORS[name] for name in names])
        if np.linalg.matrix_rank(vectors) < 2:
            return None
        frontal = np.linalg.lstsq(vectors, areas, rcond=None)[0]
        area_i, area_avf = frontal[0], frontal[1] * _ROOT3_2
    if area_i == 0 and area_avf == 0:
        return None
    degrees = float(np.degrees(np.arctan2(area_avf, area_i)))
    return 180.0 if degrees == -180.0 else degrees
