"""2023 AHA PREVENT equations: 10- and 30-year risk of total CVD, ASCVD and heart failure, base and add-on models.

Source: Khan SS, Matsushita K, Sang Y, et al. Development and Validation of the American Heart Association's
Predicting Risk of cardiovascular disease EVENTs (PREVENT) Equations. Circulation. 2024;149(6):430-449,
Supplemental Tables S12A-S12J (coefficients in :mod:`cds.models.risk.prevent_tables`). Sex-specific logistic models:

    x = constant + sum(beta * term);  risk = exp(x) / (1 + exp(x))

with age (age - 55)/10 (and its square in the 30-year models); non-HDL cholesterol (TC - HDL) * 0.02586 - 3.5
(mmol/L); HDL (HDL * 0.02586 - 1.3)/0.3; SBP (min(SBP, 110) - 110)/20 and (max(SBP, 110) - 130)/20; BMI (HF only)
(min(BMI, 30) - 25)/5 and (max(BMI, 30) - 30)/5; eGFR (min(eGFR, 60) - 60)/-15 and (max(eGFR, 60) - 90)/-15; the
interactions treatment x SBP>=110, statin x non-HDL, and age x (non-HDL, HDL, SBP>=110, diabetes, smoking, BMI>=30,
eGFR<60). The add-on terms: ln(UACR in mg/g) (UACR below 0.1 taken as 0.1, as the AHA's R package does);
(HbA1c - 5.3) separately with and without diabetes; Social Deprivation Index deciles 4-6 and 7-10 against 1-3; and
an indicator for each add-on that is missing.

Which model, per patient, as ``preventr`` chooses: none of UACR, HbA1c and SDI known, the base model; exactly one,
that add-on's own model; two or three, the full model with the missing one's indicator. The result's category names
the model used. The tests reproduce ``preventr``'s expected values (the base model's from the paper's Table S25).
Population: adults 30-79 without known CVD (the 30-year models: 30-59). eGFR is CKD-EPI 2021 (race-free), see
:mod:`cds.models.risk.ckd_epi`. SDI is a US ZIP-code index: it is taken as a decile, not looked up.
"""

from __future__ import annotations

from enum import StrEnum

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
from cds.models.risk.prevent_tables import TABLES, TERMS

MG_DL_TO_MMOL_L = 0.02586
UACR_FLOOR = 0.1  # mg/g: the AHA R package raises smaller ratios to this before the logarithm
ADD_ONS = ("uacr", "hba1c", "sdi_decile")
# The model by which add-ons are known, indexed by the bits UACR (4), HbA1c (2), SDI (1): none, one, or two or more.
MODEL_NAMES = ("base", "sdi", "hba1c", "uacr", "full")
MODEL_BY_BITS = np.array([0, 1, 2, 4, 3, 4, 4, 4])  # index into MODEL_NAMES


class PreventOutcome(StrEnum):
    """The three outcomes."""

    CVD = "cvd"
    ASCVD = "ascvd"
    HEART_FAILURE = "hf"


STATIN = FieldSpec("statin", "1", "on statin therapy", FieldKind.BOOLEAN, reference=0.0)
EGFR = FieldSpec("egfr", "mL/min/{1.73_m2}", "eGFR (CKD-EPI 2021)", valid=(15, 150), plausible=(1, 250),
                 reference=90.0)  # fmt: skip
BMI = FieldSpec("bmi", "kg/m2", "body-mass index", valid=(18.5, 39.9), plausible=(8, 150), reference=25.0)
UACR = FieldSpec("uacr", "mg/g", "urine albumin-to-creatinine ratio (optional PREVENT add-on)", valid=(0, 25000),
                 plausible=(0, 50000), required=False)  # fmt: skip
HBA1C = FieldSpec("hba1c", "%", "HbA1c, NGSP (optional PREVENT add-on)", valid=(3, 15), plausible=(2, 25),
                  required=False)  # fmt: skip
SDI = FieldSpec("sdi_decile", "1", "Social Deprivation Index decile of the US ZIP code, 1-10 (optional PREVENT "
                "add-on)", valid=(1, 10), plausible=(1, 10), required=False)  # fmt: skip
