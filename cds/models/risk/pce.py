"""2013 ACC/AHA Pooled Cohort Equations: 10-year risk of a first hard ASCVD event.

Source: Goff DC Jr, Lloyd-Jones DM, et al. 2013 ACC/AHA Guideline on the Assessment of Cardiovascular Risk.
Circulation. 2014;129(25 Suppl 2):S49-S73, Appendix 7 (Table A: equation parameters) and the worked example.
Baseline survivals and mean linear predictors are used at full precision (0.96652, 0.95334, 0.91436, 0.89536;
-29.1817, 86.6081, 61.1816, 19.5425), and the African-American women's coefficients at four decimals, as in the
guideline's risk-estimator spreadsheet and the reference SMART implementation (cerner/ascvd-risk-calculator);
Table A prints them rounded. With these values the guideline's worked example gives 2.1 %, 3.0 %, 5.4 % and 6.1 %
(the printed 5.3 % for white men comes from rounded intermediate sums).

Risk = 1 - S0 ** exp(sum(beta * x) - mean). Population: US adults aged 40-79 without ASCVD, LDL < 190 mg/dL.
Race "other" uses the white equations, as the guideline recommends.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

from cds.models.risk.base import Columns, FieldKind, FieldSpec, RiskBand, banded
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
from cds.models.risk.linear import Basis, LinearPredictorEquation


@dataclass(frozen=True)
class _Coefficients:
    ln_age: float
    ln_age_sq: float
    ln_tc: float
    ln_age_ln_tc: float
    ln_hdl: float
    ln_age_ln_hdl: float
    ln_treated_sbp: float
    ln_age_ln_treated_sbp: float
    ln_untreated_sbp: float
    ln_age_ln_untreated_sbp: float
    smoker: float
    ln_age_smoker: float
    diabetes: float
    baseline_survival: float
    mean: float


WHITE_WOMEN = _Coefficients(-29.799, 4.884, 13.540, -3.114, -13.578, 3.149, 2.019, 0.0, 1.957, 0.0, 7.574, -1.665,
                            0.661, 0.96652, -29.1817)  # fmt: skip
AFRICAN_AMERICAN_WOMEN = _Coefficients(17.1141, 0.0, 0.9396, 0.0, -18.9196, 4.4748, 29.2907, -6.4321, 27.8197, -6.0873,
                                       0.6908, 0.0, 0.8738, 0.95334, 86.6081)  # fmt: skip
WHITE_MEN = _Coefficients(12.344, 0.0, 11.853, -2.664, -7.990, 1.769, 1.797, 0.0, 1.764, 0.0, 7.837, -1.795, 0.658,
                          0.91436, 61.1816)  # fmt: skip
AFRICAN_AMERICAN_MEN = _Coefficients(2.469, 0.0, 0.302, 0.0, -0.307, 0.0, 1.916, 0.0, 1.809, 0.0, 0.549, 0.0, 0.645,
                                     0.89536, 19.5425)  # fmt: skip
EQUATION_SETS = (WHITE_WOMEN, AFRICAN_AMERICAN_WOMEN, WHITE_MEN, AFRICAN_AMERICAN_MEN)
LN_SURVIVAL = np.log([c.baseline_survival for c in EQUATION_SETS])
MEAN = np.array([c.mean for c in EQUATION_SETS])


class PooledCohortEquations(LinearPredictorEquation):
    """10-year hard ASCVD risk (fraction 0-1) by the 2013 Pooled Cohort Equations."""

    name = "pce"
    version = "2013"
    title = "ACC/AHA Pooled Cohort Equations (10-year ASCVD risk)"
    source = "Goff DC Jr et al. Circulation 2014;129(25 Suppl 2):S49-S73, Appendix 7"
    population = "US adults 40-79 years without clinical ASCVD; LDL-C < 190 mg/dL"
    score_unit = "probability (10-year)"
    outcome = "first hard ASCVD event (nonfatal MI, CHD death, fatal or nonfatal stroke) within 10 years"
    primary_prevention = True
    derived_in = "US"
    fields = (
        validated(AGE, 40, 79),
        SEX,
        FieldSpec(
            "race", "1", "race (equation set)", FieldKind.CATEGORY, categories=("white", "african_american", "other")
        ),
        validated(TOTAL_CHOLESTEROL, 130, 320),
        validated(HDL_CHOLESTEROL, 20, 100),
        validated(SYSTOLIC_BP, 90, 200),
        BP_TREATED,
        SMOKER,
        DIABETES,
    )

    def row_caveats(self, columns: Columns, row: int) -> list[str]:
        """A patient of another race is scored with the white equations, which were not validated for them."""
        if columns["race"][row] != "other":
            return []
        return ["race 'other': scored with the equations for white adults, as the 2013 ACC/AHA guideline directs; "
                "the PCE were derived in US white and African American adults and are not validated in other "
                "groups"]

    basis = (
        Basis("ln_age", ("age",), np.log),
        Basis("ln_tc", ("total_cholesterol",), np.log),
        Basis("ln_hdl", ("hdl_cholesterol",), np.log),
        Basis("ln_sbp", ("systolic_bp",), np.log),
        Basis("treated", ("bp_treated",), lambda treated: treated),
        Basis("untreated", ("bp_treated",), lambda treated: 1.0 - treated),
        Basis("smoker", ("smoker",), lambda smoker: smoker),
        Basis("diabetes", ("diabetes",), lambda diabetes: diabetes),
    )
    # In the order of _Coefficients' fields (the first 13).
    terms = (("ln_age",), ("ln_age", "ln_age"), ("ln_tc",), ("ln_age", "ln_tc"), ("ln_hdl",), ("ln_age", "ln_hdl"),
             ("treated", "ln_sbp"), ("treated", "ln_age", "ln_sbp"), ("untreated", "ln_sbp"),
             ("untreated", "ln_age", "ln_sbp"), ("smoker",), ("ln_age", "smoker"), ("diabetes",))  # fmt: skip

    def groups(self, columns: Columns) -> np.ndarray:
        """Index into :data:`EQUATION_SETS`: by sex and race (African American or not)."""
        groups: np.ndarray = (columns["sex"] != "female") * 2 + (columns["race"] == "african_american")
        return groups

    def coefficients(self) -> np.ndarray:
        """The 13 coefficients of each equation set."""
        return np.array([astuple(c)[:13] for c in EQUATION_SETS])

    def link(self, linear: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """1 - S0 ** exp(linear - mean), with each row's equation set's baseline survival and mean."""
        ln_survival, mean = LN_SURVIVAL[groups], MEAN[groups]
        risk: np.ndarray = 1.0 - np.exp(np.exp(linear - mean) * ln_survival)
        return risk

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """2018/2019 guideline categories: < 5 % low, 5-7.4 % borderline, 7.5-19.9 % intermediate, >= 20 % high."""
        return banded(
            score, (0.05, 0.075, 0.20), (RiskBand.LOW, RiskBand.BORDERLINE, RiskBand.INTERMEDIATE, RiskBand.HIGH)
        )
