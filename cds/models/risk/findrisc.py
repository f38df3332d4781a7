"""FINDRISC: Finnish Diabetes Risk Score, 10-year risk of type 2 diabetes (points 0-26).

Source: Lindström J, Tuomilehto J. The diabetes risk score: a practical tool to predict type 2 diabetes risk.
Diabetes Care. 2003;26(3):725-731 (the score form, with the 2001 points for family history), and the FINDRISC
questionnaire's risk bands: < 7 low (about 1 in 100 will develop diabetes), 7-11 slightly elevated (1 in 25),
12-14 moderate (1 in 6), 15-20 high (1 in 3), > 20 very high (1 in 2).
Population: adults 35-64 years without known diabetes (Finnish cohorts).
"""

from __future__ import annotations

import numpy as np

from cds.models.risk.base import Columns, FieldKind, FieldSpec, PointScore, RiskBand, banded
from cds.models.risk.fields import AGE, BMI, FAMILY_HISTORY_DIABETES, SEX, WAIST, validated


class Findrisc(PointScore):
    """Points 0-26; the band carries the estimated 10-year risk."""

    name = "findrisc"
    version = "2003"
    title = "FINDRISC type 2 diabetes risk score"
    source = "Lindström J, Tuomilehto J. Diabetes Care 2003;26:725-731"
    population = "adults without known diabetes; derived in Finns aged 35-64"
    score_unit = "points (0-26)"
    outcome = "type 2 diabetes within 10 years"
    derived_in = "Finland"
    fields = (
        validated(AGE, 18, 100),
        SEX,
        BMI,
        WAIST,
        FieldSpec("physically_active", "1", "at least 30 minutes of physical activity daily", FieldKind.BOOLEAN),
        FieldSpec("daily_vegetables", "1", "eats vegetables, fruit or berries every day", FieldKind.BOOLEAN),
        FieldSpec("bp_treated", "1", "ever taken antihypertensive medication regularly", FieldKind.BOOLEAN),
        FieldSpec("high_glucose_history", "1", "ever found to have high blood glucose", FieldKind.BOOLEAN),
        FAMILY_HISTORY_DIABETES,
    )

    def points(self, x: Columns) -> dict[str, np.ndarray]:
        """Points per item, exactly as on the questionnaire."""
        age, bmi, waist = x["age"], x["bmi"], x["waist_cm"]
        female = x["sex"] == "female"
        waist_points = np.where(
            female,
            np.select([waist < 80, waist <= 88], [0, 3], 4),
            np.select([waist < 94, waist <= 102], [0, 3], 4),
        )
        return {
            "age": np.select([age < 45, age <= 54, age <= 64], [0, 2, 3], 4).astype(float),
            "bmi": np.select([bmi < 25, bmi <= 30], [0, 1], 3).astype(float),
            "waist_cm": waist_points.astype(float),
            "physically_active": np.where(x["physically_active"] == 1, 0.0, 2.0),
            "daily_vegetables": np.where(x["daily_vegetables"] == 1, 0.0, 1.0),
            "bp_treated": np.where(x["bp_treated"] == 1, 2.0, 0.0),
            "high_glucose_history": np.where(x["high_glucose_history"] == 1, 5.0, 0.0),
            "family_history": np.select(
                [x["family_history"] == "first_degree", x["family_history"] == "second_degree"], [5.0, 3.0], 0.0
            ),
        }

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """< 7 low, 7-11 slightly elevated, 12-14 moderate, 15-20 high, > 20 very high."""
        return banded(
            score,
            (7, 12, 15, 21),
            (RiskBand.LOW, RiskBand.SLIGHTLY_ELEVATED, RiskBand.MODERATE, RiskBand.HIGH, RiskBand.VERY_HIGH),
        )


TEN_YEAR_RISK = {
    RiskBand.LOW: "about 1 in 100",
    RiskBand.SLIGHTLY_ELEVATED: "about 1 in 25",
    RiskBand.MODERATE: "about 1 in 6",
    RiskBand.HIGH: "about 1 in 3",
    RiskBand.VERY_HIGH: "about 1 in 2",
}
