"""NEWS2 against every band of the RCP's Chart 1, its clinical-risk thresholds (Chart 3) and responses (Chart 4);
qSOFA against its three criteria and threshold. The RCP report gives no worked patient; the chart's bands are the
test. See the module for how the chart was read."""

from __future__ import annotations

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.risk import get_equation

NEWS2 = get_equation("news2")
NORMAL = {"respiratory_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 120, "heart_rate": 70,
          "consciousness": "alert", "temperature": 37.0}  # fmt: skip


def score(**changes: object) -> int:
    return int(NEWS2.evaluate(NORMAL | changes).score[0])


@pytest.mark.parametrize(("field", "table"), [
    ("respiratory_rate", [(5, 3), (8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3), (40, 3)]),
    ("spo2", [(85, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]),
    ("systolic_bp", [(70, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)]),
    ("heart_rate", [(35, 3), (40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
                    (131, 3)]),
    ("temperature", [(34.0, 3), (35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
                     (39.1, 2), (41.0, 2)]),  # >= 39.1 scores 2, not 3
])  # fmt: skip
def test_every_band_of_chart_1(field: str, table: list[tuple[float, int]]) -> None:
    for value, points in table:
        assert score(**{field: value}) == points, (field, value)


def test_consciousness_and_oxygen() -> None:
    assert score(on_oxygen=True) == 2
    for level in ("confusion", "voice", "pain", "unresponsive"):
        assert score(consciousness=level) == 3


@pytest.mark.parametrize(("spo2", "on_oxygen", "points"), [
    (80, False, 3), (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1), (88, False, 0),
    (92, False, 0), (93, False, 0), (97, False, 0),  # >= 93 on air scores 0
    (88, True, 0), (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3),
    (100, True, 3),
])  # fmt: skip
def test_spo2_scale_2_for_a_documented_88_to_92_target(spo2: float, on_oxygen: bool, points: int) -> None:
    oxygen = 2 if on_oxygen else 0  # the "air or oxygen?" row counts on both scales
    assert score(spo2=spo2, on_oxygen=on_oxygen, spo2_scale_2=True) == points + oxygen
    assert score(spo2=spo2, on_oxygen=on_oxygen) == (0 if spo2 >= 96 else 1 if spo2 >= 94 else 2 if spo2 >= 92
                                                     else 3) + oxygen  # scale 1 unless documented  # fmt: skip


def test_values_between_the_charts_bands_fall_in_the_band_whose_limit_they_do_not_exceed() -> None:
    assert score(temperature=35.05) == 1 and score(temperature=38.04) == 1 and score(temperature=39.01) == 2
    assert score(respiratory_rate=20.5) == 2 and score(heart_rate=90.5) == 1


@pytest.mark.parametrize(("changes", "total", "band", "risk"), [
    ({}, 0, "low", "low: continue routine monitoring, at least 12-hourly"),
    ({"heart_rate": 95, "temperature": 38.5}, 2, "low", "low: a registered nurse assesses"),
    ({"respiratory_rate": 26}, 3, "intermediate", "low-medium (a single parameter scores 3)"),  # red score
    ({"respiratory_rate": 22, "heart_rate": 115, "temperature": 38.5}, 5, "high", "medium: urgent response"),
    ({"respiratory_rate": 26, "spo2": 91, "heart_rate": 115}, 8, "very_high", "high: emergency response"),
])  # fmt: skip
def test_clinical_risk_thresholds_and_responses(changes: dict, total: int, band: str, risk: str) -> None:
    output = NEWS2.evaluate(NORMAL | changes)
    assert output.score[0] == total and output.band[0] == band and output.category[0].startswith(risk)


def test_the_nhs_digital_mr_smith_scenario() -> None:
    """NHS Digital's FHIR-NEWS2 guide, "Mr Smith": RR 21, SpO2 93 % on air, SBP 120, pulse 95, alert, 37.5 °C. The
    guide's own total could not be read; from Chart 1: 2 + 2 + 0 + 0 + 1 + 0 + 0 = 5, medium."""
    output = NEWS2.evaluate({"respiratory_rate": 21, "spo2": 93, "on_oxygen": False, "systolic_bp": 120,
                             "heart_rate": 95, "consciousness": "alert", "temperature": 37.5})  # fmt: skip
    assert output.score[0] == 5 and output.category[0].startswith("medium")
    np.testing.assert_array_equal(sorted(output.contributions), sorted(f for f in NEWS2.field_names()
                                                                       if f != "spo2_scale_2"))


def test_impossible_vital_signs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="spo2 is impossible"):
        score(spo2=130)
    with pytest.raises(InvalidInputError, match="consciousness is 'sleepy'"):
        score(consciousness="sleepy")


@pytest.mark.parametrize(("rr", "sbp", "altered", "points"), [
    (21, 101, False, 0), (22, 101, False, 1), (21, 100, False, 1), (21, 101, True, 1), (22, 100, False, 2),
    (30, 80, True, 3),
])  # fmt: skip
def test_qsofa_criteria_and_threshold(rr: float, sbp: float, altered: bool, points: int) -> None:
    output = get_equation("qsofa").evaluate({"respiratory_rate": rr, "systolic_bp": sbp, "altered_mentation": altered})
    assert output.score[0] == points
    assert output.category[0] == ("positive (2 or more criteria)" if points >= 2 else "negative")


@pytest.mark.parametrize("name", ["news2", "qsofa"])
def test_bands_are_risk_bands_for_cohort_files(name: str, tmp_path) -> None:  # noqa: ANN001
    import pandas as pd

    from cds.pipelines.risk.cohort_file import score_file

    rows = pd.DataFrame([NORMAL | {"altered_mentation": "no"}, NORMAL | {"respiratory_rate": 30, "systolic_bp": 95,
                                                                        "altered_mentation": "yes"}])  # fmt: skip
    rows.to_csv(tmp_path / "in.csv", index=False)
    summary = score_file(get_equation(name), tmp_path / "in.csv", tmp_path / "out.csv")
    scored = pd.read_csv(tmp_path / "out.csv")
    assert summary.scored == 2 and scored["band"].tolist()[0] == "low" and scored["band"].tolist()[1] != "low"
