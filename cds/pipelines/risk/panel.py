"""A patient's chronic-disease risk panel: cardiovascular, diabetes and kidney, from whatever data is available.

Each topic tries its methods in order of preference and reports either a result or exactly which inputs are
missing; nothing is imputed.
"""

from __future__ import annotations

from collections.abc import Mapping

from cds.models.risk import get_equation
from cds.pipelines.risk.equation import EquationPipeline
from cds.results.risk import PanelEntry, Topic

# Preferred method first: PREVENT needs eGFR; the Pooled Cohort Equations do not.
METHODS: dict[Topic, tuple[str, ...]] = {
    Topic.CARDIOVASCULAR: ("prevent_cvd", "pce"),
    Topic.DIABETES: ("findrisc",),
    Topic.KIDNEY: ("ckd_epi_2021",),
}


def assess_patient(values: Mapping[str, object]) -> list[PanelEntry]:
    """Score every topic that the values allow; impossible values raise, missing ones are reported."""
    entries = []
    for topic, names in METHODS.items():
        entry: PanelEntry | None = None
        for name in names:
            equation = get_equation(name)
            missing = tuple(f.name for f in equation.fields if f.required and values.get(f.name) is None)
            if missing:
                if entry is None or len(missing) < len(entry.missing):
                    entry = PanelEntry(topic, None, name, missing, equation.outcome)
                continue
            result = EquationPipeline(equation)({f.name: values.get(f.name) for f in equation.fields})
            entry = PanelEntry(topic, result, name, (), equation.outcome)
            break
        assert entry is not None
        entries.append(entry)
    return entries
