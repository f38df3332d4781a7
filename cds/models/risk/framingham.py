"""Framingham 2008 general cardiovascular risk (office version with lipids): 10-year risk of CVD.

Source: D'Agostino RB Sr, Vasan RS, Pencina MJ, et al. General cardiovascular risk profile for use in primary care:
the Framingham Heart Study. Circulation. 2008;117:743-753, Table 2 (regression coefficients), baseline survival
S0(10) and mean of the linear predictor, and the paper's worked examples.

Risk = 1 - S0 ** exp(sum(beta * x) - mean). Population: adults 30-74 years without CVD at baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cds.models.risk.base import Columns, RiskBand, RiskEquation, banded
from cds.models.risk.fields import (
    AGE,
    BP_TREATED,
    DIABETES,
    HDL_CHOLESTEROL,
    SEX,
    SMOKER,
    SYSTOLIC_BP,
    TOTAL_CHOLESTEROL,
    validated,
)


@dataclass(frozen=True)
class _Coefficients:
    ln_age: float
    ln_tc: float
    ln_hdl: float
    ln_untreated_sbp: float
    ln_treated_sbp: float
    smoker: float
    diabetes: float
    baseline_survival: float
    mean: float


WOMEN = _Coefficients(2.32888, 1.20904, -0.70833, 2.76157, 2.82263, 0.52873, 0.69154, 0.95012, 26.1931)
MEN = _Coefficients(3.06117, 1.12370, -0.93263, 1.93303, 1.99881, 0.65451, 0.57367, 0.88936, 23.9802)


class Framingham2008(RiskEquation):
    """10-year general CVD risk (fraction 0-1)."""

    name = "framingham"
    version = "2008"
    title = "Framingham general cardiovascular risk (2008, lipid model)"
    source = "D'Agostino RB Sr et al. Circulation 2008;117:743-753, Table 2"
    population = "adults 30-74 years without cardiovascular disease (Framingham cohorts, mostly white)"
    score_unit = "probability (10-year)"
    outcome = "cardiovascular event (coronary, cerebrovascular, peripheral arterial, heart failure) within 10 years"
    primary_prevention = True
    derived_in = "US"
    fields = (
        validated(AGE, 30, 74),
        SEX,
        validated(TOTAL_CHOLESTEROL, 100, 405),
        validated(HDL_CHOLESTEROL, 10, 100),
        validated(SYSTOLIC_BP, 90, 200),
        BP_TREATED,
        SMOKER,
        DIABETES,
    )

    def _score(self, columns: Columns) -> np.ndarray:
        female = columns["sex"] == "female"
        score = np.empty(len(female))
        for mask, c in ((female, WOMEN), (~female, MEN)):
            if mask.any():
                x = {k: v[mask] for k, v in columns.items()}
                ln_sbp = np.log(x["systolic_bp"])
                treated = x["bp_treated"]
                linear = (
                    c.ln_age * np.log(x["age"])
                    + c.ln_tc * np.log(x["total_cholesterol"])
                    + c.ln_hdl * np.log(x["hdl_cholesterol"])
                    + treated * c.ln_treated_sbp * ln_sbp
                    + (1 - treated) * c.ln_untreated_sbp * ln_sbp
                    + c.smoker * x["smoker"]
                    + c.diabetes * x["diabetes"]
                )
                score[mask] = 1.0 - np.power(c.baseline_survival, np.exp(linear - c.mean))
        return score

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Conventional Framingham categories: < 10 % low, 10-19.9 % intermediate, >= 20 % high."""
        return banded(score, (0.10, 0.20), (RiskBand.LOW, RiskBand.INTERMEDIATE, RiskBand.HIGH))
