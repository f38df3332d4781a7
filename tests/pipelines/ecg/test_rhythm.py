"""The rule-based rhythm on held-out generated ECGs (seeds no training split uses): each rhythm recognised,
sinus rhythms seldom called fibrillation or flutter, and too few beats left undetermined."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cds.pipelines.ecg.measurements import measure
from cds.pipelines.ecg.quality import record_quality
from cds.pipelines.ecg.record import EcgRecord
from cds.pipelines.ecg.rhythm import classify_rhythm
from cds.results.ecg import RHYTHMS
from training.data.ecg_signals import generate_ecg

RECORDS_PER_RHYTHM = 12


@pytest.fixture(scope="module")
def calls() -> list[tuple[str, str]]:
    """(truth, rules' call) for held-out records, rhythms in turn (seeds ``800_000 + i``)."""
    out = []
    for index in range(RECORDS_PER_RHYTHM * len(RHYTHMS)):
        ecg = generate_ecg(np.random.default_rng(800_000 + index), RHYTHMS[index % len(RHYTHMS)])
        record = EcgRecord(ecg.signals, ecg.sampling_hz, "held out")
        out.append((ecg.truth.rhythm, classify_rhythm(measure(record, record_quality(record)), ecg.sampling_hz).label))
    return out


# Measured on 240 such records (seeds 800000-800239): sensitivity 0.97 for sinus rhythm (one of 40 called flutter: a
# PR of 110 ms left its P wave unfound), 1.0 for bradycardia and fibrillation, 0.93 for frequent ectopy, 0.5 for
# flutter (15 of 40 at 2:1 left undetermined, 5 with variable conduction called fibrillation) and 0.4 for
# tachycardia (the rest undetermined: the P wave lies on the T wave).
MINIMUM_SENSITIVITY = {"sinus_rhythm": 0.9, "sinus_bradycardia": 0.9, "atrial_fibrillation": 0.9,
                       "frequent_ectopy": 0.75, "atrial_flutter": 0.3, "sinus_tachycardia": 0.2}  # fmt: skip


def test_each_rhythm_is_recognised(calls: list[tuple[str, str]]) -> None:
    for rhythm, least in MINIMUM_SENSITIVITY.items():
        mine = [call for truth, call in calls if truth == rhythm]
        assert mine and sum(call == rhythm for call in mine) / len(mine) >= least, (rhythm, Counter(mine))


def test_sinus_rhythms_are_seldom_called_fibrillation_or_flutter(calls: list[tuple[str, str]]) -> None:
    sinus = [call for truth, call in calls if truth.startswith("sinus")]
    wrong = [call for call in sinus if call in ("atrial_fibrillation", "atrial_flutter")]
    assert len(wrong) <= 0.03 * len(sinus), wrong  # measured: 1 of 120 (see above)
    wrong_af = [(truth, call) for truth, call in calls if truth != "atrial_fibrillation"
                and call == "atrial_fibrillation" and truth != "atrial_flutter"]  # fmt: skip
    assert len(wrong_af) <= len(calls) * 0.03, wrong_af


def test_too_few_beats_are_undetermined() -> None:
    ecg = generate_ecg(np.random.default_rng(3), "sinus_bradycardia", sampling_hz=500, duration_s=8)
    record = EcgRecord(ecg.signals[:, :1500], 500.0, "three seconds")  # about two beats at under 60/min
    call = classify_rhythm(measure(record, record_quality(record)), 500.0)
    assert call.label == "undetermined" and "beats" in call.evidence
