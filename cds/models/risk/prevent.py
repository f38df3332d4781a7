"""2023 AHA PREVENT equations, base model: 10-year risk of total CVD, ASCVD and heart failure.

Source: Khan SS, Matsushita K, Sang Y, et al. Development and Validation of the American Heart Association's
Predicting Risk of cardiovascular disease EVENTs (PREVENT) Equations. Circulation. 2024;149(6):430-449,
Supplemental Table S12A (10-year base model coefficients). Sex-specific logistic models:

    x = constant + sum(beta * term);  risk = exp(x) / (1 + exp(x))

with age (age - 55)/10; non-HDL cholesterol (TC - HDL) * 0.02586 - 3.5 (mmol/L); HDL (HDL * 0.02586 - 1.3)/0.3;
SBP (min(SBP, 110) - 110)/20 and (max(SBP, 110) - 130)/20; BMI (HF only) (min(BMI, 30) - 25)/5 and
(max(BMI, 30) - 30)/5; eGFR (min(eGFR, 60) - 60)/-15 and (max(eGFR, 60) - 90)/-15; and the interactions
treatment x SBP>=110, statin x non-HDL, and age x (non-HDL, HDL, SBP>=110, diabetes, smoking, BMI>=30, eGFR<60).
The coefficients were cross-checked digit for digit against the AHA's R package port, the Stata ``prevent10``
command and the ``preventr`` package data; the tests reproduce ``preventr``'s published expected values.
Population: adults 30-79 without known CVD. eGFR is CKD-EPI 2021 (race-free), see :mod:`cds.models.risk.ckd_epi`.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from cds.models.risk.base import Columns, FieldKind, FieldSpec, RiskBand, RiskEquation, banded
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

MG_DL_TO_MMOL_L = 0.02586
TERMS = ("constant", "age", "nonhdl", "hdl", "sbp_lo", "sbp_hi", "dm", "smk", "bmi_lo", "bmi_hi", "egfr_lo",
         "egfr_hi", "bptx", "statin", "bptx_sbphi", "statin_nonhdl", "age_nonhdl", "age_hdl", "age_sbphi", "age_dm",
         "age_smk", "age_bmihi", "age_egfrlo")  # fmt: skip


class PreventOutcome(StrEnum):
    """The three 10-year outcomes of the base model."""

    CVD = "cvd"
    ASCVD = "ascvd"
    HEART_FAILURE = "hf"


# Supplemental Table S12A, in TERMS order: (female, male) per outcome.
COEFFICIENTS: dict[PreventOutcome, tuple[tuple[float, ...], tuple[float, ...]]] = {
    PreventOutcome.CVD: (
        (-3.307728, 0.7939329, 0.0305239, -0.1606857, -0.2394003, 0.3600781, 0.8667604, 0.5360739, 0.0, 0.0,
         0.6045917, 0.0433769, 0.3151672, -0.1477655, -0.0663612, 0.1197879, -0.0819715, 0.0306769, -0.0946348,
         -0.27057, -0.078715, 0.0, -0.1637806),
        (-3.031168, 0.7688528, 0.0736174, -0.0954431, -0.4347345, 0.3362658, 0.7692857, 0.4386871, 0.0, 0.0,
         0.5378979, 0.0164827, 0.288879, -0.1337349, -0.0475924, 0.150273, -0.0517874, 0.0191169, -0.1049477,
         -0.2251948, -0.0895067, 0.0, -0.1543702),
    ),
    PreventOutcome.ASCVD: (
        (-3.819975, 0.719883, 0.1176967, -0.151185, -0.0835358, 0.3592852, 0.8348585, 0.4831078, 0.0, 0.0,
         0.4864619, 0.0397779, 0.2265309, -0.0592374, -0.0395762, 0.0844423, -0.0567839, 0.0325692, -0.1035985,
         -0.2417542, -0.0791142, 0.0, -0.1671492),
        (-3.500655, 0.7099847, 0.1658663, -0.1144285, -0.2837212, 0.3239977, 0.7189597, 0.3956973, 0.0, 0.0,
         0.3690075, 0.0203619, 0.2036522, -0.0865581, -0.0322916, 0.114563, -0.0300005, 0.0232747, -0.0927024,
         -0.2018525, -0.0970527, 0.0, -0.1217081),
    ),
    PreventOutcome.HEART_FAILURE: (
        (-4.310409, 0.8998235, 0.0, 0.0, -0.4559771, 0.3576505, 1.038346, 0.583916, -0.0072294, 0.2997706,
         0.7451638, 0.0557087, 0.3534442, 0.0, -0.0981511, 0.0, 0.0, 0.0, -0.0946663, -0.3581041, -0.1159453,
         -0.003878, -0.1884289),
        (-3.946391, 0.8972642, 0.0, 0.0, -0.6811466, 0.3634461, 0.923776, 0.5023736, -0.0485841, 0.3726929,
         0.6926917, 0.0251827, 0.2980922, 0.0, -0.0497731, 0.0, 0.0, 0.0, -0.1289201, -0.3040924, -0.1401688,
         0.0068126, -0.1797778),
    ),
}  # fmt: skip

STATIN = FieldSpec("statin", "1", "on statin therapy", FieldKind.BOOLEAN, reference=0.0)
EGFR = FieldSpec("egfr", "mL/min/{1.73_m2}", "eGFR (CKD-EPI 2021)", valid=(15, 150), plausible=(1, 250),
                 reference=90.0)  # fmt: skip
BMI = FieldSpec("bmi", "kg/m2", "body-mass index", valid=(18.5, 39.9), plausible=(8, 150), reference=25.0)
OUTCOME_TEXT = {
    PreventOutcome.CVD: "total cardiovascular disease (ASCVD or heart failure) within 10 years",
    PreventOutcome.ASCVD: "atherosclerotic cardiovascular disease (MI, stroke, CHD death) within 10 years",
    PreventOutcome.HEART_FAILURE: "heart failure within 10 years",
}


def terms(x: Columns) -> dict[str, np.ndarray]:
    """The model's transformed variables and interactions (absent inputs give zero terms)."""
    n = len(x["age"])
    zeros = np.zeros(n)
    age = (x["age"] - 55) / 10
    if "total_cholesterol" in x:
        nonhdl = (x["total_cholesterol"] - x["hdl_cholesterol"]) * MG_DL_TO_MMOL_L - 3.5
        hdl = (x["hdl_cholesterol"] * MG_DL_TO_MMOL_L - 1.3) / 0.3
    else:
        nonhdl = hdl = zeros
    sbp = x["systolic_bp"]
    sbp_hi = (np.maximum(sbp, 110) - 130) / 20
    bmi = x.get("bmi")
    bmi_lo = (np.minimum(bmi, 30) - 25) / 5 if bmi is not None else zeros
    bmi_hi = (np.maximum(bmi, 30) - 30) / 5 if bmi is not None else zeros
    egfr = x["egfr"]
    egfr_lo = (np.minimum(egfr, 60) - 60) / -15
    statin = x.get("statin", zeros)
    return {
        "constant": np.ones(n), "age": age, "nonhdl": nonhdl, "hdl": hdl,
        "sbp_lo": (np.minimum(sbp, 110) - 110) / 20, "sbp_hi": sbp_hi, "dm": x["diabetes"], "smk": x["smoker"],
        "bmi_lo": bmi_lo, "bmi_hi": bmi_hi, "egfr_lo": egfr_lo, "egfr_hi": (np.maximum(egfr, 60) - 90) / -15,
        "bptx": x["bp_treated"], "statin": statin, "bptx_sbphi": x["bp_treated"] * sbp_hi,
        "statin_nonhdl": statin * nonhdl, "age_nonhdl": age * nonhdl, "age_hdl": age * hdl,
        "age_sbphi": age * sbp_hi, "age_dm": age * x["diabetes"], "age_smk": age * x["smoker"],
        "age_bmihi": age * bmi_hi, "age_egfrlo": age * egfr_lo,
    }  # fmt: skip


