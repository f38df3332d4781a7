"""Signal quality per lead: each fault put into one lead of a simulated ECG is found in that lead alone; a real
recording (pydicom's) and clean simulations have none; an ECG with too few usable leads is refused."""

from __future__ import annotations

from pathlib import Path

import neurokit2 as nk
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from cds.errors import InvalidInputError
from cds.pipelines.ecg.quality import lead_quality, record_quality
from cds.pipelines.ecg.readers import read_ecg
from cds.pipelines.ecg.record import STANDARD_LEADS, standardise

FS = 500
SECONDS = np.arange(10 * FS) / FS


def _simulated(seed: int) -> dict[str, np.ndarray]:
    frame = nk.ecg_simulate(duration=10, sampling_rate=FS, method="multileads", random_state=seed,
                            heart_rate=55 + 10 * seed)  # fmt: skip
    return {lead: frame[lead].to_numpy() for lead in STANDARD_LEADS}


def _faulty(signal: np.ndarray, fault: str, rng: np.random.Generator) -> np.ndarray:
    if fault == "flat":
        return np.full_like(signal, 0.002) + rng.normal(0, 0.002, len(signal))
    if fault == "lead_off":
        off = signal.copy()
        off[len(off) // 4:] = 5.0  # the cart's lead-off level for three quarters of the record
        return off
    if fault == "saturated":  # the amplifier's rails cut the tallest tenth of the swings
        middle = float(np.median(signal))
        rail = float(np.percentile(np.abs(signal - middle), 90))
        return np.clip(signal, middle - rail, middle + rail)
    if fault == "powerline":
        return signal + 0.4 * np.sin(2 * np.pi * 50 * SECONDS)
    if fault == "baseline_wander":
        return signal + 1.2 * np.sin(2 * np.pi * 0.25 * SECONDS)
    return signal + rng.normal(0, 0.5, len(signal))  # noisy: muscle artefact


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_clean_simulations_and_a_real_recording_have_no_problems(seed: int) -> None:
    record = standardise(_simulated(seed), FS, "simulated")
    assert [q.problems for q in record_quality(record)] == [()] * 12
    real = read_ecg(Path(get_testdata_file("waveform_ecg.dcm", download=False)))
    assert all(q.usable for q in record_quality(real))


@pytest.mark.parametrize("fault", ["flat", "lead_off", "saturated", "powerline", "baseline_wander", "noisy"])
@pytest.mark.parametrize("lead", ["V2", "V5"])
def test_a_fault_in_one_lead_is_flagged_there_alone(fault: str, lead: str) -> None:
    rng = np.random.default_rng(0)
    leads = _simulated(2)
    leads[lead] = _faulty(leads[lead], fault, rng)
    qualities = record_quality(standardise(leads, FS, "simulated"))
    flagged = {q.lead: q.problems for q in qualities if q.problems}
    assert list(flagged) == [lead] and fault in flagged[lead]


def test_mains_at_60_hz_is_found_too() -> None:
    signal = _simulated(1)["II"] + 0.4 * np.sin(2 * np.pi * 60 * SECONDS)
    assert "powerline" in lead_quality(signal, FS, "II").problems


def test_an_ecg_with_too_few_usable_leads_is_refused_naming_each_leads_problem() -> None:
    leads = {lead: np.zeros(10 * FS) for lead in STANDARD_LEADS}
    leads["V3"] = _simulated(1)["V3"]
    with pytest.raises(InvalidInputError) as refused:
        record_quality(standardise(leads, FS, "disconnected"))
    assert refused.value.code == "unreadable_ecg"
    assert "I: flat" in refused.value.message and "V3" not in refused.value.message.split("(", 1)[1]
