"""Median beats and global fiducials: where P, QRS and T start and end, found across the leads as carts do.

From the usable leads (mV) and the beats' R fiducials (:func:`cds.pipelines.ecg.beats.detect_beats`):

1. **Preparation**: the leads are averaged down by whole samples to 250–500 Hz and their baseline (below 0.5 Hz,
   :class:`~cds.pipelines.ecg.beats.Baseline`) is subtracted.
2. **Dominant morphology** of each beat (:func:`~cds.pipelines.ecg.beats.beat_shapes`): its QRS correlation with
   the dominant template, whether it belongs to it, and a QRS width measure.
3. **Median beat** per lead, −450 to +750 ms around R, over the dominant beats that fit in the record and are
   neither premature nor followed by a premature beat (RR below 85 % of the median), while three such remain.
4. **Global fiducials** from the spatial velocity of the median beats, ``v(t) = √Σ_leads (dx/dt)²`` (50 and 60 Hz
   notched out, smoothed by a triangular window of 12 ms for the QRS, 40 ms for P and T), so each onset is the
   earliest and each end the latest across the leads: QRS onset and J point bound the run of ``v`` above 3.5 % of
   its QRS peak (and three times the noise) around R, short dips bridged (the still instants at the R and S peaks:
   4 ms before R, 16 ms after); T end is where, after the first steep part of the first wave after J, ``v`` falls
   below 15 % of the T wave's peak velocity, or reaches a valley (a P wave riding on the T wave), near the baseline;
   P onset likewise, walking back from the last wave before the QRS. Crossings are interpolated between samples.
5. **P wave** of the median beat, accepted only when it stands above the noise, starts from the level of the PR
   segment (isoelectric), is not repeated one flutter cycle (150–260 ms) earlier, the stretch from the T end to the
   next P wave is quiet (flutter waves go on through it) and at least half the beats have it (fibrillatory waves do
   not repeat beat after beat). P waves hidden in the preceding T wave (fast sinus rhythms) are not found.
6. **Per beat**: whether the dominant P wave precedes it (cosine similarity ≥ 0.6 of its own P-onset-to-QRS-onset
   stretch, all leads, with the median beat's, of a size within a factor of two).

The PR baseline (isoelectric level) is the mean of the flattest 8 ms of the 30 ms before the QRS onset. Thresholds
are conventions of this engine, set on generated ECGs with exact onsets (seeds 800 000 onwards; the tests hold out
seeds from 900 000) and checked on pydicom's 12-lead recording against the cart's own measurements.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from cds.pipelines.ecg.beats import MEASURE_HZ, Baseline, beat_shapes, block_mean, decimation_factor, without_mains

WORK_HZ = MEASURE_HZ
PRE_S, POST_S = 0.45, 0.75
PREMATURE_RR = 0.85
QRS_SMOOTH_S, WAVE_SMOOTH_S = 0.006, 0.02  # each applied twice: triangles of 12 and 40 ms
QRS_FRACTION = 0.035
QRS_GAP_S = (0.004, 0.016)  # dips bridged before and after R (a P wave can end 5 ms before the QRS)
QRS_MIN_TO_NOISE = 12.0
T_FRACTION = 0.15
T_START_S = 0.04
T_GUARD_S = 0.06
P_SEARCH_S = 0.4
P_FRACTION = 0.1
NOISE_FACTOR = 3.0
P_MIN_MV = 0.02
PR_LEVEL_S = 0.03
ISOELECTRIC_WIDTH_S = 0.008
NEAR_BASELINE = 0.3
VALLEY = 0.35
WAVE_SPAN_S = 0.25
P_SPAN_S = 0.12
FLUTTER_CYCLE_S = (0.15, 0.26)
FLUTTER_SIMILARITY = 0.8
P_CONSISTENT = 0.5
P_MIN_TO_NOISE = 4.5
TP_MIN_S = 0.04
TP_QUIET = 0.5
NEAR_BASELINE_MV = 0.01
ISOELECTRIC = 0.35
ISOELECTRIC_S = 0.01
P_WAVE_SIMILARITY = 0.6
P_SIZE_RATIO = 2.0


@dataclass(frozen=True)
class Fiducials:
    """Global fiducials of the median beat, in ms from the R fiducial (negative: before it).

    Attributes:
        qrs_onset_ms: QRS onset.
        qrs_offset_ms: QRS offset (J point).
        t_end_ms: End of the T wave (None when it could not be found).
        p_onset_ms: P onset (None without a P wave).
        p_offset_ms: P offset (None without a P wave).
    """

    qrs_onset_ms: float
    qrs_offset_ms: float
    t_end_ms: float | None = None
    p_onset_ms: float | None = None
    p_offset_ms: float | None = None


@dataclass(frozen=True)
class Delineation:
    """Median beats, their fiducials and the per-beat features.

    Attributes:
        median_beats: [leads, samples] mV, baseline removed, R at ``r_index``.
        sampling_hz: Samples per second of ``median_beats``.
        r_index: Sample of the R fiducial in ``median_beats``.
        fiducials: The global fiducials (None when the median beat has no credible QRS: noise, too few beats).
        beats_in_median: Beats the median was taken over.
        template_correlation: Per beat, correlation of its QRS with the dominant template (NaN: not measurable).
        dominant: Per beat, whether it belongs to the dominant morphology.
        p_wave: Per beat, whether the dominant P wave precedes it.
        qrs_width_ms: Per beat, area of its QRS spatial velocity over its peak (ms): wide beats give more.
        pr_level: [leads] the median beats' PR baseline (isoelectric level before the QRS onset), mV.
    """

    median_beats: np.ndarray
    sampling_hz: float
    r_index: int
    fiducials: Fiducials | None
    beats_in_median: int
    template_correlation: np.ndarray
    dominant: np.ndarray
    p_wave: np.ndarray
    qrs_width_ms: np.ndarray
    pr_level: np.ndarray

    def levels_at(self, ms: float) -> np.ndarray:
        """[leads]: the median beats' values ``ms`` after the R fiducial (linear between samples)."""
        position = float(np.clip(self.r_index + ms * self.sampling_hz / 1000, 0, self.median_beats.shape[1] - 1))
        lower = min(int(position), self.median_beats.shape[1] - 2)
        fraction = position - lower
        levels: np.ndarray = self.median_beats[:, lower] * (1 - fraction) + self.median_beats[:, lower + 1] * fraction
        return levels


