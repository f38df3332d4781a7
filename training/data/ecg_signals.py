"""Generated 12-lead ECGs with known answers: rhythm, beat times, intervals, axis and ST levels.

The heart is a moving dipole. Each wave (P, the three parts of the QRS, T, and in atrial fibrillation or flutter the
atrial waves) is a vector in (x: leftward, y: inferior, z: anterior) times a time course; every lead is the
projection of that vector on the lead's direction, so the twelve leads agree with one another (III = II − I, and
so on) and the frontal QRS axis is known. Waves are raised-cosine (Hann) pulses, zero outside their span, so where
a wave starts and ends is exact and the truth of PR, QRS and QT is unambiguous:

- PR = P onset → QRS onset; QRS = QRS onset → QRS offset; QT = QRS onset → T end (the normal beat's).

Rhythms (:data:`cds.results.ecg.RHYTHMS`): sinus rhythm (60–100/min), sinus bradycardia (< 60), sinus tachycardia
(> 100), atrial fibrillation (irregular RR, no P waves, fibrillatory waves 4–9 Hz), atrial flutter (saw-tooth F
waves at 240–350/min with 2:1 to 4:1 or variable conduction) and frequent ectopy (sinus with at least three
premature ventricular or atrial beats, never two in a row; a record too short for three is labelled by its
rate). The label of a sinus record is set by its generated mean rate.

Domain randomisation, per record: sampling rate (250, 360, 500, 1000 Hz), duration (8–12 s), rate, PR, QRS and QT
(QT following the rate by a randomised Fridericia-like relation), frontal axis (−40° to 110°), wave amplitudes,
precordial transition, lead gains (electrode placement), baseline wander, mains hum (50 or 60 Hz), muscle noise,
an isolated ectopic beat in some records that stay "sinus". ST elevation can be added to chosen leads (for the
STEMI criteria). All of it is generated: no recording of a person went into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cds.pipelines.ecg.record import STANDARD_LEADS

SAMPLING_RATES = (250.0, 360.0, 500.0, 1000.0)
# Directions of the precordial leads in the horizontal plane (degrees from leftward toward anterior).
_PRECORDIAL_DEG = {"V1": 115.0, "V2": 95.0, "V3": 75.0, "V4": 55.0, "V5": 30.0, "V6": 5.0}


@dataclass(frozen=True)
class EcgTruth:
    """What was generated.

    Attributes:
        rhythm: One of :data:`cds.results.ecg.RHYTHMS`.
        r_peaks: Sample index of each QRS's main peak (the R wave's centre), every beat.
        beat_kinds: ``N`` (conducted), ``V`` (premature ventricular), ``A`` (premature atrial), per beat.
        heart_rate_bpm: 60 / mean RR over the record.
        pr_ms: PR of the normal beats (None without P waves).
        qrs_ms: QRS duration of the normal beats.
        qt_ms: QT of the normal beats at the record's mean rate.
        qrs_axis_deg: Frontal QRS axis (net QRS areas of I and aVF of a normal beat, noise-free).
        st_mv: ST level added per lead (mV, positive = elevation).
    """

    rhythm: str
    r_peaks: np.ndarray
    beat_kinds: tuple[str, ...]
    heart_rate_bpm: float
    pr_ms: float | None
    qrs_ms: float
    qt_ms: float
    qrs_axis_deg: float
    st_mv: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GeneratedEcg:
    """Twelve leads (float32 mV, standard order), their sampling rate and the truth."""

    signals: np.ndarray
    sampling_hz: float
    truth: EcgTruth


@dataclass(frozen=True)
class _Wave:
    """A dipole wave: its vector, start and end (s); ``skew`` moves the peak toward the end (T waves)."""

    vector: np.ndarray
    start: float
    end: float
    peak: float = 0.5


@dataclass(frozen=True)
class _Morphology:
    """A record's beat shapes: vectors and durations of the normal (and ectopic) beats."""

    p_vector: np.ndarray
    p_ms: float
    pr_ms: float
    qrs_ms: float
    q_vector: np.ndarray
    r_vector: np.ndarray
    s_vector: np.ndarray
    t_vector: np.ndarray
    qt_ms: float


