"""Chinese Diabetes Risk Score against its source: the stated range 0-51, the cut-off 25, and every band edge of
the points table (the guideline gives no worked example; see the module for what could and could not be read)."""

from __future__ import annotations

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.risk import get_equation

CDRS = get_equation("cdrs")


def score(**changes: object) -> float:
    patient = {"age": 22, "sex": "female", "waist_cm": 65, "bmi": 20, "systolic_bp": 100, "family_history": "none"}
    return float(CDRS.evaluate(patient | changes).score[0])


def test_the_range_is_0_to_51_as_published() -> None:
    assert score() == 0
    assert score(age=70, sex="male", waist_cm=110, bmi=35, systolic_bp=170, family_history="first_degree") == 51


@pytest.mark.parametrize(("field", "table"), [
    ("age", [(20, 0), (24, 0), (25, 4), (34, 4), (35, 8), (39, 8), (40, 11), (44, 11), (45, 12), (49, 12),
             (50, 13), (54, 13), (55, 15), (59, 15), (60, 16), (64, 16), (65, 18), (74, 18)]),
    ("systolic_bp", [(109, 0), (110, 1), (119, 1), (120, 3), (129, 3), (130, 6), (139, 6), (140, 7), (149, 7),
                     (150, 8), (159, 8), (160, 10), (200, 10)]),
    ("bmi", [(21.9, 0), (22.0, 1), (23.9, 1), (23.95, 1), (24.0, 3), (29.9, 3), (30.0, 5)]),
])  # fmt: skip
def test_every_band_edge_of_the_table(field: str, table: list[tuple[float, int]]) -> None:
    for value, points in table:
        assert score(**{field: value}) == points, (field, value)


@pytest.mark.parametrize(("sex", "table"), [
    ("male", [(74.9, 0), (75, 3), (79.9, 3), (80, 5), (84.9, 5), (85, 7), (89.9, 7), (90, 8), (94.9, 8), (95, 10)]),
    ("female", [(69.9, 0), (70, 3), (74.9, 3), (75, 5), (79.9, 5), (80, 7), (84.9, 7), (85, 8), (89.9, 8), (90, 10)]),
])  # fmt: skip
def test_waist_bands_by_sex(sex: str, table: list[tuple[float, int]]) -> None:
    male = 2 if sex == "male" else 0
    for waist, points in table:
        assert score(sex=sex, waist_cm=waist) == points + male, (sex, waist)


def test_family_history_counts_parents_siblings_and_children_only() -> None:
    assert score(family_history="first_degree") == 6
    assert score(family_history="second_degree") == 0  # the table asks about parents, siblings and children


def test_the_cut_off_25_recommends_an_ogtt() -> None:
    below = CDRS.evaluate({"age": 50, "sex": "male", "waist_cm": 80, "bmi": 23, "systolic_bp": 100,
                           "family_history": "none"})  # 13 + 2 + 5 + 1 + 0 = 21  # fmt: skip
    at = CDRS.evaluate({"age": 50, "sex": "male", "waist_cm": 85, "bmi": 24, "systolic_bp": 100,
                        "family_history": "none"})  # 13 + 2 + 7 + 3 + 0 = 25  # fmt: skip
    assert below.score[0] == 21 and below.band[0] == "low" and below.category[0] == "below the OGTT cut-off"
    assert at.score[0] == 25 and at.band[0] == "high" and at.category[0] == "OGTT recommended"
    np.testing.assert_array_equal(sorted(at.contributions), sorted(CDRS.field_names()))


def test_outside_20_to_74_is_not_scored_and_impossible_values_are_refused() -> None:
    assert np.isnan(CDRS.evaluate({"age": 80, "sex": "male", "waist_cm": 85, "bmi": 24, "systolic_bp": 100,
                                   "family_history": "none"}).score[0])  # fmt: skip
    with pytest.raises(InvalidInputError, match="systolic_bp is impossible"):
        score(systolic_bp=900)