def delineate(signals: np.ndarray, r_peaks: np.ndarray, sampling_hz: float, *,
              baseline: Baseline | None = None) -> Delineation:  # fmt: skip
    """Median beats, global fiducials and per-beat features of ``signals`` (see the module docstring).

    Args:
        signals: [leads, samples] mV, the usable leads.
        r_peaks: R fiducials (sample indices of ``signals``), ascending.
        sampling_hz: Samples per second.
        baseline: The leads' :class:`~cds.pipelines.ecg.beats.Baseline` when the caller has it already.
    """
    values = np.atleast_2d(np.asarray(signals, dtype=np.float64))
    factor = decimation_factor(sampling_hz, WORK_HZ)
    work_hz = sampling_hz / factor
    baseline = baseline or Baseline.of(values, sampling_hz)
    work = block_mean(values, factor)
    work = baseline.subtract_from(work if work is not values else work.copy(), factor)
    r = np.round((np.asarray(r_peaks, dtype=np.float64) - (factor - 1) / 2) / factor).astype(np.int64)
    r = np.clip(r, 0, work.shape[1] - 1)
    count = len(r)
    pre, post = int(round(PRE_S * work_hz)), int(round(POST_S * work_hz))
    empty = Delineation(np.zeros((values.shape[0], pre + post + 1)), work_hz, pre, None, 0,
                        np.full(count, np.nan), np.ones(count, dtype=bool), np.zeros(count, dtype=bool),
                        np.full(count, np.nan), np.zeros(values.shape[0]))  # fmt: skip
    if count == 0:
        return empty
    shapes = beat_shapes(work, r, work_hz)
    correlation, dominant, width_ms = shapes.template_correlation, shapes.dominant, shapes.qrs_width_ms
    chosen, next_rr, previous_rr = _chosen(r, dominant, pre, post, work.shape[1])
    offsets = np.arange(-pre, post + 1)
    windows = work[:, np.clip(r[chosen][:, None] + offsets[None, :], 0, work.shape[1] - 1)]  # [leads, beats, time]
    median = _median(windows)
    found = _fiducials(median, pre, work_hz, next_rr, previous_rr)
    fiducials, pr_level = found if found is not None else (None, np.zeros(values.shape[0]))
    p_wave = np.zeros(count, dtype=bool)
    if fiducials is not None and fiducials.p_onset_ms is not None:
        p_span = slice(
            pre + _samples(fiducials.p_onset_ms, work_hz), pre + _samples(fiducials.qrs_onset_ms, work_hz) + 1
        )
        p_wave = _p_waves(work, r, work_hz, fiducials, median[:, p_span])
        if p_wave[chosen].mean() < P_CONSISTENT:  # no P wave beat after beat: fibrillation, not a P wave
            p_wave = np.zeros(count, dtype=bool)
            fiducials = replace(fiducials, p_onset_ms=None, p_offset_ms=None)
    return Delineation(median, work_hz, pre, fiducials, int(chosen.sum()), correlation, dominant, p_wave, width_ms,
                       pr_level)  # fmt: skip