def _unit(azimuth_deg: float, elevation: float = 0.0) -> np.ndarray:
    """A frontal-plane direction (0° leftward, 90° inferior) with an anterior (z) component."""
    angle = np.deg2rad(azimuth_deg)
    return np.array([np.cos(angle), np.sin(angle), elevation])


def _lead_matrix(rng: np.random.Generator | None) -> np.ndarray:
    """[12, 3]: each lead's projection of the dipole (limb leads by Einthoven/Goldberger, precordials by
    direction), with random gains on the precordials for electrode placement."""
    lead_i, lead_ii = np.array([1.0, 0.0, 0.0]), np.array([0.5, np.sqrt(3) / 2, 0.0])
    rows = {"I": lead_i, "II": lead_ii, "III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2,
            "aVL": lead_i - lead_ii / 2, "aVF": lead_ii - lead_i / 2}  # fmt: skip
    for name, degrees in _PRECORDIAL_DEG.items():
        shift = rng.normal(0, 8) if rng is not None else 0.0
        gain = rng.uniform(1.0, 1.8) if rng is not None else 1.4
        angle = np.deg2rad(degrees + shift)
        rows[name] = gain * np.array([np.cos(angle), -0.15, np.sin(angle)])
    return np.array([rows[name] for name in STANDARD_LEADS])


def _hann(t: np.ndarray, start: float, end: float, peak: float) -> np.ndarray:
    """A raised-cosine pulse on [start, end] peaking at ``start + peak·(end − start)``, zero outside."""
    top = start + peak * (end - start)
    out = np.zeros_like(t)
    rise = (t > start) & (t <= top)
    fall = (t > top) & (t < end)
    out[rise] = 0.5 * (1 - np.cos(np.pi * (t[rise] - start) / (top - start)))
    out[fall] = 0.5 * (1 + np.cos(np.pi * (t[fall] - top) / (end - top)))
    return out


def _morphology(rng: np.random.Generator, rate: float) -> _Morphology:
    axis = rng.uniform(-40, 110)
    r_amplitude = rng.uniform(0.8, 2.2)
    qrs_ms = rng.uniform(70, 112)
    rr_s = 60.0 / rate
    qt_ms = rng.uniform(360, 440) * rr_s ** (1 / 3) * rng.uniform(0.95, 1.05)
    return _Morphology(
        p_vector=_unit(rng.uniform(30, 75), rng.uniform(-0.1, 0.3)) * rng.uniform(0.08, 0.25),
        p_ms=rng.uniform(70, 115), pr_ms=max(110.0, rng.uniform(120, 210) * min(1.0, rr_s) ** 0.25),
        qrs_ms=qrs_ms,
        q_vector=_unit(axis + 180 + rng.uniform(-40, 40), rng.uniform(0.4, 1.2)) * rng.uniform(0.05, 0.25),
        r_vector=_unit(axis, -rng.uniform(0.1, 0.6)) * r_amplitude,
        s_vector=_unit(axis + 180 + rng.uniform(-50, 50), -rng.uniform(0.3, 1.0)) * rng.uniform(0.15, 0.6),
        t_vector=_unit(axis + rng.uniform(-30, 30), rng.uniform(-0.2, 0.4)) * rng.uniform(0.15, 0.75),
        qt_ms=float(qt_ms))  # fmt: skip


def _qrs(onset: float, qrs_s: float, m: _Morphology, vectors: tuple[np.ndarray, ...] | None = None) -> list[_Wave]:
    q, r, s = vectors or (m.q_vector, m.r_vector, m.s_vector)
    return [_Wave(q, onset, onset + 0.35 * qrs_s), _Wave(r, onset + 0.15 * qrs_s, onset + 0.8 * qrs_s),
            _Wave(s, onset + 0.6 * qrs_s, onset + qrs_s)]  # fmt: skip


def _r_peak(onset: float, qrs_s: float) -> float:
    return onset + (0.15 + 0.65 / 2) * qrs_s


def _t_wave(qrs_onset: float, qt_s: float, qrs_s: float, vector: np.ndarray) -> _Wave:
    end = qrs_onset + qt_s
    start = qrs_onset + qrs_s + 0.35 * (qt_s - qrs_s) * 0.5
    return _Wave(vector, start, end, peak=0.62)


