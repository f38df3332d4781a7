"""Chinese Diabetes Risk Score (中国糖尿病风险评分表): points 0-51 for undiagnosed type 2 diabetes; OGTT at >= 25.

Source: the score table of the Chinese type 2 diabetes guideline (Chinese Diabetes Society, 中国2型糖尿病防治指南,
2017 and 2020 editions), which adopts the New Chinese Diabetes Risk Score of Zhou X, Qiao Q, Ji L, et al.
Nonlaboratory-based risk assessment algorithm for undiagnosed type 2 diabetes developed on a nation-wide diabetes
survey. Diabetes Care 2013;36(12):3944-3952 (derived in 41,809 adults aged 20-74 of the China National Diabetes
and Metabolic Disorders Study 2007-08). The paper's abstract, which was read, gives the six items, the range 0-51
and the cut-off 25. The points table itself could not be read in the guideline or the paper from this
environment: it is transcribed from independent reproductions of the guideline table that agree cell for cell, and
its maxima add up to the published range (18 + 10 + 5 + 10 + 6 + 2 = 51). Check it against the guideline before
clinical use. Bands are read as half-open intervals (``22.0-23.9`` as 22.0 <= BMI < 24.0), so that every value
falls in one band. The guideline gives no worked example.

Points (age in years; SBP mmHg; BMI kg/m2; waist cm, men / women):

- age 20-24: 0, 25-34: 4, 35-39: 8, 40-44: 11, 45-49: 12, 50-54: 13, 55-59: 15, 60-64: 16, 65-74: 18
- systolic BP < 110: 0, 110-119: 1, 120-129: 3, 130-139: 6, 140-149: 7, 150-159: 8, >= 160: 10
- BMI < 22.0: 0, 22.0-23.9: 1, 24.0-29.9: 3, >= 30.0: 5
- waist men < 75 / women < 70: 0; 75-79.9 / 70-74.9: 3; 80-84.9 / 75-79.9: 5; 85-89.9 / 80-84.9: 7;
  90-94.9 / 85-89.9: 8; >= 95 / >= 90: 10
- diabetes in a parent, sibling or child: 6; male sex: 2
"""

from __future__ import annotations

import numpy as np

from cds.models.risk.base import Columns, PointScore, RiskBand, banded
from cds.models.risk.fields import AGE, BMI, FAMILY_HISTORY_DIABETES, SEX, SYSTOLIC_BP, WAIST, validated

CUT_OFF = 25  # at or above: an oral glucose tolerance test is recommended
AGE_EDGES, AGE_POINTS = (25, 35, 40, 45, 50, 55, 60, 65), (0, 4, 8, 11, 12, 13, 15, 16, 18)
SBP_EDGES, SBP_POINTS = (110, 120, 130, 140, 150, 160), (0, 1, 3, 6, 7, 8, 10)
BMI_EDGES, BMI_POINTS = (22.0, 24.0, 30.0), (0, 1, 3, 5)
WAIST_POINTS = (0, 3, 5, 7, 8, 10)
WAIST_EDGES = {"male": (75.0, 80.0, 85.0, 90.0, 95.0), "female": (70.0, 75.0, 80.0, 85.0, 90.0)}


def _points(values: np.ndarray, edges: tuple[float, ...], points: tuple[int, ...]) -> np.ndarray:
    """``points[i]`` where ``edges[i-1] <= value < edges[i]``."""
    return np.asarray(points, dtype=float)[np.searchsorted(np.asarray(edges), values, side="right")]


class ChineseDiabetesRiskScore(PointScore):
    """Points 0-51; band ``high`` at or above the guideline's cut-off of 25 (OGTT recommended), else ``low``."""

    name = "cdrs"
    version = "2013"
    title = "Chinese Diabetes Risk Score (中国糖尿病风险评分)"
    source = ("Chinese type 2 diabetes guideline (Chinese Diabetes Society, 2017/2020), score of Zhou X et al. "
              "Diabetes Care 2013;36:3944-3952")  # fmt: skip
    population = "Chinese adults 20-74 years without known diabetes"
    score_unit = "points (0-51)"
    outcome = "undiagnosed type 2 diabetes (screening: OGTT at 25 points or more)"
    derived_in = "China"
    fields = (
        validated(AGE, 20, 74),
        SEX,
        WAIST,
        BMI,
        SYSTOLIC_BP,
        FAMILY_HISTORY_DIABETES,
    )

    def points(self, x: Columns) -> dict[str, np.ndarray]:
        """Points per item, exactly as in the table."""
        male = x["sex"] == "male"
        waist = np.where(male, _points(x["waist_cm"], WAIST_EDGES["male"], WAIST_POINTS),
                         _points(x["waist_cm"], WAIST_EDGES["female"], WAIST_POINTS))  # fmt: skip
        return {
            "age": _points(x["age"], AGE_EDGES, AGE_POINTS),
            "sex": np.where(male, 2.0, 0.0),
            "waist_cm": waist,
            "bmi": _points(x["bmi"], BMI_EDGES, BMI_POINTS),
            "systolic_bp": _points(x["systolic_bp"], SBP_EDGES, SBP_POINTS),
            "family_history": np.where(x["family_history"] == "first_degree", 6.0, 0.0),
        }

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """``high`` at 25 points or more (the guideline's OGTT cut-off), else ``low``."""
        return banded(score, (CUT_OFF,), (RiskBand.LOW, RiskBand.HIGH))

    def categories(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """What the guideline recommends at this score."""
        return np.where(score >= CUT_OFF, "OGTT recommended", "below the OGTT cut-off").astype(object)