def _chosen(r: np.ndarray, dominant: np.ndarray, pre: int, post: int,
            length: int) -> tuple[np.ndarray, float, float]:  # fmt: skip
    """The beats for the median beat, and the median RRs (samples) after and before them.

    The two differ in bigeminy, where every chosen beat is followed by a premature one: the T wave's search ends
    at the next (short) RR, the P wave's search starts after the previous beat's T wave, one (long) RR earlier.

    Dominant beats whose window fits in the record, neither premature nor followed by a premature beat, as far as
    three such beats remain.
    """
    count = len(r)
    rr = np.diff(r).astype(np.float64)
    median_rr = float(np.median(rr)) if len(rr) else float(length)
    early = rr < PREMATURE_RR * median_rr
    premature = np.concatenate([[False], early])
    before_premature = np.concatenate([early, [False]])
    fits = (r - pre >= 0) & (r + post < length)
    masks = (dominant & fits & ~premature & ~before_premature, dominant & fits & ~premature, dominant & fits,
             dominant)  # fmt: skip
    chosen = next((mask for mask in masks if mask.sum() >= 3), dominant if dominant.any() else np.ones(count, bool))
    following = rr[chosen[:-1]] if count > 1 else np.zeros(0)
    preceding = rr[chosen[1:]] if count > 1 else np.zeros(0)
    return (chosen, float(np.median(following)) if len(following) else median_rr,
            float(np.median(preceding)) if len(preceding) else median_rr)


