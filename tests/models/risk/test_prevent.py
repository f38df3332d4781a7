"""PREVENT base model against the expected values published with preventr and PyPREVENT."""

import numpy as np
import pytest

from cds.models.risk import get_equation

CASE_1 = dict(age=50, total_cholesterol=200, hdl_cholesterol=45, systolic_bp=160, bp_treated=1, statin=0, diabetes=1,
              smoker=0, egfr=90, bmi=35)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "sex", "expected"),
    [({}, "female", (14.7, 9.2, 8.1)), ({}, "male", (16.3, 10.2, 10.6)),
     ({"bp_treated": 0}, "female", (12.2, 7.9, 6.7)), ({"bp_treated": 0}, "male", (13.6, 8.9, 8.7)),
     ({"diabetes": 0}, "female", (5.9, 3.7, 2.5)), ({"diabetes": 0}, "male", (7.5, 4.8, 3.9))],
)  # fmt: skip
def test_preventr_published_values(change: dict, sex: str, expected: tuple[float, float, float]) -> None:
    """preventr README/tests and snapshot tests (rounded to 0.1 %)."""
    patient = CASE_1 | change | {"sex": sex}
    got = tuple(round(100 * get_equation(f"prevent_{o}").evaluate(patient).score[0], 1) for o in ("cvd", "ascvd", "hf"))
    assert got == expected


def test_pyprevent_full_precision_values() -> None:
    """PyPREVENT tests: woman 40, TC 200, HDL 50, SBP 120 treated, statin, diabetic smoker, eGFR 70."""
    patient = dict(age=40, sex="female", total_cholesterol=200, hdl_cholesterol=50, systolic_bp=120, bp_treated=1,
                   statin=1, diabetes=1, smoker=1, egfr=70, bmi=25)  # fmt: skip
    assert 100 * get_equation("prevent_cvd").evaluate(patient).score[0] == pytest.approx(7.899575424594809, abs=1e-9)
    assert 100 * get_equation("prevent_ascvd").evaluate(patient).score[0] == pytest.approx(4.723678963112583, abs=1e-9)


def test_heart_failure_needs_bmi_not_lipids_and_ranges_apply() -> None:
    hf = get_equation("prevent_hf")
    assert "bmi" in hf.field_names() and "total_cholesterol" not in hf.field_names()
    assert "bmi" not in get_equation("prevent_cvd").field_names()
    output = hf.evaluate(CASE_1 | {"sex": "male", "age": [29, 50], "bmi": [35, 41]})
    assert output.out_of_range == [("age",), ("bmi",)]


# preventr 0.12.0 tests/testthat/test-estimate_risk.R: the Table S25 person (CASE_1) with each add-on, probability to
# 3 decimals, (10-year CVD, ASCVD, HF, 30-year CVD, ASCVD, HF); SDI decile 3 is preventr's ZIP 14738.
PREVENTR_ADD_ONS = [
    ({}, "female", "base model", (0.147, 0.092, 0.081, 0.530, 0.354, 0.390)),
    ({}, "male", "base model", (0.163, 0.102, 0.106, 0.514, 0.349, 0.424)),
    ({"hba1c": 9.2}, "female", "HbA1c model", (0.165, 0.103, 0.107, 0.541, 0.356, 0.449)),
    ({"hba1c": 9.2}, "male", "HbA1c model", (0.187, 0.112, 0.130, 0.524, 0.340, 0.457)),
    ({"uacr": 92}, "female", "UACR model", (0.181, 0.111, 0.105, 0.565, 0.381, 0.437)),
    ({"uacr": 92}, "male", "UACR model", (0.195, 0.123, 0.130, 0.535, 0.368, 0.448)),
    ({"sdi_decile": 3}, "female", "SDI model", (0.127, 0.080, 0.070, 0.485, 0.322, 0.358)),
    ({"sdi_decile": 3}, "male", "SDI model", (0.143, 0.088, 0.089, 0.480, 0.317, 0.384)),
    ({"hba1c": 9.2, "uacr": 92, "sdi_decile": 3}, "female", "full model", (0.174, 0.105, 0.114, 0.534, 0.348, 0.443)),
    ({"hba1c": 9.2, "uacr": 92, "sdi_decile": 3}, "male", "full model", (0.191, 0.112, 0.131, 0.513, 0.326, 0.438)),
]  # fmt: skip


