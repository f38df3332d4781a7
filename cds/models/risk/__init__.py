"""Validated clinical risk equations (pure, vectorised NumPy), each in its own module with its source cited."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from types import MappingProxyType

from cds.errors import ModelNotFoundError
from cds.models.risk.base import EquationOutput, FieldKind, FieldSpec, RiskBand, RiskEquation
from cds.models.risk.blood_pressure import BloodPressureCategory
from cds.models.risk.cdrs import ChineseDiabetesRiskScore
from cds.models.risk.ckd_epi import CkdEpi2021
from cds.models.risk.findrisc import Findrisc
from cds.models.risk.framingham import Framingham2008
from cds.models.risk.news2 import News2, QuickSofa
from cds.models.risk.pce import PooledCohortEquations
from cds.models.risk.prevent import Prevent, PreventOutcome

__all__ = [
    "EquationOutput",
    "FieldKind",
    "FieldSpec",
    "RiskBand",
    "RiskEquation",
    "available_equations",
    "get_equation",
]


@functools.cache
def available_equations() -> Mapping[str, RiskEquation]:
    """Every implemented equation by name (built once; equations hold no per-call state)."""
    equations: list[RiskEquation] = [
        PooledCohortEquations(),
        *(Prevent(outcome, horizon) for horizon in (10, 30) for outcome in PreventOutcome),
        Framingham2008(),
        Findrisc(),
        ChineseDiabetesRiskScore(),
        News2(),
        QuickSofa(),
        CkdEpi2021(),
        BloodPressureCategory(),
    ]
    return MappingProxyType({e.name: e for e in equations})


def get_equation(name: str) -> RiskEquation:
    """The equation called ``name``.

    Raises:
        ModelNotFoundError: Unknown name; the message lists the known ones.
    """
    equations = available_equations()
    if name not in equations:
        raise ModelNotFoundError(f"no risk equation {name!r}; available: {', '.join(sorted(equations))}")
    return equations[name]
