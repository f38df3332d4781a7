"""Risk scoring with a validated equation: inputs in, a typed :class:`RiskResult` with contributions out."""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cds.models.risk import RiskEquation
from cds.models.risk.base import EquationOutput, RiskPopulation
from cds.results.risk import Contribution, MethodKind, MethodRef, RiskResult, RiskStatus


@functools.cache
def _module_sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def equation_ref(equation: RiskEquation) -> MethodRef:
    """Identity of an equation: name, version, citation and the sha256 of its implementing module."""
    source_file = inspect.getsourcefile(type(equation)) or ""
    return MethodRef(
        kind=MethodKind.EQUATION,
        name=equation.name,
        version=equation.version,
        title=equation.title,
        source=equation.source,
        sha256=_module_sha256(source_file),
    )


def hash_inputs(inputs: Mapping[str, float | str]) -> str:
    """sha256 of the canonical JSON of the inputs actually used."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class EquationPipeline:
    """Scores patients with one equation.

    Args:
        equation: The validated equation (or an ML model adapted to the equation interface).
        method: Identity to report; defaults to the equation's own (name, version, module sha256).
        population: The population the site serves; a result from an equation derived elsewhere says so and is
            marked ``outside_population``. ``None``: not said (cohort files, where the analyst chose the method).
    """

    def __init__(self, equation: RiskEquation, method: MethodRef | None = None, *,
                 population: RiskPopulation | None = None) -> None:  # fmt: skip
        self.equation = equation
        self.method = method or equation_ref(equation)
        self.population = population

    def __call__(self, inputs: Mapping[str, object]) -> RiskResult:
        """Score one patient.

        Raises:
            InvalidInputError: Missing fields (all listed) or impossible values (the field named).
        """
        return self.result(self.equation.evaluate(inputs), 0)

    def result(self, output: EquationOutput, row: int) -> RiskResult:
        """The typed result of one row of a vectorised evaluation."""
        equation = self.equation
        used: dict[str, float | str] = {}
        for spec in equation.fields:
            value = output.columns[spec.name][row]
            if isinstance(value, str):
                used[spec.name] = value
            elif not np.isnan(value):
                used[spec.name] = float(value)
        score = float(output.score[row])
        scored = not np.isnan(score)
        contributions = tuple(
            Contribution(
                field=name,
                value=used.get(name),
                reference=equation.field(name).reference,
                contribution=float(values[row]),
            )
            for name, values in output.contributions.items()
            if scored
        )
        warnings = equation.row_caveats(output.columns, row) if scored else []
        if scored and self.population is not None and (elsewhere := equation.outside_population(self.population)):
            warnings.append(elsewhere)
        if not scored:
            warnings.append(
                f"not scored: {', '.join(output.out_of_range[row])} outside the range {equation.name} was "
                "validated in; the equation is not extrapolated"
            )
        return RiskResult(
            method=self.method,
            status=RiskStatus.SCORED if scored else RiskStatus.OUT_OF_RANGE,
            score=score if scored else None,
            score_unit=equation.score_unit,
            band=output.band[row],
            category=output.category[row],
            out_of_range_fields=output.out_of_range[row],
            contributions=contributions,
            contribution_unit=equation.contribution_unit,
            inputs=used,
            input_sha256=hash_inputs(used),
            population=equation.population,
            warnings=tuple(warnings),
            outside_population=bool(warnings) and scored,
        )