def _six(patient: dict) -> tuple[float, ...]:
    names = [f"prevent_{o}{h}" for h in ("", "_30y") for o in ("cvd", "ascvd", "hf")]
    return tuple(float(get_equation(n).evaluate(patient).score[0]) for n in names)


def _round_half_up(value: float, places: int) -> float:
    scale = 10**places
    return float(int(value * scale + 0.5 + 1e-9)) / scale


@pytest.mark.parametrize(("add_ons", "sex", "model", "expected"), PREVENTR_ADD_ONS)
def test_every_model_and_horizon_reproduces_preventr(add_ons: dict, sex: str, model: str,
                                                     expected: tuple[float, ...]) -> None:
    patient = CASE_1 | add_ons | {"sex": sex}
    assert tuple(_round_half_up(r, 3) for r in _six(patient)) == expected
    assert get_equation("prevent_cvd").evaluate(patient).category[0] == model


@pytest.mark.parametrize(("case", "expected"), [
    # preventr tests/testthat/_snaps/estimate_risk.md, percent to 0.1 (female, male) per output
    ({"uacr": 40}, ((16.0, 17.2), (9.9, 11.0), (8.9, 11.0), (54.2, 51.4), (36.3, 35.5), (40.7, 42.0))),
    ({"hba1c": 7.5}, ((13.6, 15.5), (8.3, 9.4), (8.1, 10.1), (50.1, 49.1), (32.2, 31.7), (38.9, 41.1))),
    ({"sdi_decile": 5}, ((14.4, 15.4), (9.2, 9.4), (8.0, 9.9), (51.4, 48.7), (34.8, 32.2), (38.0, 40.0))),
    ({"sdi_decile": 10}, ((15.7, 18.2), (10.0, 11.4), (8.9, 12.3), (53.5, 53.0), (36.7, 36.1), (40.4, 44.7))),
    ({"age": 75, "statin": 1, "diabetes": 0, "smoker": 1, "hba1c": 7.5, "uacr": 40, "sdi_decile": 10},
     ((36.1, 39.4), (22.7, 26.3), (29.5, 33.9), (49.5, 44.9), (32.1, 30.1), (41.2, 37.9))),
])  # fmt: skip
def test_preventr_snapshots(case: dict, expected: tuple[tuple[float, float], ...]) -> None:
    """The last case runs the full model without diabetes (HbA1c's no-diabetes term), a smoker on a statin, age 75;
    preventr reports 30-year risks above 59 years with a warning, the engine does not extrapolate them."""
    women, men = (_six(CASE_1 | case | {"sex": sex}) for sex in ("female", "male"))
    for i, (female, male) in enumerate(expected):
        if i >= 3 and case.get("age", 50) > 59:
            assert np.isnan(women[i]) and np.isnan(men[i])  # outside 30-59: not scored
            continue
        assert (_round_half_up(100 * women[i], 1), _round_half_up(100 * men[i], 1)) == (female, male), i


def test_full_model_with_the_missing_indicator_and_the_uacr_floor() -> None:
    full = get_equation("prevent_cvd").evaluate(CASE_1 | {"sex": "female", "uacr": 40, "hba1c": 7.5})
    assert full.category[0] == "full model"  # two add-ons: full, SDI's missing indicator set
    below = get_equation("prevent_cvd").evaluate(CASE_1 | {"sex": "female", "uacr": [0.0, 0.1]})
    assert below.score[0] == below.score[1]  # ratios under 0.1 mg/g are taken as 0.1, as the AHA package does
