"""The vectorised engine gives every row what scoring that patient alone gives, in batches of any size and mix.

Batches cross the engine's block size and mix every group (sex, race, PREVENT's add-on models), so the row-by-row
lookups of coefficients, the per-field counterfactuals and the range checks are each compared with the definition.
"""

from __future__ import annotations

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.risk import available_equations, get_equation
from cds.models.risk.base import COUNTERFACTUAL_ROWS
from cds.models.risk.linear import BLOCK_ROWS, STACKED_ROWS

EQUATIONS = ("pce", "prevent_cvd", "prevent_ascvd", "prevent_hf", "prevent_cvd_30y")


def _cohort(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    uacr = rng.uniform(1, 300, n)
    uacr[rng.random(n) < 0.5] = np.nan  # every combination of known add-ons: every PREVENT model is used
    hba1c = rng.uniform(4.5, 10, n)
    hba1c[rng.random(n) < 0.5] = np.nan
    sdi = rng.integers(1, 11, n).astype(float)
    sdi[rng.random(n) < 0.5] = np.nan
    return {
        "age": rng.uniform(30, 85, n),  # some outside each equation's validated ages
        "sex": rng.choice(np.array(["female", "male"]), n),
        "race": rng.choice(np.array(["white", "african_american", "other"]), n),
        "total_cholesterol": rng.uniform(120, 330, n),
        "hdl_cholesterol": rng.uniform(20, 100, n),
        "systolic_bp": rng.uniform(85, 205, n),
        "bp_treated": rng.integers(0, 2, n).astype(float),
        "smoker": rng.integers(0, 2, n).astype(float),
        "diabetes": rng.integers(0, 2, n).astype(float),
        "statin": rng.integers(0, 2, n).astype(float),
        "egfr": rng.uniform(20, 140, n),
        "bmi": rng.uniform(19, 39, n),
        "uacr": uacr,
        "hba1c": hba1c,
        "sdi_decile": sdi,
    }


def _inputs(name: str, cohort: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {spec.name: cohort[spec.name] for spec in get_equation(name).fields}


def _row(columns: dict[str, np.ndarray], i: int) -> dict[str, object]:
    row = {name: values[i].item() for name, values in columns.items()}
    return {name: (None if isinstance(value, float) and np.isnan(value) else value) for name, value in row.items()}


@pytest.mark.parametrize("name", EQUATIONS)
@pytest.mark.parametrize("n", [5, STACKED_ROWS + 3, 2 * BLOCK_ROWS + 17])
def test_batches_give_each_row_its_own_score_and_contributions(name: str, n: int) -> None:
    equation = get_equation(name)
    columns = _inputs(name, _cohort(n, seed=n))
    batch = equation.evaluate(columns)
    scored = np.flatnonzero(np.isfinite(batch.score))
    assert 0 < len(scored) < n  # some rows in range, some not: both paths exercised
    for i in [*scored[:4].tolist(), *scored[-4:].tolist()]:
        alone = equation.evaluate(_row(columns, i))
        assert alone.score[0] == pytest.approx(batch.score[i], rel=1e-12)
        assert alone.category[0] == batch.category[i] and alone.band[0] == batch.band[i]
        for field, values in batch.contributions.items():
            assert alone.contributions[field][0] == pytest.approx(values[i], rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("name", [*EQUATIONS, "framingham"])  # framingham: the generic stacked counterfactuals
def test_contributions_are_the_score_minus_the_score_with_that_field_at_its_reference(name: str) -> None:
    equation = get_equation(name)
    n = 3 * BLOCK_ROWS // 2  # the blockwise paths, across block boundaries (both kinds)
    assert n > COUNTERFACTUAL_ROWS // 5
    columns = _inputs(name, _cohort(n, seed=7))
    output = equation.evaluate(columns, row_errors=True)
    assert output.contributions
    for spec in equation.fields:
        if spec.reference is None:
            continue
        at_reference = equation.evaluate(columns | {spec.name: np.full(n, spec.reference)}, row_errors=True)
        scored = np.isfinite(output.score) & np.isfinite(at_reference.score)
        expected = output.score[scored] - at_reference.score[scored]
        np.testing.assert_allclose(output.contributions[spec.name][scored], expected, rtol=1e-9, atol=1e-14)


def test_out_of_range_names_each_rows_own_fields() -> None:
    pce = get_equation("pce")
    columns = _inputs("pce", _cohort(2_000, seed=3))
    output = pce.evaluate(columns)
    for i in range(len(output.score)):
        expected = tuple(spec.name for spec in pce.fields if spec.valid is not None
                         and not spec.valid[0] <= columns[spec.name][i] <= spec.valid[1])  # fmt: skip
        assert set(output.out_of_range[i]) == set(expected)
        assert np.isnan(output.score[i]) == bool(expected)


@pytest.mark.parametrize(("field", "value", "code"), [
    ("smoker", 0.5, "impossible_value"), ("smoker", "maybe", "impossible_value"), ("systolic_bp", np.inf, "impossible_value"),
    ("systolic_bp", "high", "impossible_value"), ("age", np.nan, "missing_fields"), ("sex", "unknown", "impossible_value"),
])  # fmt: skip
def test_a_bad_value_in_one_row_of_a_batch_names_the_field_and_the_row(field: str, value: object, code: str) -> None:
    columns = _inputs("pce", _cohort(50, seed=1)) | {"age": np.full(50, 55.0)}
    bad = np.asarray(columns[field]).astype(object)
    bad[37] = value
    with pytest.raises(InvalidInputError) as refused:
        get_equation("pce").evaluate(columns | {field: bad})
    assert refused.value.code == code and field in str(refused.value) and "rows 37" in str(refused.value)


def test_text_inputs_from_files_are_read_like_numbers() -> None:
    pce = get_equation("pce")
    patient = {"age": 55, "sex": "female", "race": "white", "total_cholesterol": 213, "hdl_cholesterol": 50,
               "systolic_bp": 120, "bp_treated": 0, "smoker": 0, "diabetes": 0}  # fmt: skip
    as_text = {name: np.array([str(value)]) for name, value in patient.items()} | {
        "sex": np.array([" Female "]), "smoker": np.array(["no"]), "bp_treated": np.array(["false"])}
    assert pce.evaluate(as_text).score[0] == pytest.approx(pce.evaluate(patient).score[0], rel=1e-15)


def test_every_equation_scores_single_patients_and_batches_alike() -> None:
    cohort = _cohort(400, seed=11) | {
        "waist_cm": np.full(400, 90.0), "physically_active": np.ones(400), "daily_vegetables": np.zeros(400),
        "high_glucose_history": np.zeros(400), "family_history": np.full(400, "none"), "creatinine": np.full(400, 1.0),
        "diastolic_bp": np.full(400, 80.0), "respiratory_rate": np.full(400, 18.0), "spo2": np.full(400, 97.0),
        "on_oxygen": np.zeros(400), "heart_rate": np.full(400, 80.0), "consciousness": np.full(400, "alert"),
        "temperature": np.full(400, 37.0), "altered_mentation": np.zeros(400)}  # fmt: skip
    for name, equation in available_equations().items():
        columns = {spec.name: cohort[spec.name] for spec in equation.fields if spec.name in cohort}
        batch = equation.evaluate(columns, row_errors=True)
        for i in np.flatnonzero(np.isfinite(batch.score))[:3].tolist():
            alone = equation.evaluate(_row(columns, i))
            assert alone.score[0] == pytest.approx(batch.score[i], rel=1e-12), name
            for field, values in batch.contributions.items():
                assert alone.contributions[field][0] == pytest.approx(values[i], rel=1e-9, abs=1e-12), (name, field)
