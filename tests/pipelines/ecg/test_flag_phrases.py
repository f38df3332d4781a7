"""Flags, rhythm evidence and warnings as phrases (``cds.results.phrase``): the same facts as the English text, at
the precision it states them, so a reader in another language sees the same leads, values and limits."""

from __future__ import annotations

import numpy as np
import pytest

from cds.pipelines.ecg.flags import ecg_flags, qtc_flag, quality_flag, rhythm_flag, st_elevation_flag
from cds.pipelines.ecg.measurements import measure
from cds.pipelines.ecg.quality import LeadQuality, record_quality
from cds.pipelines.ecg.record import STANDARD_LEADS, EcgRecord
from cds.pipelines.ecg.rhythm import classify_rhythm
from cds.results.ecg import Measurements, RhythmCall
from cds.results.phrase import Phrase, phrase
from training.data.ecg_signals import generate_ecg


def _st(levels: dict[str, float], qrs_ms: float = 90.0) -> Measurements:
    return Measurements(st_j_mv={lead: levels.get(lead, 0.0) for lead in STANDARD_LEADS}, qrs_ms=qrs_ms)


def _codes(phrases: tuple[Phrase, ...]) -> list[str]:
    return [p.code for p in phrases]


def test_st_elevation_names_each_leads_level_as_the_text_does() -> None:
    flag = st_elevation_flag(_st({"II": 0.15, "III": 0.21, "aVF": 0.12}), sex="male", age_years=60)
    assert flag is not None
    assert flag.phrases == (phrase("ecg.st_elevation", levels=("II +1.5 mm", "III +2.1 mm", "aVF +1.2 mm")),
                            phrase("ecg.st_not_new"))  # fmt: skip
    levels = flag.phrases[0].values["levels"]
    assert isinstance(levels, tuple) and all(level in flag.text for level in levels)


def test_unknown_sex_and_a_wide_qrs_add_their_sentences() -> None:
    flag = st_elevation_flag(_st({"V2": 0.18, "V3": 0.18}, qrs_ms=148.6), sex=None, age_years=None)
    assert flag is not None
    assert _codes(flag.phrases) == ["ecg.st_elevation", "ecg.st_lowest_cut_point", "ecg.st_not_new",
                                    "ecg.st_wide_qrs"]  # fmt: skip
    assert flag.phrases[-1].values == {"qrs_ms": 149} and "QRS 149 ms" in flag.text


@pytest.mark.parametrize(("sex", "qtc", "bazett", "codes"), [
    ("male", 455.4, 470.0, ["ecg.qtc_fridericia_bazett", "ecg.qtc_limit_male"]),
    ("female", 512.0, None, ["ecg.qtc_fridericia", "ecg.qtc_limit_female", "ecg.qtc_marked"]),
    (None, 451.0, 460.0, ["ecg.qtc_fridericia_bazett", "ecg.qtc_limit_sex_unknown"]),
])  # fmt: skip
def test_qtc_says_its_values_limit_and_whether_markedly_prolonged(sex: str | None, qtc: float, bazett: float | None,
                                                                  codes: list[str]) -> None:  # fmt: skip
    flag = qtc_flag(Measurements(qtc_fridericia_ms=qtc, qtc_bazett_ms=bazett), sex=sex)
    assert flag is not None and _codes(flag.phrases) == codes
    values = flag.phrases[0].values
    assert values["fridericia"] == round(qtc) and f"Fridericia {round(qtc)} ms" in flag.text
    if bazett is not None:
        assert values["bazett"] == round(bazett) and f"Bazett {round(bazett)} ms" in flag.text
    limit = flag.phrases[1].values["limit"]
    assert limit == (460 if sex == "female" else 450) and f"limit {limit} ms" in flag.text


def test_leads_not_measured_name_each_lead_and_its_problems_as_codes() -> None:
    flag = quality_flag([LeadQuality("I", ()), LeadQuality("V1", ("flat",)), LeadQuality("V5", ("noisy", "powerline"))])
    assert flag is not None
    assert flag.phrases == (phrase("ecg.lead_not_measured", lead="V1", problems=("flat",)),
                            phrase("ecg.lead_not_measured", lead="V5", problems=("noisy", "powerline")))  # fmt: skip


def test_a_rhythm_flag_carries_the_rhythms_evidence() -> None:
    evidence = phrase("ecg.rhythm_irregular", spread=0.31, p_percent=5, rate=112)
    flag = rhythm_flag(RhythmCall(label="atrial_fibrillation", evidence="irregular", evidence_phrase=evidence))
    assert flag is not None and flag.phrases == (evidence,)
    stored = rhythm_flag(RhythmCall(label="atrial_fibrillation", evidence="irregular"))  # a read from before phrases
    assert stored is not None and stored.phrases == () and stored.text == "Atrial fibrillation: irregular."


def test_the_rhythm_evidence_states_the_numbers_of_its_words() -> None:
    for rhythm, seed in (("sinus_rhythm", 11), ("atrial_fibrillation", 12), ("frequent_ectopy", 13)):
        ecg = generate_ecg(np.random.default_rng([810_000, seed]), rhythm)
        record = EcgRecord(ecg.signals, ecg.sampling_hz, "generated")
        call = classify_rhythm(measure(record, record_quality(record)), ecg.sampling_hz)
        said = call.evidence_phrase
        assert said is not None and said.code.startswith("ecg.rhythm_"), call
        assert f"{said.values['rate']}/min" in call.evidence
        if "p_percent" in said.values:
            assert f"P waves before {said.values['p_percent']}% of beats" in call.evidence
        if "spread" in said.values:
            assert f"{said.values['spread']:.2f}" in call.evidence
    short = generate_ecg(np.random.default_rng(3), "sinus_bradycardia", sampling_hz=500, duration_s=8)
    record = EcgRecord(short.signals[:, :1500], 500.0, "three seconds")
    call = classify_rhythm(measure(record, record_quality(record)), 500.0)
    assert call.evidence_phrase is not None and call.evidence_phrase.code == "ecg.rhythm_too_few_beats"
    assert f"{call.evidence_phrase.values['count']} beats found" in call.evidence


def test_every_flag_has_phrases() -> None:
    m = Measurements(st_j_mv={"II": 0.2, "aVF": 0.2}, qtc_fridericia_ms=480, qtc_bazett_ms=500)
    rhythm = RhythmCall(label="atrial_flutter", evidence="regular", evidence_phrase=phrase("ecg.rhythm_regular_without_p",
                        spread=0.02, p_percent=0, rate=75))  # fmt: skip
    flags = ecg_flags(m, rhythm, [LeadQuality("V1", ("flat",))], sex="male", age_years=60)
    assert len(flags) == 4 and all(flag.phrases for flag in flags)
