"""An ECG recording as a rhythm model reads it: resampled, band-passed, clipped and cut into windows.

One function for training and serving (:func:`model_windows`), driven by the model's
:class:`~cds.models.spec.WaveformInput`, so the two cannot drift apart. Resampling is polyphase
(``scipy.signal.resample_poly``, with its anti-aliasing filter) by the exact ratio of the rates; the band-pass is a
zero-phase second-order Butterworth. Windows start every ``stride_s`` and a last one ends with the recording, so
every sample is seen; a recording shorter than one window (a rounding sample or two) is padded with zeros.
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np
from scipy import signal as sps

from cds.models.spec import WaveformInput
from cds.pipelines.ecg.record import STANDARD_LEADS, EcgContract


def contract_of(waveform: WaveformInput) -> EcgContract:
    """The reader's contract for a model's waveform input."""
    return EcgContract(sampling_hz=waveform.sampling_hz, min_s=waveform.min_s, max_s=waveform.max_s)


@lru_cache(maxsize=16)
def _band(low: float, high: float, fs: float) -> np.ndarray:
    sos: np.ndarray = sps.butter(2, (low, high), btype="bandpass", fs=fs, output="sos")
    return sos


def resample(signals: np.ndarray, sampling_hz: float, target_hz: float) -> np.ndarray:
    """``signals`` [leads, samples] at ``target_hz`` (polyphase, by the exact ratio of the two rates)."""
    ratio = Fraction(target_hz / sampling_hz).limit_denominator(1000)
    if ratio == 1:
        return np.asarray(signals, dtype=np.float32)
    out: np.ndarray = sps.resample_poly(signals, ratio.numerator, ratio.denominator, axis=1)
    return out.astype(np.float32)


def model_signal(signals: np.ndarray, sampling_hz: float, waveform: WaveformInput) -> np.ndarray:
    """The whole recording as the model reads it: [leads, samples at ``model_hz``], band-passed and clipped.

    ``signals`` are in :data:`~cds.pipelines.ecg.record.STANDARD_LEADS` order; the model's leads are taken from them.
    """
    rows = [STANDARD_LEADS.index(lead) for lead in waveform.leads]
    resampled = resample(np.asarray(signals)[rows], sampling_hz, waveform.model_hz)
    filtered = sps.sosfiltfilt(_band(*waveform.band_hz, waveform.model_hz), resampled, axis=1)
    clipped: np.ndarray = np.clip(filtered, -waveform.clip_mv, waveform.clip_mv).astype(np.float32)
    return clipped


def window_starts(samples: int, waveform: WaveformInput) -> list[int]:
    """Where each window starts in a model signal of ``samples``."""
    length, stride = waveform.window_samples, max(1, round(waveform.stride_s * waveform.model_hz))
    if samples <= length:
        return [0]
    starts = list(range(0, samples - length + 1, stride))
    if starts[-1] != samples - length:
        starts.append(samples - length)
    return starts


def cut_windows(model_input: np.ndarray, waveform: WaveformInput) -> np.ndarray:
    """[windows, leads, window samples] from a :func:`model_signal`."""
    length = waveform.window_samples
    if model_input.shape[1] < length:
        model_input = np.pad(model_input, ((0, 0), (0, length - model_input.shape[1])))
    windows = [model_input[:, start:start + length] for start in window_starts(model_input.shape[1], waveform)]
    return np.ascontiguousarray(np.stack(windows), dtype=np.float32)


def model_windows(signals: np.ndarray, sampling_hz: float, waveform: WaveformInput) -> np.ndarray:
    """A recording as model input: [windows, leads, window samples] (see the module docstring)."""
    return cut_windows(model_signal(signals, sampling_hz, waveform), waveform)
