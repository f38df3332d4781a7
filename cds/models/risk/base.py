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

import contextlib
import functools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
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
COUNTERFACTUAL_ROWS = 65_536  # rows of stacked counterfactuals per scoring call


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

        Every check and every contribution is computed on whole columns: the cost per patient falls with the
        batch, and one patient costs a fixed number of array operations.

        Args:
            data: Inputs by field name, in the units the fields declare.
            row_errors: Instead of refusing the whole request, give rows with missing or impossible values no
                score and an explanation in ``EquationOutput.errors`` (for cohort files).

        Raises:
            InvalidInputError: Missing fields (all listed) or impossible values (field and rows named); with
                ``row_errors`` only for a field absent from every row.
        """
        prepared = self._prepare(data)
        columns, n = prepared.columns, prepared.n
        errors = [""] * n
        valid_rows = np.ones(n, dtype=bool)
        for problem in prepared.problems:
            rows = np.flatnonzero(problem.rows)
            if not row_errors:
                where = f" (rows {', '.join(str(i) for i in rows[:5])}{'…' if len(rows) > 5 else ''})" if n > 1 else ""
                raise InvalidInputError(problem.describe(int(rows[0])) + where, code=problem.code)
            valid_rows &= ~problem.rows
            for i in rows.tolist():
                errors[i] = f"{errors[i]}; {problem.describe(i)}" if errors[i] else problem.describe(i)
        outside, outside_any = self._outside_valid(prepared, valid_rows)
        scored = valid_rows & ~outside_any
        if scored.all():
            score, all_contributions = self._score_and_contributions(columns)
            return EquationOutput(score=score, band=self.bands(score, columns), out_of_range=outside,
                                  contributions=all_contributions, category=self.categories(score, columns),
                                  errors=errors, columns=columns)  # fmt: skip
        score = np.full(n, np.nan)
        contributions: dict[str, np.ndarray] = {}
        bands = np.full(n, None, dtype=object)
        categories = np.full(n, None, dtype=object)
        if scored.any():
            subset = {k: v[scored] for k, v in columns.items()}
            score[scored], subset_contributions = self._score_and_contributions(subset)
            for name, values in subset_contributions.items():
                contributions[name] = np.full(n, np.nan)
                contributions[name][scored] = values
            bands[scored] = self.bands(score[scored], subset)
            categories[scored] = self.categories(score[scored], subset)
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
        prepared = self._prepare(data)
        return prepared.columns, prepared.problems

    @functools.cached_property
    def _limits(self) -> _Limits:
        return _Limits.of(self.fields)

    def _rows(self, columns: Iterable[np.ndarray]) -> int:
        """The number of rows of input columns (of one patient: 1).

        Raises:
            InvalidInputError: Columns of different lengths.
        """
        lengths = {len(v) for v in columns} - {1}
        if len(lengths) > 1:
            raise InvalidInputError(f"{self.name} input columns differ in length: {sorted(lengths)}", code="shape")
        return lengths.pop() if lengths else 1

    def _prepare(self, data: Mapping[str, object]) -> _Prepared:
        missing = [f.name for f in self.fields if f.required and (f.name not in data or data[f.name] is None)]
        if missing:
            raise InvalidInputError(
                f"{self.name} needs {', '.join(missing)} ("
                + "; ".join(f"{f.name}: {f.description} [{f.unit}]" for f in self.fields if f.name in missing)
                + ")",
                code="missing_fields",
            )
        limits = self._limits
        numbers = [data.get(spec.name) for spec in limits.numeric]
        if all(type(v) in _SCALARS for v in numbers) and all(
            type(data.get(spec.name)) in _TEXT for spec in limits.categorical
        ):  # one patient's plain values (a service call): no conversions
            n, raw = 1, {}
            matrix = np.array([[np.nan if v is None else v] for v in numbers], dtype=np.float64)
            matrix = matrix.reshape(len(numbers), 1)
        else:
            raw = {f.name: np.atleast_1d(np.asarray(_or_nan(data.get(f.name)))) for f in self.fields}
            n = self._rows(raw.values())
            # Numbers and booleans: one matrix (field x row), checked against the fields' limits in whole-array steps.
            matrix = np.empty((len(limits.numeric), n))
            for i, spec in enumerate(limits.numeric):
                matrix[i] = _as_number(spec, raw[spec.name])
        columns: dict[str, np.ndarray] = {spec.name: matrix[i] for i, spec in enumerate(limits.numeric)}
        problems: list[_Problem] = []
        # One pass for the common case (every value present and plausible); the details only for fields that fail.
        usable = (matrix >= limits.plausible_low) & (matrix <= limits.plausible_high)  # NaN and infinities fail
        binary = matrix[limits.first_boolean:]
        usable[limits.first_boolean:] &= (binary == 0.0) | (binary == 1.0)
        for i in np.flatnonzero(~usable.all(axis=1)).tolist():
            spec = limits.numeric[i]
            absent = np.isnan(matrix[i])
            missing_rows = absent if spec.required else np.zeros(n, dtype=bool)
            given = raw.get(spec.name)
            shown = np.broadcast_to(given, (n,)) if given is not None and given.dtype.kind in "USO" else matrix[i]
            problems += [p for p in (_Problem(spec, missing_rows, matrix[i], "missing_fields"),
                                     _Problem(spec, ~usable[i] & ~absent, shown, "impossible_value"))
                         if p.rows.any()]  # fmt: skip
        for spec in limits.categorical:
            values = raw[spec.name] if raw else np.atleast_1d(np.asarray(_or_nan(data.get(spec.name))))
            columns[spec.name], found = _category(spec, np.broadcast_to(values, (n,)) if len(values) != n else values)
            problems.extend(p for p in found if p.rows.any())
        return _Prepared(columns=columns, problems=problems, matrix=matrix, n=n)

    def impossible_values(self, data: Mapping[str, object]) -> list[str]:
        """For one patient, what is impossible among the inputs that are present (missing ones are not checked)."""
        present = {f.name: data[f.name] for f in self.fields if data.get(f.name) is not None}
        stand_ins = {f.name: _stand_in(f) for f in self.fields if f.name not in present}
        try:
            problems = self._prepare(present | stand_ins).problems
        except InvalidInputError:  # columns of different lengths: not one patient
            return []
        return [p.describe(0) for p in problems if p.code == "impossible_value" and p.spec.name in present]

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Band per scored row (object array); equations without bands give ``None``."""
        return np.full(len(score), None, dtype=object)

    def categories(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Equation-specific label per scored row (object array); ``None`` when the equation has none."""
        return np.full(len(score), None, dtype=object)

    @abstractmethod
    def _score(self, columns: Columns) -> np.ndarray:
        """Scores for rows that are all in range."""

    def _score_and_contributions(self, columns: Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Scores and per-field contributions for rows that are all in range."""
        score = self._score(columns)
        return score, self._contributions(columns, score)

    def _contributions(self, columns: Columns, score: np.ndarray) -> dict[str, np.ndarray]:
        """Per modifiable field: score minus the score with that field alone at its reference value.

        The counterfactuals of a block of rows are scored in one call on the stacked columns (one backend call for
        an ML model), in blocks of at most :data:`COUNTERFACTUAL_ROWS` rows.
        """
        changed = tuple(spec for spec in self.fields if spec.reference is not None)
        if not changed:
            return {}
        n = len(score)
        counterfactual = np.empty((len(changed), n))
        block = max(1, COUNTERFACTUAL_ROWS // len(changed))  # rows per call: memory bounded, arrays in cache
        for start in range(0, n, block):
            rows = slice(start, min(start + block, n))
            part = {name: values[rows] for name, values in columns.items()}
            counterfactual[:, rows] = self._score(counterfactuals(part, changed)).reshape(len(changed), -1)
        return {spec.name: score - counterfactual[i] for i, spec in enumerate(changed)}

    def _outside_valid(self, prepared: _Prepared, valid_rows: np.ndarray) -> tuple[list[tuple[str, ...]], np.ndarray]:
        """Per row, the fields outside their validated range; and the mask of rows with any."""
        limits = self._limits
        numbers = slice(0, limits.first_boolean)  # booleans have no validated range
        flags = (prepared.matrix[numbers] < limits.valid_low[numbers]) | (
            prepared.matrix[numbers] > limits.valid_high[numbers])  # NaN (an absent optional value) is not outside
        if not valid_rows.all():
            flags &= valid_rows
        any_outside: np.ndarray = np.asarray(flags.any(axis=0))
        result: list[tuple[str, ...]] = [()] * prepared.n
        rows = np.flatnonzero(any_outside)
        if len(rows):
            # One tuple of names per distinct pattern of fields, not per row.
            codes = (flags[:, rows].T.astype(np.int64) << np.arange(len(flags), dtype=np.int64)).sum(axis=1)
            patterns, which = np.unique(codes, return_inverse=True)
            names = [tuple(spec.name for i, spec in enumerate(limits.numeric) if code >> i & 1)
                     for code in patterns.tolist()]  # fmt: skip
            for row, pattern in zip(rows.tolist(), which.tolist(), strict=True):
                result[row] = names[pattern]
        return result, any_outside


# How people write the UCUM units (for messages, cards and pages, never for parsing).
DISPLAY_UNITS = {"mm[Hg]": "mmHg", "mL/min/{1.73_m2}": "mL/min/1.73 m²", "kg/m2": "kg/m²", "umol/L": "µmol/L",
                 "[in_i]": "in", "[lb_av]": "lb", "[degF]": "°F", "Cel": "°C", "1": "", "a": "years"}  # fmt: skip


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


_SCALARS = frozenset({int, float, bool, type(None)})
_TEXT = frozenset({str, type(None)})
_MISSING = ("nan", "", "none")
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


def counterfactuals(columns: Columns, changed: tuple[FieldSpec, ...], *, keep: bool = False) -> dict[str, np.ndarray]:
    """The rows again for each of ``changed``, with only that field at its reference: one batch for them all.

    With ``keep``, the rows themselves come first.
    """
    n = len(next(iter(columns.values())))
    copies = len(changed) + keep
    stacked = {name: np.concatenate((values,) * copies) for name, values in columns.items()}
    for i, spec in enumerate(changed, keep):
        if isinstance(spec.reference, str) and stacked[spec.name].dtype.kind == "U":
            stacked[spec.name] = stacked[spec.name].astype(object)  # room for the reference in a text column
        stacked[spec.name][i * n:(i + 1) * n] = spec.reference
    return stacked


def _or_nan(value: object) -> object:
    return np.nan if value is None else value


@dataclass(frozen=True)
class _Prepared:
    """Inputs converted for scoring: the columns, unusable rows, and the numeric fields as one matrix."""

    columns: dict[str, np.ndarray]
    problems: list[_Problem]
    matrix: np.ndarray  # numeric and boolean fields x rows (the columns' rows are views of it)
    n: int


@dataclass(frozen=True)
class _Limits:
    """An equation's numeric fields (numbers, then booleans) and their limits as column vectors."""

    numeric: tuple[FieldSpec, ...]
    categorical: tuple[FieldSpec, ...]
    first_boolean: int
    plausible_low: np.ndarray
    plausible_high: np.ndarray
    valid_low: np.ndarray
    valid_high: np.ndarray

    @classmethod
    def of(cls, fields: tuple[FieldSpec, ...]) -> _Limits:
        numbers = tuple(f for f in fields if f.kind is FieldKind.NUMBER)
        booleans = tuple(f for f in fields if f.kind is FieldKind.BOOLEAN)
        finite = np.finfo(np.float64).max  # an infinity is never plausible

        def bounds(pairs: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
            low, high = zip(*pairs, strict=True) if pairs else ((), ())
            return np.array(low, dtype=np.float64).reshape(-1, 1), np.array(high, dtype=np.float64).reshape(-1, 1)

        plausible = bounds([f.plausible or (-finite, finite) for f in numbers] + [(0.0, 1.0)] * len(booleans))
        valid = bounds([f.valid or (-np.inf, np.inf) for f in numbers] + [(-np.inf, np.inf)] * len(booleans))
        return cls(numeric=numbers + booleans, categorical=tuple(f for f in fields if f.kind is FieldKind.CATEGORY),
                   first_boolean=len(numbers), plausible_low=plausible[0], plausible_high=plausible[1],
                   valid_low=valid[0], valid_high=valid[1])  # fmt: skip


def _stand_in(spec: FieldSpec) -> object:
    """A possible value for an absent field, so that one patient's present values can be checked alone."""
    if spec.kind is FieldKind.CATEGORY:
        return spec.categories[0]
    if spec.plausible is not None:
        return spec.plausible[0]
    return 0.0


def _category(spec: FieldSpec, array: np.ndarray) -> tuple[np.ndarray, list[_Problem]]:
    """A category field's values (lower case, trimmed) and its unusable rows."""
    if array.dtype.kind == "U":
        exact = array == spec.categories[0]
        for category in spec.categories[1:]:
            exact |= array == category
        if exact.all():
            return array, []  # the common case, without per-string work
    text = np.char.lower(np.char.strip(array.astype(str)))
    missing = np.isin(text, _MISSING)
    bad = ~np.isin(text, spec.categories) & ~missing
    return text, [_Problem(spec, missing, text, "missing_fields"), _Problem(spec, bad, text, "impossible_value")]


def _as_number(spec: FieldSpec, array: np.ndarray) -> np.ndarray:
    """A numeric or boolean field's values as floats: NaN where absent, infinite where not a number."""
    if array.dtype.kind in "fiub":
        return array
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)  # numbers that came as objects (a mixed column)
        except (TypeError, ValueError):
            pass
    text = np.char.lower(np.char.strip(array.astype(str)))
    values = np.full(len(text), np.inf)  # not a number: reported as impossible
    values[np.isin(text, _MISSING)] = np.nan
    if spec.kind is FieldKind.BOOLEAN:
        values[np.isin(text, list(_TRUE))] = 1.0
        values[np.isin(text, list(_FALSE))] = 0.0
    for i in np.flatnonzero(np.isinf(values)).tolist():
        with contextlib.suppress(ValueError):
            values[i] = float(text[i])
    return values


def banded(score: np.ndarray, edges: tuple[float, ...], bands: tuple[RiskBand, ...]) -> np.ndarray:
    """``bands[i]`` where ``edges[i-1] <= score < edges[i]``: a vectorised threshold table."""
    index = np.zeros(len(score), dtype=np.intp)
    for edge in edges:
        index += score >= edge
    result: np.ndarray = np.array(bands, dtype=object)[index]
    return result