OUTCOME_TEXT = {
    PreventOutcome.CVD: "total cardiovascular disease (ASCVD or heart failure) within {years} years",
    PreventOutcome.ASCVD: "atherosclerotic cardiovascular disease (MI, stroke, CHD death) within {years} years",
    PreventOutcome.HEART_FAILURE: "heart failure within {years} years",
}
MODEL_TEXT = {"base": "base model", "uacr": "UACR model", "hba1c": "HbA1c model", "sdi": "SDI model",
              "full": "full model"}  # fmt: skip


def _known(x: Columns, name: str) -> np.ndarray:
    values = x.get(name)
    return ~np.isnan(values) if values is not None else np.zeros(len(x["age"]), dtype=bool)


def model_codes(x: Columns) -> np.ndarray:
    """Per row, the model to use, as an index into :data:`MODEL_NAMES` (base, sdi, hba1c, uacr, full)."""
    bits = _known(x, "uacr").astype(int) * 4 + _known(x, "hba1c").astype(int) * 2 + _known(x, "sdi_decile")
    result: np.ndarray = MODEL_BY_BITS[bits]
    return result


def _identity(values: np.ndarray) -> np.ndarray:
    return values


def _missing_indicator(values: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.isnan(values).astype(np.float64)
    return result


# The models' transformed variables (absent add-ons give zero terms and a "missing" indicator of one).
BASES = (
    Basis("age", ("age",), lambda age: (age - 55) / 10),
    Basis("nonhdl", ("total_cholesterol", "hdl_cholesterol"), lambda tc, hdl: (tc - hdl) * MG_DL_TO_MMOL_L - 3.5),
    Basis("hdl", ("hdl_cholesterol",), lambda hdl: (hdl * MG_DL_TO_MMOL_L - 1.3) / 0.3),
    Basis("sbp_lo", ("systolic_bp",), lambda sbp: (np.minimum(sbp, 110) - 110) / 20),
    Basis("sbp_hi", ("systolic_bp",), lambda sbp: (np.maximum(sbp, 110) - 130) / 20),
    Basis("bmi_lo", ("bmi",), lambda bmi: (np.minimum(bmi, 30) - 25) / 5),
    Basis("bmi_hi", ("bmi",), lambda bmi: (np.maximum(bmi, 30) - 30) / 5),
    Basis("egfr_lo", ("egfr",), lambda egfr: (np.minimum(egfr, 60) - 60) / -15),
    Basis("egfr_hi", ("egfr",), lambda egfr: (np.maximum(egfr, 60) - 90) / -15),
    Basis("dm", ("diabetes",), _identity),
    Basis("no_dm", ("diabetes",), lambda dm: 1.0 - dm),
    Basis("smk", ("smoker",), _identity),
    Basis("bptx", ("bp_treated",), _identity),
    Basis("statin", ("statin",), _identity),
    Basis("sdi_4_6", ("sdi_decile",), lambda sdi: ((sdi >= 4) & (sdi < 7)).astype(np.float64)),
    Basis("sdi_7_10", ("sdi_decile",), lambda sdi: (sdi >= 7).astype(np.float64)),
    Basis("sdi_missing", ("sdi_decile",), _missing_indicator),
    Basis("ln_uacr", ("uacr",), lambda uacr: np.log(np.maximum(np.nan_to_num(uacr, nan=1.0), UACR_FLOOR))),
    Basis("uacr_missing", ("uacr",), _missing_indicator),
    Basis("hba1c", ("hba1c",), lambda hba1c: np.nan_to_num(hba1c - 5.3, nan=0.0)),
    Basis("hba1c_missing", ("hba1c",), _missing_indicator),
)
# Each of TERMS as a product of basis variables.
PRODUCTS = {"constant": (), "age_sq": ("age", "age"), "bptx_sbphi": ("bptx", "sbp_hi"),
            "statin_nonhdl": ("statin", "nonhdl"), "age_nonhdl": ("age", "nonhdl"), "age_hdl": ("age", "hdl"),
            "age_sbphi": ("age", "sbp_hi"), "age_dm": ("age", "dm"), "age_smk": ("age", "smk"),
            "age_bmihi": ("age", "bmi_hi"), "age_egfrlo": ("age", "egfr_lo"), "hba1c_dm": ("hba1c", "dm"),
            "hba1c_nodm": ("hba1c", "no_dm")}  # fmt: skip


class Prevent(LinearPredictorEquation):
    """Risk (fraction 0-1) of one PREVENT outcome over 10 or 30 years, with the add-on model the inputs allow.

    Args:
        outcome: Total CVD, ASCVD or heart failure.
        horizon: 10 or 30 years.
    """

    version = "2023"
    source = "Khan SS et al. Circulation 2024;149:430-449, Supplemental Tables S12A-S12J"
    primary_prevention = True
    derived_in = "US"

    def __init__(self, outcome: PreventOutcome, horizon: int = 10) -> None:
        self.prevent_outcome, self.horizon = outcome, horizon
        self.name = f"prevent_{outcome.value}" + ("" if horizon == 10 else f"_{horizon}y")
        self.title = f"AHA PREVENT {horizon}-year {outcome.name.replace('_', ' ').lower()} risk"
        self.outcome = OUTCOME_TEXT[outcome].format(years=horizon)
        self.score_unit = f"probability ({horizon}-year)"
        oldest = 79 if horizon == 10 else 59
        self.population = f"US adults 30-{oldest} years without known cardiovascular disease"
        common = (validated(AGE, 30, oldest), SEX)
        lipids = (validated(TOTAL_CHOLESTEROL, 130, 320), validated(HDL_CHOLESTEROL, 20, 100))
        clinical = (validated(SYSTOLIC_BP, 90, 200), BP_TREATED, DIABETES, SMOKER, EGFR)
        add_ons = (UACR, HBA1C, SDI)
        if outcome is PreventOutcome.HEART_FAILURE:
            self.fields = (*common, *clinical, BMI, *add_ons)
        else:
            self.fields = (*common, *lipids, STATIN, *clinical, *add_ons)
        names = set(self.field_names())
        self.basis = tuple(basis for basis in BASES if names.issuperset(basis.fields))
        tables = [betas for model in MODEL_NAMES for betas in TABLES[(model, horizon)][outcome.value]]
        # The terms this outcome and horizon use (every model's coefficient zero: left out).
        self._term_names = tuple(term for i, term in enumerate(TERMS) if any(betas[i] for betas in tables))
        self.terms = tuple(PRODUCTS.get(term, (term,)) for term in self._term_names)

    def groups(self, columns: Columns) -> np.ndarray:
        """Index into :meth:`coefficients`: the model (see :func:`model_codes`) times two, plus one for men."""
        groups: np.ndarray = model_codes(columns) * 2 + (columns["sex"] != "female")
        return groups

    def coefficients(self) -> np.ndarray:
        """Per model in :data:`MODEL_NAMES`, the women's and the men's coefficients of :attr:`terms`."""
        columns = [TERMS.index(term) for term in self._term_names]
        return np.array([[betas[i] for i in columns] for model in MODEL_NAMES
                         for betas in TABLES[(model, self.horizon)][self.prevent_outcome.value]])  # fmt: skip

    def link(self, linear: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """The logistic function."""
        risk: np.ndarray = 1.0 / (1.0 + np.exp(-linear))
        return risk

    def categories(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """The model each row was scored with (``base model``, ``UACR model``, ... ``full model``)."""
        table = np.array([MODEL_TEXT[name] for name in MODEL_NAMES], dtype=object)
        result: np.ndarray = table[model_codes(columns)]
        return result

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """< 5 % low, 5-7.4 % borderline, 7.5-19.9 % intermediate, >= 20 % high (10-year only).

        The PREVENT paper publishes no risk categories; these are the 2019 ACC/AHA primary-prevention cut-points
        (defined for 10-year risk with the Pooled Cohort Equations), used here as a labelled convention, not as
        part of PREVENT. The 30-year risk has no band.
        """
        if self.horizon != 10:
            return np.full(len(score), None, dtype=object)
        bands = (RiskBand.LOW, RiskBand.BORDERLINE, RiskBand.INTERMEDIATE, RiskBand.HIGH)
        return banded(score, (0.05, 0.075, 0.20), bands)
