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
    values = np.asarray(signal, dtype=np.float64)
    span = float(np.ptp(values)) if len(values) else 0.0
    if span < FLAT_MV:
        return LeadQuality(lead, ("flat",))
    problems = []
    rounded = np.round(values, 4)
    _, counts = np.unique(rounded, return_counts=True)
    if counts.max() / len(values) > LEAD_OFF_FRACTION:
        problems.append("lead_off")
    at_extremes = np.mean((values >= values.max() - span * 1e-3) | (values <= values.min() + span * 1e-3))
    if at_extremes > SATURATED_FRACTION and "lead_off" not in problems:
        problems.append("saturated")
    frequencies = np.fft.rfftfreq(len(values), d=1.0 / sampling_hz)
    power = np.abs(np.fft.rfft(values - values.mean())) ** 2
    total = float(power[frequencies >= 0.05].sum()) or 1.0
    band = power[(frequencies >= 1) & (frequencies <= 100)].sum() or 1.0
    mains = sum(power[np.abs(frequencies - hz) <= 1].sum() for hz in (50.0, 60.0))
    if mains / band > POWERLINE_FRACTION:
        problems.append("powerline")
    slow = np.fft.rfft(values - values.mean())
    slow[frequencies >= 0.7] = 0
    if float(np.ptp(np.fft.irfft(slow, len(values)))) > WANDER_MV:
        problems.append("baseline_wander")
    if sampling_hz / 2 > 45:
        high = power[(frequencies > 40) & (np.abs(frequencies - 50) > 1) & (np.abs(frequencies - 60) > 1)]
        if high.sum() / total > NOISE_FRACTION:
            problems.append("noisy")
    return LeadQuality(lead, tuple(problems))


def record_quality(record: EcgRecord) -> list[LeadQuality]:
    """Every lead's problems, in standard order.

    Raises:
        InvalidInputError: ``unreadable_ecg`` when too few leads are usable, naming each lead's problems.
    """
    qualities = [lead_quality(record.signals[i], record.sampling_hz, lead) for i, lead in enumerate(STANDARD_LEADS)]
    usable = {q.lead for q in qualities if q.usable}
    limb = [lead for lead in ("I", "II") if lead in usable]
    precordial = [lead for lead in PRECORDIAL if lead in usable]
    if len(limb) < 2 and len(precordial) < 4:
        found = "; ".join(f"{q.lead}: {', '.join(q.problems)}" for q in qualities if q.problems)
        raise InvalidInputError(f"{record.source}: too few usable leads to read ({found})", code="unreadable_ecg")
    return qualities
