"""Pooled Cohort Equations against the guideline's worked example and the reference SMART app's test cases."""

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.risk import RiskBand
from cds.models.risk.pce import PooledCohortEquations

PCE = PooledCohortEquations()
EXAMPLE = dict(age=55, total_cholesterol=213, hdl_cholesterol=50, systolic_bp=120, bp_treated=0, smoker=0, diabetes=0)


@pytest.mark.parametrize(
    ("sex", "race", "percent"),
    [("female", "white", 2.1), ("female", "african_american", 3.0), ("male", "white", 5.4),
     ("male", "african_american", 6.1)],
)  # fmt: skip
def test_guideline_worked_example(sex: str, race: str, percent: float) -> None:
    """Goff 2013 Appendix 7: 2.1 %, 3.0 %, 5.4 % (printed 5.3 % from rounded sums), 6.1 %."""
    risk = PCE.evaluate(EXAMPLE | {"sex": sex, "race": race}).score[0]
    assert round(100 * risk, 1) == percent


@pytest.mark.parametrize(
    ("sex", "tc", "hdl", "race", "percent"),
    [("male", 150, 40, "white", 12.2), ("male", 150, 40, "african_american", 24.9),
     ("female", 141, 34, "white", 10.3), ("female", 141, 34, "african_american", 26.8)],
)  # fmt: skip
def test_reference_implementation_cases(sex: str, tc: float, hdl: float, race: str, percent: float) -> None:
    """cerner/ascvd-risk-calculator tests: age 46, SBP 140 treated, smoker, diabetic."""
    patient = dict(age=46, sex=sex, race=race, total_cholesterol=tc, hdl_cholesterol=hdl, systolic_bp=140,
                   bp_treated=1, smoker=1, diabetes=1)  # fmt: skip
    assert round(100 * PCE.evaluate(patient).score[0], 1) == percent


def test_other_race_uses_white_equations() -> None:
    white = PCE.evaluate(EXAMPLE | {"sex": "male", "race": "white"}).score
    other = PCE.evaluate(EXAMPLE | {"sex": "male", "race": "other"}).score
    np.testing.assert_array_equal(white, other)


def test_vectorised_rows_match_single_rows() -> None:
    rows = [EXAMPLE | {"sex": s, "race": r} for s in ("female", "male") for r in ("white", "african_american")]
    columns = {k: [row[k] for row in rows] for k in rows[0]}
    batch = PCE.evaluate(columns).score
    singles = [PCE.evaluate(row).score[0] for row in rows]
    np.testing.assert_allclose(batch, singles, rtol=1e-12)


def test_age_outside_validated_range_is_out_of_range_not_extrapolated() -> None:
    output = PCE.evaluate(EXAMPLE | {"sex": "male", "race": "white", "age": [39, 55, 80]})
    assert output.out_of_range == [("age",), (), ("age",)]
    assert np.isnan(output.score[0]) and np.isnan(output.score[2]) and not np.isnan(output.score[1])
    assert output.band.tolist() == [None, RiskBand.BORDERLINE, None]


def test_several_fields_out_of_range_are_all_named() -> None:
    output = PCE.evaluate(EXAMPLE | {"sex": "male", "race": "white", "total_cholesterol": 340, "systolic_bp": 210})
    assert output.out_of_range == [("total_cholesterol", "systolic_bp")]


@pytest.mark.parametrize(
    ("change", "fragment"),
    [({"systolic_bp": 900}, "systolic_bp is impossible (900); allowed 50–300 mmHg"),
     ({"hdl_cholesterol": -5}, "hdl_cholesterol is impossible (-5)"),
     ({"age": float("nan")}, "age is missing"),
     ({"smoker": 2}, "smoker is 2; allowed: true/false"),
     ({"sex": "unknown"}, "sex is 'unknown'; allowed: female, male")],
)  # fmt: skip
def test_impossible_values_are_refused_with_the_field_named(change: dict, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        PCE.evaluate(EXAMPLE | {"sex": "male", "race": "white"} | change)
    assert fragment in err.value.message
    assert err.value.code in ("impossible_value", "missing_fields")


def test_missing_fields_are_listed_together() -> None:
    with pytest.raises(InvalidInputError) as err:
        PCE.evaluate({"age": 50, "sex": "male"})
    assert err.value.code == "missing_fields"
    for name in ("race", "total_cholesterol", "hdl_cholesterol", "systolic_bp", "bp_treated", "smoker", "diabetes"):
        assert name in err.value.message


def test_contributions_are_counterfactual_changes() -> None:
    patient = EXAMPLE | {"sex": "male", "race": "white", "smoker": 1}
    output = PCE.evaluate(patient)
    without_smoking = PCE.evaluate(patient | {"smoker": 0}).score[0]
    assert output.contributions["smoker"][0] == pytest.approx(output.score[0] - without_smoking)
    assert output.contributions["hdl_cholesterol"][0] == 0.0  # HDL 50 is the reference value
    assert "age" not in output.contributions  # not modifiable