def _median(windows: np.ndarray) -> np.ndarray:
    """[leads, time]: the median over the beats (axis 1) of ``windows``, sorted in place (quicker than np.median)."""
    count = windows.shape[1]
    windows.sort(axis=1)
    ordered = windows
    if count % 2:
        middle: np.ndarray = ordered[:, count // 2]
        return middle
    halves: np.ndarray = (ordered[:, count // 2 - 1] + ordered[:, count // 2]) / 2
    return halves


def _smooth(median: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``width`` samples along time, applied twice (a triangular window)."""
    if width <= 1:
        return median
    once = ndimage.uniform_filter1d(median, width, axis=1, mode="nearest")
    smoothed: np.ndarray = ndimage.uniform_filter1d(once, width, axis=1, mode="nearest")
    return smoothed


def _velocity(median: np.ndarray, work_hz: float, smooth_s: float) -> np.ndarray:
    """[time]: spatial velocity (mV/s) of the median beats smoothed over ``smooth_s`` (central differences)."""
    smoothed = _smooth(median, max(1, int(round(smooth_s * work_hz))))
    slope = np.gradient(smoothed, axis=1) * work_hz
    velocity: np.ndarray = np.sqrt(np.einsum("lt,lt->t", slope, slope))
    return velocity


def _crossing(velocity: np.ndarray, threshold: float, index: int, step: int) -> float:
    """Sub-sample position where ``velocity`` falls below ``threshold`` between ``index − step`` and ``index``.

    ``index`` itself when it is not below (a valley).
    """
    inside = index - step
    below, above = velocity[index], velocity[inside]
    if below >= threshold or above <= threshold:
        return float(index)
    return float(inside + step * (above - threshold) / (above - below))


def _boundary(velocity: np.ndarray, magnitude: np.ndarray, levels: tuple[float, float, float], start: int, stop: int,
              step: int) -> float | None:  # fmt: skip
    """Where a wave ends, walking from ``start`` by ``step`` up to ``stop`` (None when it is not reached).

    The first sample where the velocity falls below ``threshold`` or has a valley below ``valley`` (a P wave riding
    on the T wave) while the magnitude (distance from the PR baseline) is below ``near`` (not a wave's apex);
    ``levels`` is ``(threshold, valley, near)``.
    """
    threshold, valley, near = levels
    if (stop - start) * step <= 1:
        return None
    index = np.arange(start + step, stop, step)
    v = velocity[index]
    previous, following = velocity[index - step], velocity[np.clip(index + step, 0, len(velocity) - 1)]
    ended = ((v < threshold) | ((v <= previous) & (v < following) & (v < valley))) & (magnitude[index] < near)
    found = np.flatnonzero(ended)
    if len(found) == 0:
        return None
    return _crossing(velocity, threshold, int(index[found[0]]), step)


def _major_peaks(velocity: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Local maxima of ``velocity`` in [start, stop) at least half the largest there (absolute indices)."""
    region = velocity[start:stop]
    if len(region) < 3:
        return np.zeros(0, dtype=np.int64)
    inner = region[1:-1]
    peaks = np.flatnonzero((inner >= region[:-2]) & (inner > region[2:]) & (inner >= 0.5 * region.max())) + 1
    return peaks + start


def _fiducials(median: np.ndarray, r_index: int, work_hz: float, rr: float,
               previous_rr: float) -> tuple[Fiducials, np.ndarray] | None:  # fmt: skip
    """The median beats' fiducials (ms from R) and each lead's PR baseline, or None without a QRS.

    ``rr`` is the RR after the median beat (where its T wave must end), ``previous_rr`` the one before it (where
    the previous T wave ended, after which the P wave is searched).
    """
    quiet = without_mains(median, work_hz)
    fast = _velocity(quiet, work_hz, QRS_SMOOTH_S)
    slow = _velocity(quiet, work_hz, WAVE_SMOOTH_S)
    qrs = _qrs_bounds(fast, r_index, work_hz)
    if qrs is None:
        return None
    onset, offset = qrs
    reference = isoelectric_level(median, fast, onset, work_hz)
    centred = median - reference[:, None]
    magnitude = np.sqrt(np.einsum("lt,lt->t", centred, centred))
    noise = _noise(slow)
    t_end = _t_end(slow, magnitude, noise, offset, min(onset + rr - T_GUARD_S * work_hz, len(slow) - 1), work_hz)
    p = None
    if t_end is not None:  # the P wave is searched after the previous beat's T wave, so it must be known
        previous_t_end = max(t_end - previous_rr, 1.0)
        p = _p_wave(slow, centred, magnitude, noise, onset, (max(onset - P_SEARCH_S * work_hz, previous_t_end),
                                                             previous_t_end), work_hz)  # fmt: skip
        if p is not None and not _quiet(slow, t_end, p[0] + rr, p, work_hz):
            p = None
    to_ms = 1000 / work_hz
    return Fiducials(qrs_onset_ms=(onset - r_index) * to_ms, qrs_offset_ms=(offset - r_index) * to_ms,
                     t_end_ms=None if t_end is None else (t_end - r_index) * to_ms,
                     p_onset_ms=None if p is None else (p[0] - r_index) * to_ms,
                     p_offset_ms=None if p is None else (p[1] - r_index) * to_ms), reference  # fmt: skip


def _quiet(slow: np.ndarray, t_end: float, next_p: float, p: tuple[float, float], work_hz: float) -> bool:
    """Whether the stretch from the T end to the next beat's P onset is quiet (or under 40 ms: not judged).

    Quiet: no velocity half the P wave's (flutter waves go on through it; sinus rhythm rests there).
    """
    start, stop = int(np.ceil(t_end + 0.01 * work_hz)), min(int(next_p - 0.01 * work_hz), len(slow) - 1)
    if stop - start < TP_MIN_S * work_hz:
        return True
    return float(slow[start : stop + 1].max()) < TP_QUIET * float(slow[int(p[0]) : int(np.ceil(p[1])) + 1].max())


def isoelectric_level(median: np.ndarray, fast: np.ndarray, onset: float, work_hz: float) -> np.ndarray:
    """[leads]: the PR baseline, the mean of the flattest 8 ms (least velocity) of the 30 ms before the QRS onset.

    The isoelectric point; robust to an onset found a little late, inside a small Q wave.
    """
    width = max(1, int(round(ISOELECTRIC_WIDTH_S * work_hz)))
    stop = max(int(onset), width)
    start = max(stop - int(round(PR_LEVEL_S * work_hz)), 0)
    if stop - start <= width:
        level: np.ndarray = median[:, start : stop + 1].mean(axis=1)
        return level
    cumulative = np.concatenate([[0.0], np.cumsum(fast[start:stop])])
    flattest = start + int(np.argmin(cumulative[width:] - cumulative[:-width]))
    level = median[:, flattest : flattest + width].mean(axis=1)
    return level


def _noise(velocity: np.ndarray) -> float:
    """The velocity's noise level: its lower quartile (most of a beat is slow; noise keeps it above zero)."""
    quarter = len(velocity) // 4
    return float(np.partition(velocity, quarter)[quarter])


def _qrs_bounds(fast: np.ndarray, r_index: int, work_hz: float) -> tuple[float, float] | None:
    """Sub-sample QRS onset and J point around ``r_index``, or None when no QRS stands above the noise."""
    near = slice(max(r_index - int(0.08 * work_hz), 0), r_index + int(0.08 * work_hz) + 1)
    peak = float(fast[near].max())
    noise = _noise(fast)
    if peak <= QRS_MIN_TO_NOISE * noise:
        return None
    threshold = max(QRS_FRACTION * peak, NOISE_FACTOR * noise)
    lo, hi = max(r_index - int(0.16 * work_hz), 1), min(r_index + int(0.2 * work_hz), len(fast) - 2)
    above = fast[lo : hi + 1] >= threshold
    centre = int(np.argmax(fast[near])) + near.start - lo
    starts = np.flatnonzero(~_close_gaps(above, max(1, int(round(QRS_GAP_S[0] * work_hz))))[:centre])
    stops = np.flatnonzero(~_close_gaps(above, max(1, int(round(QRS_GAP_S[1] * work_hz))))[centre:])
    if len(starts) == 0 or len(stops) == 0:
        return None
    return (_crossing(fast, threshold, lo + int(starts[-1]), -1),
            _crossing(fast, threshold, lo + centre + int(stops[0]), 1))  # fmt: skip


def _close_gaps(active: np.ndarray, gap: int) -> np.ndarray:
    """``active`` with runs of False no longer than ``gap`` between two True samples set True."""
    changes = np.flatnonzero(np.diff(active.astype(np.int8)))
    closed = active.copy()
    for start, stop in zip(changes[:-1], changes[1:], strict=True):
        if not active[start + 1] and stop - start <= gap and active[start]:
            closed[start + 1 : stop + 1] = True
    return closed


def _t_end(slow: np.ndarray, magnitude: np.ndarray, noise: float, offset: float, limit: float,
           work_hz: float) -> float | None:  # fmt: skip
    """End of the T wave: where the first wave after J (from 40 ms on, up to ``limit``) ends."""
    start, stop = int(offset + T_START_S * work_hz), int(limit)
    if stop - start < 0.06 * work_hz:
        return None
    peaks = _major_peaks(slow, start, stop + 1)
    if len(peaks) == 0:
        return None
    first = int(peaks[0])
    span = slice(start, min(first + int(WAVE_SPAN_S * work_hz), stop) + 1)
    peak = float(slow[span].max())
    if peak <= NOISE_FACTOR * noise:
        return None
    threshold = max(T_FRACTION * peak, NOISE_FACTOR * noise)
    near = NEAR_BASELINE * float(magnitude[span].max()) + NEAR_BASELINE_MV
    return _boundary(slow, magnitude, (threshold, VALLEY * peak, near), first, stop, 1)


def _p_wave(slow: np.ndarray, centred: np.ndarray, magnitude: np.ndarray, noise: float, onset: float,
            bounds: tuple[float, float], work_hz: float) -> tuple[float, float] | None:  # fmt: skip
    """Sub-sample P onset and offset of the last wave between ``bounds[0]`` and the QRS onset, or None.

    None without a credible P wave: one that stands above the noise, starts from the level of the PR segment (the
    slow ramp of flutter waves does not) and is not repeated a flutter cycle earlier (after the previous T wave's
    end, ``bounds[1]``).
    """
    start, stop = int(np.ceil(bounds[0])), int(onset - (WAVE_SMOOTH_S + 0.004) * work_hz)
    if stop - start < 0.06 * work_hz:
        return None
    peaks = _major_peaks(slow, start, stop)
    if len(peaks) == 0:
        return None
    last = int(peaks[-1])
    span = slice(max(last - int(P_SPAN_S * work_hz), start), stop)
    peak = float(slow[span].max())
    size = float(magnitude[span].max())
    if size < P_MIN_MV or peak <= P_MIN_TO_NOISE * noise:
        return None
    levels = (max(P_FRACTION * peak, NOISE_FACTOR * noise), VALLEY * peak, NEAR_BASELINE * size + NEAR_BASELINE_MV)
    p_onset = _boundary(slow, magnitude, levels, last, start - 1, -1)
    if p_onset is None:
        return None
    p_offset = _boundary(slow, magnitude, levels, last, stop, 1)
    p_offset = float(stop) if p_offset is None else p_offset
    before = int(p_onset) - int(ISOELECTRIC_S * work_hz)
    if before < 0 or magnitude[before : int(p_onset) + 1].mean() > ISOELECTRIC * size + NEAR_BASELINE_MV:
        return None
    if _repeats(centred, int(p_onset), int(np.ceil(p_offset)), int(np.ceil(bounds[1])), work_hz):
        return None
    return p_onset, p_offset


def _repeats(centred: np.ndarray, first: int, last: int, earliest: int, work_hz: float) -> bool:
    """Whether the wave in [first, last] recurs one flutter cycle (150–260 ms) earlier, after ``earliest``."""
    wave = centred[:, first : last + 1]
    lags = np.arange(int(FLUTTER_CYCLE_S[0] * work_hz), int(FLUTTER_CYCLE_S[1] * work_hz) + 1)
    lags = lags[first - lags >= earliest]
    if len(lags) == 0 or wave.shape[1] < 2:
        return False
    index = (first - lags)[:, None] + np.arange(wave.shape[1])[None, :]
    earlier = centred[:, index]  # [leads, lags, time]
    dot = np.einsum("lt,lkt->k", wave, earlier)
    energy = np.einsum("lkt,lkt->k", earlier, earlier)
    own = float(np.einsum("lt,lt->", wave, wave))
    similarity = dot / np.sqrt(np.maximum(energy * own, 1e-12))
    alike = (similarity >= FLUTTER_SIMILARITY) & (energy >= 0.5 * own) & (energy <= 2.0 * own)
    return bool(alike.any())


def _samples(ms: float, work_hz: float) -> int:
    return int(round(ms * work_hz / 1000))


def _p_waves(work: np.ndarray, r: np.ndarray, work_hz: float, fiducials: Fiducials, template: np.ndarray) -> np.ndarray:
    """Per beat: whether its stretch from the P onset to the QRS onset resembles the median beat's (``template``)."""
    assert fiducials.p_onset_ms is not None  # noqa: S101 - the caller checked
    offsets = np.arange(_samples(fiducials.p_onset_ms, work_hz), _samples(fiducials.qrs_onset_ms, work_hz) + 1)
    reference_len = max(1, int(0.01 * work_hz))
    index = np.clip(r[:, None] + offsets[None, :], 0, work.shape[1] - 1)
    stretch = work[:, index]  # [leads, beats, time]
    stretch = stretch - stretch[:, :, -reference_len:].mean(axis=-1, keepdims=True)
    flat = stretch.transpose(1, 0, 2).reshape(len(r), -1)
    reference = (template - template[:, -reference_len:].mean(axis=-1, keepdims=True)).reshape(-1)
    own = np.linalg.norm(flat, axis=1)
    size = float(np.linalg.norm(reference)) or 1.0
    similarity = np.where(own > 0, np.einsum("bk,k->b", flat, reference) / (np.where(own > 0, own, 1) * size), 0.0)
    similarity[(own > P_SIZE_RATIO * size) | (own < size / P_SIZE_RATIO)] = 0.0  # far larger or smaller: not it
    result: np.ndarray = similarity >= P_WAVE_SIMILARITY
    return result
