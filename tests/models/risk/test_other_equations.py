"""Framingham 2008, FINDRISC, CKD-EPI 2021 + KDIGO, blood-pressure categories against their sources."""

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.risk import RiskBand, get_equation
from cds.models.risk.ckd_epi import a_category, g_category

FRAMINGHAM = get_equation("framingham")
FINDRISC = get_equation("findrisc")
CKD = get_equation("ckd_epi_2021")
BP = get_equation("blood_pressure")


def test_framingham_paper_examples() -> None:
    """D'Agostino 2008: woman 61 (TC 180, HDL 47, untreated SBP 124, smoker) 10.48 % by the continuous
    equation; man 53 (TC 161, HDL 55, treated SBP 125, diabetic) 15.6 %."""
    woman = dict(age=61, sex="female", total_cholesterol=180, hdl_cholesterol=47, systolic_bp=124, bp_treated=0,
                 smoker=1, diabetes=0)  # fmt: skip
    man = dict(age=53, sex="male", total_cholesterol=161, hdl_cholesterol=55, systolic_bp=125, bp_treated=1,
               smoker=0, diabetes=1)  # fmt: skip
    assert round(100 * FRAMINGHAM.evaluate(woman).score[0], 2) == 10.48
    assert round(100 * FRAMINGHAM.evaluate(man).score[0], 1) == 15.6
    assert FRAMINGHAM.evaluate(man).band[0] is RiskBand.INTERMEDIATE


FINDRISC_BASE = dict(age=40, sex="male", bmi=22, waist_cm=85, physically_active=1, daily_vegetables=1, bp_treated=0,
                     high_glucose_history=0, family_history="none")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "points"),
    [({}, 0), ({"age": 45}, 2), ({"age": 54}, 2), ({"age": 55}, 3), ({"age": 65}, 4), ({"bmi": 25}, 1),
     ({"bmi": 30}, 1), ({"bmi": 30.1}, 3), ({"waist_cm": 94}, 3), ({"waist_cm": 103}, 4),
     ({"sex": "female", "waist_cm": 80}, 3), ({"sex": "female", "waist_cm": 89}, 4), ({"physically_active": 0}, 2),
     ({"daily_vegetables": 0}, 1), ({"bp_treated": 1}, 2), ({"high_glucose_history": 1}, 5),
     ({"family_history": "second_degree"}, 3), ({"family_history": "first_degree"}, 5)],
)  # fmt: skip
def test_findrisc_points_follow_the_form(change: dict, points: int) -> None:
    assert FINDRISC.evaluate(FINDRISC_BASE | change).score[0] == points


@pytest.mark.parametrize(("total", "band"), [(6, "low"), (7, "slightly_elevated"), (11, "slightly_elevated"),
                                             (12, "moderate"), (15, "high"), (20, "high"), (21, "very_high")])
def test_findrisc_bands(total: int, band: str) -> None:
    assert FINDRISC.bands(np.array([float(total)]), {})[0].value == band


def test_findrisc_maximum_is_26_and_contributions_are_points() -> None:
    worst = dict(age=70, sex="male", bmi=35, waist_cm=110, physically_active=0, daily_vegetables=0, bp_treated=1,
                 high_glucose_history=1, family_history="first_degree")  # fmt: skip
    output = FINDRISC.evaluate(worst)
    assert output.score[0] == 26 and output.band[0] is RiskBand.VERY_HIGH
    assert sum(v[0] for v in output.contributions.values()) == 26


@pytest.mark.parametrize(
    ("creatinine", "age", "sex", "expected"),
    [(1.2, 55, "male", 71), (1.0, 50, "female", 69), (0.7, 40, "female", 112), (0.9, 40, "male", 111),
     (2.0, 70, "male", 35), (1.5, 65, "female", 38)],
)  # fmt: skip
def test_ckd_epi_2021_against_calculator_values(creatinine: float, age: int, sex: str, expected: int) -> None:
    """NKF calculator: man 55, Scr 1.2 mg/dL -> 71; the others from the NEJM 2021 formula, rounded as calculators do."""
    egfr = CKD.evaluate(dict(age=age, sex=sex, creatinine=creatinine)).score[0]
    assert round(egfr) == expected


def test_ckd_epi_has_no_race_term_and_female_factor_1_012_at_the_knot() -> None:
    female = CKD.evaluate(dict(age=40, sex="female", creatinine=0.7)).score[0]
    assert female == pytest.approx(142 * 0.9938**40 * 1.012)


@pytest.mark.parametrize(("egfr", "category"), [(90, "G1"), (89.9, "G2"), (60, "G2"), (59, "G3a"), (45, "G3a"),
                                                (44, "G3b"), (30, "G3b"), (29, "G4"), (15, "G4"), (14.9, "G5")])
def test_kdigo_g_categories(egfr: float, category: str) -> None:
    assert g_category(egfr) == category


def test_kdigo_heat_map() -> None:
    assert (a_category(29.9), a_category(30), a_category(300), a_category(301)) == ("A1", "A2", "A2", "A3")
    rows = dict(age=[50, 50, 70, 50], sex="male", creatinine=[1.0, 1.0, 1.9, 1.0], uacr=[10, 45, 10, float("nan")])
    output = CKD.evaluate(rows)
    assert output.category.tolist() == ["G1 A1", "G1 A2", "G3b A1", "G1"]
    assert output.band.tolist() == [RiskBand.LOW, RiskBand.MODERATE, RiskBand.HIGH, None]


@pytest.mark.parametrize(
    ("sbp", "dbp", "label"),
    [(119, 79, "normal; china:normal"), (125, 79, "elevated; china:high_normal"),
     (130, 70, "stage_1; china:high_normal"), (118, 85, "stage_1; china:high_normal"),
     (145, 85, "stage_2; china:grade_1 isolated_systolic"), (150, 95, "stage_2; china:grade_1"),
     (165, 95, "stage_2; china:grade_2"), (150, 112, "stage_2; china:grade_3"),
     (185, 80, "stage_2; china:grade_3 isolated_systolic")],
)  # fmt: skip
def test_blood_pressure_categories(sbp: float, dbp: float, label: str) -> None:
    assert BP.evaluate(dict(systolic_bp=sbp, diastolic_bp=dbp)).category[0] == label


def test_unknown_equation_lists_known() -> None:
    with pytest.raises(LookupError, match="available: blood_pressure, cdrs, ckd_epi_2021, findrisc, framingham, news2, pce, prev"):
        get_equation("qrisk3")


def test_row_errors_mode_keeps_every_row() -> None:
    output = CKD.evaluate(dict(age=[50, 50, 10], sex=["male", "x", "male"], creatinine=[1.0, 1.0, 1.0]),
                          row_errors=True)  # fmt: skip
    assert output.errors[0] == "" and "sex is 'x'" in output.errors[1] and "age is impossible (10)" in output.errors[2]
    assert not np.isnan(output.score[0]) and np.isnan(output.score[1:]).all()
    with pytest.raises(InvalidInputError):
        CKD.evaluate(dict(age=[50, 10], sex="male", creatinine=1.0))
