"""Signal quality of each lead: what makes it unmeasurable, found before anything is measured on it.

Per lead, from its samples (mV) and the sampling rate:

- ``flat``: no signal (peak-to-peak below 0.05 mV: a disconnected or shorted lead);
- ``lead_off``: the lead sits at a constant value for more than half the recording (the cart's lead-off level);
- ``saturated``: more than 1 % of samples at the recording's extreme values (the amplifier clipped);
- ``powerline``: more than 30 % of the 1–100 Hz power within 1 Hz of 50 or 60 Hz (mains interference);
- ``baseline_wander``: the signal below 0.7 Hz swings more than 1 mV peak to peak (breathing, movement);
- ``noisy``: more than 40 % of the power above 40 Hz (muscle), where the sampling rate reaches it.

A lead with any of these is flagged and left out of measurements; the ECG is refused (``unreadable_ecg``, with
each lead's problems) when fewer than two of the limb leads I and II and fewer than four precordial leads remain,
as nothing trustworthy can be measured then. Thresholds are conventions of this engine, set on generated signals,
not taken from a published standard.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.ecg.record import STANDARD_LEADS, EcgRecord

FLAT_MV = 0.05
LEAD_OFF_FRACTION = 0.5
SATURATED_FRACTION = 0.01
POWERLINE_FRACTION = 0.3
WANDER_MV = 1.0
NOISE_FRACTION = 0.4
PRECORDIAL = ("V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True)
class LeadQuality:
    """One lead's problems (none: usable)."""

    lead: str
    problems: tuple[str, ...]

    @property
    def usable(self) -> bool:
        """Whether the lead can be measured."""
        return not self.problems


def lead_quality(signal: np.ndarray, sampling_hz: float, lead: str = "") -> LeadQuality:
    """The problems of one lead."""
    return leads_quality(np.asarray(signal)[None, :], sampling_hz, (lead,))[0]


def leads_quality(signals: np.ndarray, sampling_hz: float, leads: tuple[str, ...]) -> list[LeadQuality]:
    """The problems of each row of ``signals`` [leads, samples] (mV), every check done on all leads at once."""
    values = np.asarray(signals, dtype=np.float64)
    count, samples = values.shape
    if samples == 0:
        return [LeadQuality(lead, ("flat",)) for lead in leads]
    high, low = values.max(axis=1), values.min(axis=1)
    span = high - low
    median = np.partition(values, samples // 2, axis=1)[:, samples // 2]  # a median (the upper one), quickly
    # More than half the samples at one value: that value is the median.
    lead_off = np.mean(np.abs(values - median[:, None]) < 5e-5, axis=1) > LEAD_OFF_FRACTION
    tolerance = (span * 1e-3)[:, None]
    at_extremes = np.mean((values >= high[:, None] - tolerance) | (values <= low[:, None] + tolerance), axis=1)
    saturated = (at_extremes > SATURATED_FRACTION) & ~lead_off
    frequencies = np.fft.rfftfreq(samples, d=1.0 / sampling_hz)
    spectrum = np.fft.rfft(values - values.mean(axis=1, keepdims=True), axis=1)
    power = np.abs(spectrum) ** 2
    total = power[:, frequencies >= 0.05].sum(axis=1)
    band = power[:, (frequencies >= 1) & (frequencies <= 100)].sum(axis=1)
    near_mains = (np.abs(frequencies - 50.0) <= 1) | (np.abs(frequencies - 60.0) <= 1)
    mains = power[:, near_mains].sum(axis=1)
    powerline = mains / np.where(band > 0, band, 1.0) > POWERLINE_FRACTION
    slow = np.where(frequencies < 0.7, spectrum, 0)
    wander = np.ptp(np.fft.irfft(slow, samples, axis=1), axis=1) > WANDER_MV
    noisy = np.zeros(count, dtype=bool)
    if sampling_hz / 2 > 45:
        above = (frequencies > 40) & ~near_mains
        noisy = power[:, above].sum(axis=1) / np.where(total > 0, total, 1.0) > NOISE_FRACTION
    checks = (("lead_off", lead_off), ("saturated", saturated), ("powerline", powerline),
              ("baseline_wander", wander), ("noisy", noisy))  # fmt: skip
    return [LeadQuality(lead, ("flat",)) if span[i] < FLAT_MV
            else LeadQuality(lead, tuple(name for name, found in checks if found[i]))
            for i, lead in enumerate(leads)]  # fmt: skip


def record_quality(record: EcgRecord) -> list[LeadQuality]:
    """Every lead's problems, in standard order.

    Raises:
        InvalidInputError: ``unreadable_ecg`` when too few leads are usable, naming each lead's problems.
    """
    qualities = leads_quality(record.signals, record.sampling_hz, STANDARD_LEADS)
    usable = {q.lead for q in qualities if q.usable}
    limb = [lead for lead in ("I", "II") if lead in usable]
    precordial = [lead for lead in PRECORDIAL if lead in usable]
    if len(limb) < 2 and len(precordial) < 4:
        found = "; ".join(f"{q.lead}: {', '.join(q.problems)}" for q in qualities if q.problems)
        raise InvalidInputError(f"{record.source}: too few usable leads to read ({found})", code="unreadable_ecg")
    return qualities
