"""The flags: ST elevation by the Fourth Universal Definition's cut-points per lead, sex and age, in contiguous
leads only; QTc by sex-specific limits; measured end to end on generated ECGs with ST elevation by lead group."""

from __future__ import annotations

import numpy as np
import pytest

from cds.pipelines.ecg.flags import contiguous_pairs, ecg_flags, qtc_flag, st_cut_point_mv, st_elevation_flag
from cds.pipelines.ecg.measurements import measure
from cds.pipelines.ecg.quality import LeadQuality, record_quality
from cds.pipelines.ecg.record import STANDARD_LEADS, EcgRecord
from cds.pipelines.ecg.rhythm import classify_rhythm
from cds.results.ecg import Measurements, RhythmCall, Severity
from training.data.ecg_signals import generate_ecg

# The 4th UDMI's worked cut-points: >= 1 mm except V2-V3: 2 mm men >= 40, 2.5 mm men < 40, 1.5 mm women.
CUT_POINTS = [("II", "male", 55, 0.1), ("V4", "female", 30, 0.1), ("V2", "male", 40, 0.2), ("V3", "male", 39, 0.25),
              ("V2", "female", 25, 0.15), ("V3", "female", 70, 0.15), ("V2", None, None, 0.15),
              ("V3", "male", None, 0.15)]  # fmt: skip


@pytest.mark.parametrize(("lead", "sex", "age", "cut"), CUT_POINTS)
def test_cut_points_follow_the_fourth_universal_definition(lead: str, sex: str | None, age: float | None,
                                                           cut: float) -> None:  # fmt: skip
    assert st_cut_point_mv(lead, sex, age) == pytest.approx(cut)


def _st(levels: dict[str, float], qrs_ms: float = 90.0) -> Measurements:
    return Measurements(st_j_mv={lead: levels.get(lead, 0.0) for lead in STANDARD_LEADS}, qrs_ms=qrs_ms)


def test_two_contiguous_leads_raise_a_critical_flag_naming_them() -> None:
    flag = st_elevation_flag(_st({"II": 0.15, "III": 0.2, "aVF": 0.12}), sex="male", age_years=60)
    assert flag is not None and flag.severity is Severity.CRITICAL and flag.code == "possible_stemi"
    assert flag.leads == ("II", "III", "aVF") and "urgent review" in flag.text.lower()


def test_one_lead_or_two_leads_that_are_not_contiguous_raise_nothing() -> None:
    assert st_elevation_flag(_st({"II": 0.3}), sex="male", age_years=60) is None
    assert st_elevation_flag(_st({"II": 0.3, "V2": 0.4}), sex="male", age_years=60) is None  # different groups
    assert st_elevation_flag(_st({"V1": 0.3, "V3": 0.4}), sex="male", age_years=60) is None  # not neighbours
    assert ("V1", "V2") in contiguous_pairs() and ("I", "aVL") in contiguous_pairs()


def test_v2_v3_depend_on_sex_and_age() -> None:
    anterior = _st({"V2": 0.18, "V3": 0.18})
    assert st_elevation_flag(anterior, sex="female", age_years=35) is not None  # >= 1.5 mm
    assert st_elevation_flag(anterior, sex="male", age_years=50) is None  # < 2 mm
    unknown = st_elevation_flag(anterior, sex=None, age_years=None)
    assert unknown is not None and "unknown" in unknown.text  # the lowest cut-point, and it says so


def test_a_wide_qrs_is_said_to_make_st_criteria_unreliable() -> None:
    flag = st_elevation_flag(_st({"V4": 0.2, "V5": 0.2}, qrs_ms=150), sex="male", age_years=60)
    assert flag is not None and "unreliable" in flag.text


@pytest.mark.parametrize(("sex", "qtc", "flagged"), [("male", 449, False), ("male", 450, True),
                                                      ("female", 455, False), ("female", 460, True),
                                                      (None, 452, True)])  # fmt: skip
def test_qtc_limits_are_sex_specific(sex: str | None, qtc: float, flagged: bool) -> None:
    flag = qtc_flag(Measurements(qtc_fridericia_ms=qtc, qtc_bazett_ms=qtc + 10), sex=sex)
    assert (flag is not None) is flagged
    if flag is not None:
        assert flag.severity is Severity.WARNING and f"{qtc:.0f} ms" in flag.text


def test_flags_come_critical_first() -> None:
    m = Measurements(st_j_mv={"II": 0.2, "aVF": 0.2}, qtc_fridericia_ms=480, qtc_bazett_ms=500)
    rhythm = RhythmCall(label="atrial_fibrillation", evidence="irregular")
    quality = [LeadQuality("V1", ("flat",))]
    flags = ecg_flags(m, rhythm, quality, sex="male", age_years=60)
    assert [f.code for f in flags] == ["possible_stemi", "qtc_prolonged", "atrial_fibrillation", "leads_not_measured"]


GROUPS = {"inferior": ("II", "III", "aVF"), "anterior": ("V2", "V3", "V4"), "lateral": ("I", "aVL", "V5", "V6")}


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_constructed_st_elevation_is_found_in_its_lead_group(group: str) -> None:
    """Generated ECGs with 0.3 mV ST elevation in one group: flagged with those leads; without it: not flagged."""
    for seed in range(4):
        rng = np.random.default_rng([700_000, seed, sorted(GROUPS).index(group)])
        elevated = generate_ecg(rng, "sinus_rhythm", st_mv=dict.fromkeys(GROUPS[group], 0.3))
        plain = generate_ecg(np.random.default_rng([700_001, seed]), "sinus_rhythm")
        found = []
        for ecg in (elevated, plain):
            record = EcgRecord(ecg.signals, ecg.sampling_hz, "generated")
            quality = record_quality(record)
            beats = measure(record, quality)
            rhythm = classify_rhythm(beats, ecg.sampling_hz)
            found.append(next((f for f in ecg_flags(beats.measurements, rhythm, quality, sex="male", age_years=60)
                               if f.code == "possible_stemi"), None))  # fmt: skip
        assert found[0] is not None, (group, seed)
        assert set(found[0].leads) <= set(GROUPS[group]) and len(found[0].leads) >= 2, (group, seed, found[0].leads)
        assert found[1] is None, (seed, found[1])
