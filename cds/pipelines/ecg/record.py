"""A 12-lead ECG as the engine reads it: leads named and ordered one way, in millivolts, checked against a contract.

Whatever the source (DICOM waveform, WFDB, HL7 aECG, CSV), a record ends as :class:`EcgRecord`: the twelve leads
in the order I, II, III, aVR, aVL, aVF, V1–V6, float32 millivolts, one sampling rate. Leads the source names
differently ("Lead I (Einthoven)", "MDC_ECG_LEAD_AVR", "avr") are matched to these names; when only the eight
independent leads are stored (I, II, V1–V6), III, aVR, aVL and aVF are derived by Einthoven's and Goldberger's
relations (III = II − I, aVR = −(I + II)/2, aVL = I − II/2, aVF = II − I/2) and listed as derived.

:class:`EcgContract` is what a model accepts (sampling rates, duration, the twelve leads); :func:`check_contract`
refuses the rest with a reason code, never resampling or cutting silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cds.errors import InvalidInputError

STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
INDEPENDENT_LEADS = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


@dataclass(frozen=True)
class EcgRecord:
    """Twelve leads in :data:`STANDARD_LEADS` order.

    Attributes:
        signals: float32 [12, samples], millivolts.
        sampling_hz: Samples per second.
        source: Where it came from (a file name or URI), for messages.
        derived: Leads computed from others rather than recorded.
        metadata: What the source says of the recording (acquisition attributes, the patient's sex and age, never
            a name or an identifier), as strings.
        format: The reader that read it (``dicom``, ``wfdb``, ``aecg``, ``csv``).
    """

    signals: np.ndarray
    sampling_hz: float
    source: str
    derived: tuple[str, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    format: str = ""

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        return float(self.signals.shape[1] / self.sampling_hz)

    def lead(self, name: str) -> np.ndarray:
        """One lead's samples (mV)."""
        signal: np.ndarray = self.signals[STANDARD_LEADS.index(name)]
        return signal


@dataclass(frozen=True)
class EcgContract:
    """What an ECG model accepts.

    Attributes:
        sampling_hz: Accepted sampling rates (inclusive range).
        min_s: Shortest recording.
        max_s: Longest recording (a resting ECG is about 10 s; a Holter day is refused, not read).
    """

    sampling_hz: tuple[float, float] = (250.0, 2000.0)
    min_s: float = 8.0
    max_s: float = 60.0


RESTING_12_LEAD = EcgContract()

_ALIASES = {"avr": "aVR", "avl": "aVL", "avf": "aVF", "-avr": "-aVR"}


def lead_name(label: str) -> str | None:
    """The standard name of a lead label from any source, or ``None`` when it names no standard lead.

    ``Lead I (Einthoven)`` → I, ``MDC_ECG_LEAD_AVR`` → aVR, ``V1`` → V1, ``lead ii`` → II.
    """
    text = label.strip()
    text = re.sub(r"^(mdc_ecg_lead_|lead\s+)", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s*\(.*\)$", "", text).strip()
    lowered = text.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered] if not lowered.startswith("-") else None
    upper = text.upper()
    if upper in ("I", "II", "III"):
        return upper
    if re.fullmatch(r"V[1-6]", upper):
        return upper
    return None


def standardise(leads: Mapping[str, np.ndarray], sampling_hz: float, source: str, *,
                metadata: Mapping[str, str] | None = None) -> EcgRecord:  # fmt: skip
    """The record in standard order, deriving the four limb leads when only the independent eight are given.

    Args:
        leads: Samples (mV) by standard lead name, all of one length.
        sampling_hz: Samples per second.
        source: Where it came from, for messages.
        metadata: What the source says of the recording.

    Raises:
        InvalidInputError: ``wrong_lead_set`` naming the missing leads (a 3-lead Holter, a rhythm strip);
            ``invalid_ecg`` for leads of different lengths or no samples.
    """
    lengths = {len(values) for values in leads.values()}
    if len(lengths) > 1:
        raise InvalidInputError(f"{source}: leads of different lengths {sorted(lengths)}", code="invalid_ecg")
    if not lengths or lengths == {0}:
        raise InvalidInputError(f"{source}: no samples", code="invalid_ecg")
    missing = [name for name in INDEPENDENT_LEADS if name not in leads]
    if missing:
        raise InvalidInputError(f"{source}: a 12-lead ECG needs {', '.join(INDEPENDENT_LEADS)}; missing "
                                f"{', '.join(missing)} (found {', '.join(leads) or 'none'})",
                                code="wrong_lead_set")  # fmt: skip
    lead_i, lead_ii = (np.asarray(leads[name], dtype=np.float64) for name in ("I", "II"))
    relations = {"III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2, "aVL": lead_i - lead_ii / 2,
                 "aVF": lead_ii - lead_i / 2}  # fmt: skip
    derived = tuple(name for name in relations if name not in leads)
    rows = [np.asarray(leads[name], dtype=np.float64) if name in leads else relations[name] for name in STANDARD_LEADS]
    signals = np.asarray(rows, dtype=np.float32)
    if not np.isfinite(signals).all():
        raise InvalidInputError(f"{source}: samples that are not numbers", code="invalid_ecg")
    return EcgRecord(signals=signals, sampling_hz=float(sampling_hz), source=source, derived=derived,
                     metadata=dict(metadata or {}))  # fmt: skip


def check_contract(record: EcgRecord, contract: EcgContract = RESTING_12_LEAD) -> None:
    """Refuse a record the model was not made for.

    Raises:
        InvalidInputError: ``wrong_sample_rate``, ``too_short`` or ``too_long``.
    """
    low, high = contract.sampling_hz
    if not low <= record.sampling_hz <= high:
        raise InvalidInputError(f"{record.source}: sampled at {record.sampling_hz:g} Hz; the model takes "
                                f"{low:g}–{high:g} Hz", code="wrong_sample_rate")  # fmt: skip
    if record.duration_s < contract.min_s:
        raise InvalidInputError(f"{record.source}: {record.duration_s:.1f} s long; at least {contract.min_s:g} s "
                                "needed", code="too_short")  # fmt: skip
    if record.duration_s > contract.max_s:
        raise InvalidInputError(f"{record.source}: {record.duration_s:.0f} s long; a resting ECG of at most "
                                f"{contract.max_s:g} s is read (a long-term recording is not)",
                                code="too_long")  # fmt: skip


def to_millivolts(values: np.ndarray, unit: str, source: str) -> np.ndarray:
    """Samples in ``unit`` (mV, µV, uV, V) as millivolts.

    Raises:
        InvalidInputError: ``unsupported_unit``.
    """
    factor = UNIT_TO_MV.get(unit.strip().lower())
    if factor is None:
        raise InvalidInputError(f"{source}: samples in {unit!r}; mV, µV or V expected", code="unsupported_unit")
    converted: np.ndarray = np.asarray(values, dtype=np.float64) * factor
    return converted