class Prevent(RiskEquation):
    """10-year risk (fraction 0-1) of one PREVENT outcome, base model.

    Args:
        outcome: Total CVD, ASCVD or heart failure.
    """

    version = "2023-base"
    source = "Khan SS et al. Circulation 2024;149:430-449, Supplemental Table S12A (10-year base model)"
    population = "US adults 30-79 years without known cardiovascular disease"
    primary_prevention = True
    score_unit = "probability (10-year)"

    def __init__(self, outcome: PreventOutcome) -> None:
        self.prevent_outcome = outcome
        self.name = f"prevent_{outcome.value}"
        self.title = f"AHA PREVENT (base) 10-year {outcome.name.replace('_', ' ').lower()} risk"
        self.outcome = OUTCOME_TEXT[outcome]
        common = (validated(AGE, 30, 79), SEX)
        lipids = (validated(TOTAL_CHOLESTEROL, 130, 320), validated(HDL_CHOLESTEROL, 20, 100))
        clinical = (validated(SYSTOLIC_BP, 90, 200), BP_TREATED, DIABETES, SMOKER, EGFR)
        if outcome is PreventOutcome.HEART_FAILURE:
            self.fields = (*common, *clinical, BMI)
        else:
            self.fields = (*common, *lipids, STATIN, *clinical)

    def _score(self, columns: Columns) -> np.ndarray:
        female = columns["sex"] == "female"
        values = terms(columns)
        matrix = np.stack([values[t] for t in TERMS], axis=1)
        women, men = (np.asarray(c) for c in COEFFICIENTS[self.prevent_outcome])
        linear = np.where(female, matrix @ women, matrix @ men)
        risk: np.ndarray = 1.0 / (1.0 + np.exp(-linear))
        return risk

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """< 5 % low, 5-7.4 % borderline, 7.5-19.9 % intermediate, >= 20 % high.

        The PREVENT paper publishes no risk categories; these are the 2019 ACC/AHA primary-prevention cut-points
        (defined for the Pooled Cohort Equations), used here as a labelled convention, not as part of PREVENT.
        """
        bands = (RiskBand.LOW, RiskBand.BORDERLINE, RiskBand.INTERMEDIATE, RiskBand.HIGH)
        return banded(score, (0.05, 0.075, 0.20), bands)
