"""The common shape of a validated clinical risk equation: declared inputs, ranges, vectorised evaluation.

Range policy (the same for every equation):

- A value outside **physiological limits** (negative, NaN, SBP 900) is *impossible*: the whole request is refused
  with :class:`~cds.errors.InvalidInputError` (code ``impossible_value``) naming the field and the first offending
  rows. A missing field is refused the same way (code ``missing_fields``), listing every missing field at once.
- A value that is possible but outside the range the equation was **derived and validated in** (e.g. age 85 for
  the Pooled Cohort Equations, which cover 40–79) is *out of range*: that row gets no score; its result says
  ``out_of_range`` and names the fields. Nothing is extrapolated or clipped silently.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from cds.errors import InvalidInputError


class FieldKind(StrEnum):
    """How a field's values are given."""

    NUMBER = "number"
    BOOLEAN = "boolean"  # 0/1, true/false
    CATEGORY = "category"


class RiskBand(StrEnum):
    """Ordered qualitative bands shared by all equations (each uses a subset)."""

    LOW = "low"
    BORDERLINE = "borderline"
    SLIGHTLY_ELEVATED = "slightly_elevated"
    INTERMEDIATE = "intermediate"
    MODERATE = "moderate"
    HIGH = "high"
    VERY_HIGH = "very_high"


class RiskPopulation(StrEnum):
    """The population a site serves: which scores come first, and which equations are used outside theirs."""

    CHINA = "china"
    US = "us"


# Where each population's own equations were derived (an equation's ``derived_in``).
NATIVE_REGION = {RiskPopulation.CHINA: "China", RiskPopulation.US: "US"}


@dataclass(frozen=True)
class FieldSpec:
    """One input of an equation.

    Attributes:
        name: Field name in JSON and CSV input.
        unit: UCUM unit the equation expects (``1`` for booleans and categories).
        description: What it is, for error messages and documentation.
        kind: Number, boolean or category.
        valid: Inclusive range the equation was derived and validated in; outside it the row is out of range.
        plausible: Inclusive physiological limits; outside them the value is impossible and refused.
        categories: Allowed values of a category field.
        reference: Value used to show this input's contribution (the score with only this input set to it);
            ``None`` when the input is not modifiable (age, sex).
        required: Optional numeric fields may be absent; they are then NaN and the equation says what it skips.
    """

    name: str
    unit: str
    description: str
    kind: FieldKind = FieldKind.NUMBER
    valid: tuple[float, float] | None = None
    plausible: tuple[float, float] | None = None
    categories: tuple[str, ...] = ()
    reference: float | str | None = None
    required: bool = True


@dataclass(frozen=True)
class EquationOutput:
    """Vectorised results for n rows.

    Attributes:
        score: Score per row; NaN where the row is out of range.
        band: Band per row, an object array of :class:`RiskBand` (``None`` where not scored or no bands).
        out_of_range: Per row, the fields outside the validated range (empty tuple when in range).
        contributions: Per input field, its contribution per row (NaN where out of range).
        category: Per row, an equation-specific label (e.g. KDIGO ``G3a A2``) or ``None``; an object array.
        errors: Per row, why it could not be scored (only with ``row_errors``); empty when it was.
        columns: The prepared inputs the rows were scored from (equation units and types).
    """

    score: np.ndarray
    band: np.ndarray
    out_of_range: list[tuple[str, ...]]
    contributions: dict[str, np.ndarray] = field(default_factory=dict)
    category: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    errors: list[str] = field(default_factory=list)
    columns: dict[str, np.ndarray] = field(default_factory=dict)


Columns = Mapping[str, np.ndarray]