def _rr_series(rng: np.random.Generator, rhythm: str, rate: float, duration: float) -> np.ndarray:
    """Beat onsets (s) of the underlying rhythm."""
    mean_rr = 60.0 / rate
    count = int(duration / mean_rr) + 3
    if rhythm == "atrial_fibrillation":
        cv = rng.uniform(0.12, 0.3)
        rr = rng.gamma(1 / cv**2, mean_rr * cv**2, size=count).clip(0.3, 2.0)
    else:
        phase = rng.uniform(0, 2 * np.pi)
        breathing = 1 + rng.uniform(0.0, 0.04) * np.sin(2 * np.pi * np.arange(count) * mean_rr / 4.0 + phase)
        rr = mean_rr * breathing * (1 + rng.normal(0, 0.01, count))
    return np.cumsum(np.concatenate([[rng.uniform(0.1, 0.9) * mean_rr], rr]))


def _rate_for(rng: np.random.Generator, rhythm: str) -> float:
    ranges = {"sinus_rhythm": (60.5, 99.5), "sinus_bradycardia": (35, 59.5), "sinus_tachycardia": (100.5, 160),
              "atrial_fibrillation": (55, 150), "frequent_ectopy": (50, 105)}  # fmt: skip
    low, high = ranges.get(rhythm, (60.5, 99.5))
    return float(rng.uniform(low, high))


def _atrial_waves(rng: np.random.Generator, rhythm: str, t: np.ndarray, cycle_s: float | None = None) -> np.ndarray:
    """[3, samples] dipole of fibrillatory or flutter waves (flutter waves every ``cycle_s``, the cycle the QRS
    complexes are conducted from, so the two stay locked)."""
    direction = _unit(rng.uniform(60, 110), rng.uniform(0.5, 1.2))
    if rhythm == "atrial_fibrillation":
        frequency = rng.uniform(4, 9)
        drift = np.cumsum(rng.normal(0, 1, len(t)))
        drift = drift / (np.abs(drift).max() or 1) * 0.8
        phase = 2 * np.pi * frequency * t + drift
        amplitude = rng.uniform(0.02, 0.12) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.1, 0.5) * t))
        wave = amplitude * (np.sin(phase) + 0.3 * np.sin(2 * phase + 1))
    else:
        rate_hz = rng.uniform(240, 350) / 60  # drawn in any case, so the random stream stays as it was
        if cycle_s is not None:
            rate_hz = 1.0 / cycle_s
        saw = (t * rate_hz) % 1.0
        wave = rng.uniform(0.12, 0.3) * (np.where(saw < 0.75, -saw / 0.75, -(1 - saw) / 0.25) + 0.5)
        direction = _unit(rng.uniform(70, 100), rng.uniform(-0.2, 0.6))
    return direction[:, None] * wave[None, :]


def _flutter_beats(rng: np.random.Generator, duration: float) -> tuple[np.ndarray, float]:
    """QRS onsets locked to flutter waves at 2:1–4:1 (or variable) conduction; and the flutter cycle (s)."""
    cycle = 60.0 / rng.uniform(240, 350)
    ratios = [int(rng.choice([2, 3, 4]))] if rng.random() < 0.7 else [2, 4]
    onsets, time = [], rng.uniform(0.1, 0.6)
    while time < duration + 1:
        onsets.append(time)
        time += cycle * int(rng.choice(ratios))
    return np.array(onsets), cycle


