"""Input fields shared by several equations: one definition each (name, unit, physiological limits, reference).

Equations narrow them to their own validated range with :func:`validated`.
"""

from __future__ import annotations

from dataclasses import replace

from cds.models.risk.base import FieldKind, FieldSpec

AGE = FieldSpec("age", "a", "age in years", plausible=(18, 120))
SEX = FieldSpec("sex", "1", "sex", FieldKind.CATEGORY, categories=("female", "male"))
RACES = ("white", "african_american", "other")
RACE = FieldSpec("race", "1", "race (equation set)", FieldKind.CATEGORY, categories=RACES)
TOTAL_CHOLESTEROL = FieldSpec("total_cholesterol", "mg/dL", "total cholesterol", plausible=(40, 1000), reference=170.0)
HDL_CHOLESTEROL = FieldSpec("hdl_cholesterol", "mg/dL", "HDL cholesterol", plausible=(5, 300), reference=50.0)
SYSTOLIC_BP = FieldSpec("systolic_bp", "mm[Hg]", "systolic blood pressure", plausible=(50, 300), reference=110.0)
DIASTOLIC_BP = FieldSpec("diastolic_bp", "mm[Hg]", "diastolic blood pressure", plausible=(20, 200))
BP_TREATED = FieldSpec("bp_treated", "1", "on antihypertensive treatment", FieldKind.BOOLEAN, reference=0.0)
SMOKER = FieldSpec("smoker", "1", "current smoker", FieldKind.BOOLEAN, reference=0.0)
DIABETES = FieldSpec("diabetes", "1", "diabetes", FieldKind.BOOLEAN, reference=0.0)
BMI = FieldSpec("bmi", "kg/m2", "body-mass index", valid=(12, 70), plausible=(8, 150))
WAIST = FieldSpec("waist_cm", "cm", "waist circumference", valid=(40, 200), plausible=(30, 300))
FAMILY_HISTORY = ("none", "second_degree", "first_degree")
FAMILY_HISTORY_DIABETES = FieldSpec(
    "family_history", "1", "diabetes in relatives: none, second_degree (grandparent, aunt, uncle, first cousin) or "
    "first_degree (parent, sibling, child)", FieldKind.CATEGORY, categories=FAMILY_HISTORY)


def validated(spec: FieldSpec, low: float, high: float) -> FieldSpec:
    """``spec`` with the equation's validated range (outside it, rows are ``out_of_range``)."""
    return replace(spec, valid=(low, high))