class RiskEquation(ABC):
    """A published equation, implemented from its source, evaluated on columns of patients.

    Subclasses declare the class attributes and implement :meth:`_score`; contributions come for free from the
    fields' ``reference`` values unless :meth:`_contributions` is overridden.
    """

    name: str
    version: str
    title: str
    source: str
    population: str
    score_unit: str
    outcome: str
    contribution_unit: str = "change in score if only this input took its reference value"
    fields: tuple[FieldSpec, ...]
    primary_prevention: bool = False  # derived in people without known CVD: not for established ASCVD
    derived_in: str = ""  # the country of the derivation cohorts ("US", "Finland", "China"); "" when used worldwide

    def row_caveats(self, columns: Columns, row: int) -> list[str]:
        """Why this patient is outside the population the equation was validated in (none by default).

        A result that carries any is marked ``outside_population``.
        """
        return []

    def outside_population(self, population: RiskPopulation) -> str:
        """The caveat when a site serving ``population`` uses this equation, derived elsewhere; else ``""``."""
        if not self.derived_in or self.derived_in == NATIVE_REGION[population]:
            return ""
        return (f"{self.name} was derived in {self.derived_in} cohorts ({self.population}) and is used outside its "
                f"derivation population here ({population.value} site): not validated for these patients")

    def field_names(self) -> list[str]:
        """Input field names, in declaration order."""
        return [spec.name for spec in self.fields]

    def field(self, name: str) -> FieldSpec:
        """The spec of one input field."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def evaluate(self, data: Mapping[str, object], *, row_errors: bool = False) -> EquationOutput:
        """Score every row of ``data`` (columns of equal length, or scalars for one patient).

        Args:
            data: Inputs by field name, in the units the fields declare.
            row_errors: Instead of refusing the whole request, give rows with missing or impossible values no
                score and an explanation in ``EquationOutput.errors`` (for cohort files).

        Raises:
            InvalidInputError: Missing fields (all listed) or impossible values (field and rows named); with
                ``row_errors`` only for a field absent from every row.
        """
        columns, problems = self.prepare(data)
        n = len(next(iter(columns.values())))
        errors = [""] * n
        valid_rows = np.ones(n, dtype=bool)
        for problem in problems:
            rows = np.flatnonzero(problem.rows)
            if not row_errors:
                where = f" (rows {', '.join(str(i) for i in rows[:5])}{'…' if len(rows) > 5 else ''})" if n > 1 else ""
                raise InvalidInputError(problem.describe(int(rows[0])) + where, code=problem.code)
            valid_rows &= ~problem.rows
            for i in rows.tolist():
                errors[i] = f"{errors[i]}; {problem.describe(i)}" if errors[i] else problem.describe(i)
        outside, outside_any = self._outside_valid(columns, n, valid_rows)
        scored = valid_rows & ~outside_any
        score = np.full(n, np.nan)
        contributions: dict[str, np.ndarray] = {}
        bands = np.full(n, None, dtype=object)
        categories = np.full(n, None, dtype=object)
        if scored.any():
            subset = columns if scored.all() else {k: v[scored] for k, v in columns.items()}
            subset_score = self._score(subset)
            score[scored] = subset_score
            for name, values in self._contributions(subset, subset_score).items():
                contributions[name] = np.full(n, np.nan)
                contributions[name][scored] = values
            bands[scored] = self.bands(subset_score, subset)
            categories[scored] = self.categories(subset_score, subset)
        return EquationOutput(
            score=score,
            band=bands,
            out_of_range=outside,
            contributions=contributions,
            category=categories,
            errors=errors,
            columns=columns,
        )

    def prepare(self, data: Mapping[str, object]) -> tuple[dict[str, np.ndarray], list[_Problem]]:
        """Columns as arrays (float64 for numbers and booleans, str for categories) and the rows that are unusable.

        Returns:
            The columns, and the problems found (missing or impossible values, with their rows).

        Raises:
            InvalidInputError: A required field is absent altogether (every missing field is listed), or columns
                differ in length.
        """
        missing = [f.name for f in self.fields if f.required and (f.name not in data or data[f.name] is None)]
        if missing:
            raise InvalidInputError(
                f"{self.name} needs {', '.join(missing)} ("
                + "; ".join(f"{f.name}: {f.description} [{f.unit}]" for f in self.fields if f.name in missing)
                + ")",
                code="missing_fields",
            )
        raw = {f.name: np.atleast_1d(np.asarray(_or_nan(data.get(f.name)))) for f in self.fields}
        lengths = {len(v) for v in raw.values()} - {1}
        if len(lengths) > 1:
            raise InvalidInputError(f"{self.name} input columns differ in length: {sorted(lengths)}", code="shape")
        n = lengths.pop() if lengths else 1
        columns: dict[str, np.ndarray] = {}
        problems: list[_Problem] = []
        for spec in self.fields:
            values = raw[spec.name]
            values = np.broadcast_to(values, (n,)) if len(values) != n else values
            columns[spec.name], found = _column(spec, values)
            problems.extend(p for p in found if p.rows.any())
        return columns, problems

    def impossible_values(self, data: Mapping[str, object]) -> list[str]:
        """For one patient, what is impossible among the inputs that are present (missing ones are not checked)."""
        found = []
        for spec in self.fields:
            value = data.get(spec.name)
            if value is None:
                continue
            _, problems = _column(spec, np.atleast_1d(np.asarray(value)))
            found += [p.describe(0) for p in problems if p.code == "impossible_value" and p.rows.any()]
        return found

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Band per scored row (object array); equations without bands give ``None``."""
        return np.full(len(score), None, dtype=object)

    def categories(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Equation-specific label per scored row (object array); ``None`` when the equation has none."""
        return np.full(len(score), None, dtype=object)

    @abstractmethod
    def _score(self, columns: Columns) -> np.ndarray:
        """Scores for rows that are all in range."""

    def _contributions(self, columns: Columns, score: np.ndarray) -> dict[str, np.ndarray]:
        """Per modifiable field: score minus the score with that field alone at its reference value."""
        result = {}
        for spec in self.fields:
            if spec.reference is None:
                continue
            changed = dict(columns)
            reference = np.full(len(score), spec.reference, dtype=columns[spec.name].dtype)
            changed[spec.name] = reference
            result[spec.name] = score - self._score(changed)
        return result

    def _outside_valid(
        self, columns: Columns, n: int, valid_rows: np.ndarray
    ) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """Per row, the fields outside their validated range; and the mask of rows with any."""
        flags = []
        for spec in self.fields:
            if spec.valid is None or spec.kind is not FieldKind.NUMBER:
                continue
            low, high = spec.valid
            values = columns[spec.name]
            with np.errstate(invalid="ignore"):
                flags.append((spec.name, ((values < low) | (values > high)) & valid_rows))
        result: list[tuple[str, ...]] = [()] * n
        any_outside = np.any([mask for _, mask in flags], axis=0) if flags else np.zeros(n, dtype=bool)
        for i in np.flatnonzero(any_outside).tolist():
            result[i] = tuple(name for name, mask in flags if mask[i])
        return result, any_outside


# How people write the UCUM units (for messages, cards and pages, never for parsing).
DISPLAY_UNITS = {"mm[Hg]": "mmHg", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "kg/m2": "kg/m²", "umol/L": "µmol/L",
                 "[in_i]": "in", "1": "", "a": "years"}  # fmt: skip


def display_unit(unit: str) -> str:
    """``unit`` (UCUM) as people write it: ``mm[Hg]`` -> ``mmHg``, ``mL/min/{1.73_m2}`` -> ``mL/min/1.73 m²``."""
    return DISPLAY_UNITS.get(unit, unit)


class PointScore(RiskEquation):
    """A points score: the total of per-item points, each item's points its contribution."""

    contribution_unit = "points"

    @abstractmethod
    def points(self, x: Columns) -> dict[str, np.ndarray]:
        """Points per item and row, exactly as the source's table gives them."""

    def _score(self, columns: Columns) -> np.ndarray:
        total: np.ndarray = np.sum(list(self.points(columns).values()), axis=0)
        return total

    def _contributions(self, columns: Columns, score: np.ndarray) -> dict[str, np.ndarray]:
        return self.points(columns)


_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


@dataclass(frozen=True)
class _Problem:
    """Rows of one field whose values cannot be used."""

    spec: FieldSpec
    rows: np.ndarray
    values: np.ndarray
    code: str  # missing_fields | impossible_value

    def describe(self, row: int) -> str:
        spec = self.spec
        if self.code == "missing_fields":
            return f"{spec.name} is missing ({spec.description} [{spec.unit}])"
        value = self.values[row]
        try:
            shown = f"{float(value):g}"
        except (TypeError, ValueError):
            shown = repr(str(value))
        if spec.kind is FieldKind.CATEGORY:
            return f"{spec.name} is {shown}; allowed: {', '.join(spec.categories)}"
        if spec.kind is FieldKind.BOOLEAN:
            return f"{spec.name} is {shown}; allowed: true/false (1/0, yes/no)"
        limits = (f"{spec.plausible[0]:g}–{spec.plausible[1]:g} {display_unit(spec.unit)}".rstrip() if spec.plausible
                  else "a finite number")  # fmt: skip
        return f"{spec.name} is impossible ({shown}); allowed {limits}"


def _or_nan(value: object) -> object:
    return np.nan if value is None else value


def _column(spec: FieldSpec, array: np.ndarray) -> tuple[np.ndarray, list[_Problem]]:
    """Convert one field's values; return them and the problems of unusable rows."""
    if spec.kind is FieldKind.CATEGORY:
        text = np.char.lower(np.char.strip(array.astype(str)))
        missing = np.isin(text, ("nan", ""))
        bad = ~np.isin(text, spec.categories) & ~missing
        return text, [_Problem(spec, missing, text, "missing_fields"), _Problem(spec, bad, text, "impossible_value")]
    if spec.kind is FieldKind.BOOLEAN:
        if array.dtype.kind in "USO":
            text = np.char.lower(np.char.strip(array.astype(str)))
            values = np.where(np.isin(text, list(_TRUE)), 1.0, np.where(np.isin(text, list(_FALSE)), 0.0, np.inf))
            values[np.isin(text, ("nan", ""))] = np.nan
        else:
            values = _as_float(array)
        missing = np.isnan(values) if spec.required else np.zeros(len(values), dtype=bool)
        bad = ~np.isin(values, (0.0, 1.0)) & ~np.isnan(values)
        return values, [
            _Problem(spec, missing, values, "missing_fields"),
            _Problem(spec, bad, array, "impossible_value"),
        ]
    values = _as_float(array)
    missing = np.isnan(values) if spec.required else np.zeros(len(values), dtype=bool)
    impossible = np.isinf(values)
    if spec.plausible is not None:
        with np.errstate(invalid="ignore"):
            impossible |= (values < spec.plausible[0]) | (values > spec.plausible[1])
    return values, [
        _Problem(spec, missing, values, "missing_fields"),
        _Problem(spec, impossible, array if array.dtype.kind in "USO" else values, "impossible_value"),
    ]


def _as_float(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind in "fiub":
        return array.astype(np.float64)
    out = np.full(len(array), np.nan)
    for i, value in enumerate(array.tolist()):
        try:
            out[i] = float(value) if value is not None and value != "" else np.nan
        except (TypeError, ValueError):
            out[i] = np.inf  # not a number: reported as impossible
    return out


def banded(score: np.ndarray, edges: tuple[float, ...], bands: tuple[RiskBand, ...]) -> np.ndarray:
    """``bands[i]`` where ``edges[i-1] <= score < edges[i]``: a vectorised threshold table."""
    table = np.array(bands, dtype=object)
    result: np.ndarray = table[np.searchsorted(np.asarray(edges), score, side="right")]
    return result