def generate_ecg(rng: np.random.Generator, rhythm: str, *, sampling_hz: float | None = None,
                 duration_s: float | None = None, noise: bool = True,
                 st_mv: dict[str, float] | None = None) -> GeneratedEcg:  # fmt: skip
    """One generated 12-lead ECG of ``rhythm`` with its truth (see the module docstring).

    Args:
        rng: The random source (records are reproducible from a seed).
        rhythm: One of :data:`cds.results.ecg.RHYTHMS`.
        sampling_hz: Fixed rate (default: one of :data:`SAMPLING_RATES` at random).
        duration_s: Fixed length (default 8–12 s).
        noise: Add baseline wander, mains hum and muscle noise.
        st_mv: ST level to add per lead (mV) from the J point to the T wave's end.
    """
    fs = float(sampling_hz or rng.choice(SAMPLING_RATES))
    duration = float(duration_s or rng.uniform(8, 12))
    t = np.arange(int(round(duration * fs))) / fs
    rate = _rate_for(rng, rhythm)
    flutter_cycle: float | None = None
    if rhythm == "atrial_flutter":
        onsets, flutter_cycle = _flutter_beats(rng, duration)
        rate = 60.0 / float(np.mean(np.diff(onsets)))
    else:
        onsets = _rr_series(rng, rhythm, rate, duration)
    morphology = _morphology(rng, rate)
    qrs_s, qt_s = morphology.qrs_ms / 1000, morphology.qt_ms / 1000
    kinds = ["N"] * len(onsets)
    ectopic_count = {"frequent_ectopy": int(rng.integers(3, 7))}.get(rhythm, int(rng.random() < 0.15))
    if rhythm in ("atrial_fibrillation", "atrial_flutter"):
        ectopic_count = 0
    onsets, kinds = _insert_ectopics(rng, onsets, kinds, ectopic_count, duration)
    pvc = _unit(rng.uniform(-180, 180), rng.uniform(-1, 1)) * rng.uniform(1.0, 2.5)
    pvc_qrs_s = rng.uniform(0.13, 0.18)
    waves: list[_Wave] = []
    has_p = rhythm not in ("atrial_fibrillation", "atrial_flutter")
    for onset, kind in zip(onsets, kinds, strict=True):
        if kind == "V":
            waves += _qrs(onset, pvc_qrs_s, morphology, (pvc * 0.2, pvc, -pvc * 0.3))
            waves.append(_t_wave(onset, qt_s + 0.04, pvc_qrs_s, -pvc * 0.35))
            continue
        if has_p:
            p_vector = morphology.p_vector if kind == "N" else _unit(rng.uniform(-60, 0)) * 0.12
            p_start = onset - morphology.pr_ms / 1000
            waves.append(_Wave(p_vector, p_start, p_start + morphology.p_ms / 1000))
        waves += _qrs(onset, qrs_s, morphology)
        waves.append(_t_wave(onset, qt_s, qrs_s, morphology.t_vector))
    dipole = np.zeros((3, len(t)))
    for wave in waves:
        span = (t > wave.start) & (t < wave.end)
        if span.any():
            dipole[:, span] += wave.vector[:, None] * _hann(t[span], wave.start, wave.end, wave.peak)[None, :]
    if not has_p:
        dipole += _atrial_waves(rng, rhythm, t, flutter_cycle)
    signals = _lead_matrix(rng) @ dipole
    st = dict(st_mv or {})
    for lead, level in st.items():
        signals[STANDARD_LEADS.index(lead)] += level * _st_shape(t, onsets, kinds, qrs_s, qt_s)
    if noise:
        signals += _noise(rng, t, fs)
    r_peaks = np.array([round(_r_peak(onset, pvc_qrs_s if kind == "V" else qrs_s) * fs)
                        for onset, kind in zip(onsets, kinds, strict=True)])  # fmt: skip
    inside = (r_peaks >= 0) & (r_peaks < len(t))
    heart_rate = 60.0 / float(np.mean(np.diff(onsets[inside]))) if inside.sum() > 1 else rate
    ectopics = sum(kind != "N" for kind, keep in zip(kinds, inside, strict=True) if keep)
    label = _sinus_label(heart_rate) if rhythm.startswith("sinus") or (rhythm == "frequent_ectopy" and ectopics < 3) \
        else rhythm
    truth = EcgTruth(rhythm=label, r_peaks=r_peaks[inside],
                     beat_kinds=tuple(str(kind) for kind, keep in zip(kinds, inside, strict=True) if keep),
                     heart_rate_bpm=heart_rate,
                     pr_ms=morphology.pr_ms if has_p else None, qrs_ms=morphology.qrs_ms, qt_ms=morphology.qt_ms,
                     qrs_axis_deg=_axis(morphology, qrs_s), st_mv=st)  # fmt: skip
    return GeneratedEcg(signals.astype(np.float32), fs, truth)


