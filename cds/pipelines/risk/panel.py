"""A patient's chronic-disease risk panel: cardiovascular, diabetes and kidney, from whatever data is available.

Each topic tries its methods in order of preference and reports either a result or why it has none: the inputs
that are missing (and, for an input the record holds unusably, why), or an impossible value. Topics are isolated:
a bad value affects only the topics whose methods need it. A patient with established atherosclerotic
cardiovascular disease gets no primary-prevention score: the cardiovascular topic says "very high risk" and names
the evidence; a patient known to have diabetes gets no score of new-onset diabetes (FINDRISC, CDRS predict it in
people without): the diabetes topic names the evidence instead. Nothing is imputed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cds.errors import InvalidInputError
from cds.models.risk import get_equation
from cds.models.risk.base import RiskPopulation
from cds.pipelines.risk.equation import EquationPipeline
from cds.results.risk import NotScored, PanelEntry, Topic

# Preferred method first, per population served: a population's own score before one derived elsewhere; PREVENT
# (needs eGFR) before the Pooled Cohort Equations. No Chinese cardiovascular equation is implemented (China-PAR's
# coefficients could not be read in a primary source), so a Chinese site's cardiovascular card says the US
# equation is used outside its population.
METHODS: dict[RiskPopulation, dict[Topic, tuple[str, ...]]] = {
    RiskPopulation.CHINA: {
        Topic.CARDIOVASCULAR: ("prevent_cvd", "pce"),
        Topic.DIABETES: ("cdrs", "findrisc"),
        Topic.KIDNEY: ("ckd_epi_2021",),
    },
    RiskPopulation.US: {
        Topic.CARDIOVASCULAR: ("prevent_cvd", "pce"),
        Topic.DIABETES: ("findrisc",),
        Topic.KIDNEY: ("ckd_epi_2021",),
    },
}
SECONDARY_PREVENTION = "secondary_prevention"
SECONDARY_OUTCOME = "recurrent atherosclerotic cardiovascular events"


def _missing_reason(missing: Sequence[str], problems: Mapping[str, str]) -> str:
    unusable = [problems[name] for name in missing if name in problems]
    return f"missing {', '.join(missing)}" + (f" ({'; '.join(unusable)})" if unusable else "")


def _topic(topic: Topic, values: Mapping[str, object], problems: Mapping[str, str],
           population: RiskPopulation) -> PanelEntry:  # fmt: skip
    entry: PanelEntry | None = None
    for name in METHODS[population][topic]:
        equation = get_equation(name)
        missing = tuple(f.name for f in equation.fields if f.required and values.get(f.name) is None)
        if missing:
            impossible = equation.impossible_values(values)
            if entry is None or (entry.not_scored is NotScored.MISSING_INPUTS and len(missing) < len(entry.missing)):
                entry = PanelEntry(topic, None, name, missing, equation.outcome,
                                   NotScored.IMPOSSIBLE_VALUE if impossible else NotScored.MISSING_INPUTS,
                                   "; ".join([*impossible, _missing_reason(missing, problems)]))  # fmt: skip
            continue
        try:
            pipeline = EquationPipeline(equation, population=population)
            result = pipeline({f.name: values.get(f.name) for f in equation.fields})
        except InvalidInputError as exc:  # an impossible value: this topic only; it says more than a missing input
            if entry is None or entry.not_scored is NotScored.MISSING_INPUTS:
                entry = PanelEntry(topic, None, name, (), equation.outcome, NotScored.IMPOSSIBLE_VALUE, exc.message)
            continue
        return PanelEntry(topic, result, name, (), equation.outcome)
    assert entry is not None
    return entry


def assess_patient(values: Mapping[str, object], *, problems: Mapping[str, str] | None = None,
                   ascvd: Sequence[str] = (), diabetes_evidence: str = "",
                   population: RiskPopulation = RiskPopulation.CHINA) -> list[PanelEntry]:  # fmt: skip
    """Every topic of the panel, each scored or saying why not.

    Args:
        values: Inputs by field name, in equation units.
        problems: Inputs the record holds but that could not be used, and why (named when they are missing).
        ascvd: Evidence of established ASCVD; when any, the cardiovascular topic is secondary prevention.
        diabetes_evidence: Where the record shows diabetes (``values["diabetes"]`` true), e.g. ``Condition/7``.
        population: The population the site serves: its own scores first; others say they are used outside theirs.
    """
    entries = []
    for topic in METHODS[population]:
        if topic is Topic.CARDIOVASCULAR and ascvd:
            entries.append(PanelEntry(topic, None, SECONDARY_PREVENTION, (), SECONDARY_OUTCOME,
                                      NotScored.ESTABLISHED_ASCVD, "; ".join(ascvd)))  # fmt: skip
            continue
        if topic is Topic.DIABETES and values.get("diabetes") is True:
            name = METHODS[population][topic][0]
            entries.append(PanelEntry(topic, None, name, (), get_equation(name).outcome, NotScored.KNOWN_DIABETES,
                                      diabetes_evidence or "diabetes stated"))  # fmt: skip
            continue
        entries.append(_topic(topic, values, problems or {}, population))
    return entries