def _sinus_label(heart_rate: float) -> str:
    """A sinus record's label by its generated mean rate (the definitions: below 60, above 100 per minute)."""
    if heart_rate < 60:
        return "sinus_bradycardia"
    return "sinus_tachycardia" if heart_rate > 100 else "sinus_rhythm"


def _insert_ectopics(rng: np.random.Generator, onsets: np.ndarray, kinds: list[str], count: int,
                     duration: float) -> tuple[np.ndarray, list[str]]:  # fmt: skip
    """Replace ``count`` sinus beats by premature ones: a PVC (compensatory pause) or a PAC (reset)."""
    onsets = onsets.copy()
    candidates = [int(i) for i in rng.permutation(range(1, len(onsets) - 1)) if onsets[i] < duration - 0.8]
    chosen: list[int] = []
    for index in candidates:  # never two in a row: each premature beat follows a sinus one
        if len(chosen) < count and all(abs(index - other) > 1 for other in chosen):
            chosen.append(index)
    for index in sorted(chosen):
        rr = onsets[index] - onsets[index - 1]
        kind = "V" if rng.random() < 0.7 else "A"
        onsets[index] = onsets[index - 1] + rr * rng.uniform(0.55, 0.72)
        kinds[index] = kind
        if kind == "A":  # the sinus node resets: the next beats come one cycle after the premature one
            onsets[index + 1:] -= onsets[index - 1] + rr - onsets[index]
    return onsets, kinds


def _st_shape(t: np.ndarray, onsets: np.ndarray, kinds: list[str], qrs_s: float, qt_s: float) -> np.ndarray:
    """1 at the J point of every normal beat, flat to mid-T, tapering to 0 at T end; ramping in inside the QRS."""
    shape = np.zeros_like(t)
    for onset, kind in zip(onsets, kinds, strict=True):
        if kind == "V":
            continue
        j, end = onset + qrs_s, onset + qt_s
        ramp = (t > j - 0.3 * qrs_s) & (t <= j)
        shape[ramp] = 0.5 * (1 - np.cos(np.pi * (t[ramp] - (j - 0.3 * qrs_s)) / (0.3 * qrs_s)))
        middle = j + 0.5 * (end - j)
        shape[(t > j) & (t <= middle)] = 1.0
        tail = (t > middle) & (t < end)
        shape[tail] = 0.5 * (1 + np.cos(np.pi * (t[tail] - middle) / (end - middle)))
    return shape


def _axis(m: _Morphology, qrs_s: float) -> float:
    """Frontal axis from the noise-free net QRS areas of I and aVF."""
    t = np.linspace(0, qrs_s, 2001)
    dipole = sum(w.vector[:, None] * _hann(t, w.start, w.end, w.peak)[None, :] for w in _qrs(0.0, qrs_s, m))
    leads = _lead_matrix(None) @ np.asarray(dipole)
    area_i, area_avf = leads[STANDARD_LEADS.index("I")].sum(), leads[STANDARD_LEADS.index("aVF")].sum()
    return float(np.degrees(np.arctan2(area_avf, area_i)))


def _noise(rng: np.random.Generator, t: np.ndarray, fs: float) -> np.ndarray:
    """Baseline wander (breathing), mains hum and muscle noise, different in each lead."""
    leads = len(STANDARD_LEADS)
    wander = rng.uniform(0, 0.3, (leads, 1)) * np.sin(2 * np.pi * rng.uniform(0.1, 0.45) * t[None, :]
                                                       + rng.uniform(0, 2 * np.pi, (leads, 1)))  # fmt: skip
    mains_hz = 50.0 if rng.random() < 0.5 else 60.0
    mains = rng.uniform(0, 0.02) * np.sin(2 * np.pi * mains_hz * t[None, :] + rng.uniform(0, 2 * np.pi, (leads, 1)))
    muscle = rng.normal(0, 1, (leads, len(t))) * rng.uniform(0.002, 0.025)
    if fs > 300:  # muscle noise is band-limited; a light moving average keeps it below ~100 Hz
        width = int(fs / 150)
        muscle = np.apply_along_axis(lambda x: np.convolve(x, np.ones(width) / width, mode="same"), 1, muscle)
    result: np.ndarray = wander + mains + muscle
    return result
