"""Equations whose risk is a link function of a linear predictor, with a coefficient table per group of patients.

    risk = link_g(sum over terms t of beta[g, t] * term_t)

Each term is a product of basis variables, each basis variable a transform of one or more inputs (a logarithm, a
centring, one piece of a linear spline), and ``g`` the patient's group (sex, race, the model the known optional
inputs select). The Pooled Cohort Equations and PREVENT have this form.

Everything is computed on whole columns, a block of rows at a time (so that the intermediate arrays stay in the
processor's cache): each row's coefficients are looked up in the small table, and the linear predictor is one sum
of products. A field's contribution (the score minus the score with only that field at its reference) needs only
the terms the field enters: their change is added to the linear predictor, and every counterfactual goes through
the link together with the score itself. For a few patients (a service call) the counterfactuals are instead
scored as extra rows, which takes fewer array operations.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cds.models.risk.base import Columns, FieldSpec, RiskEquation, counterfactuals

BLOCK_ROWS = 16_384  # rows per block: a block's terms, coefficients and counterfactuals fit in a core's L2 cache
STACKED_ROWS = 256  # up to this many rows with counterfactuals, fewer array operations beat less arithmetic


@dataclass(frozen=True)
class Basis:
    """One basis variable: ``transform`` of the named input columns, in that order."""

    name: str
    fields: tuple[str, ...]
    transform: Callable[..., np.ndarray]


class LinearPredictorEquation(RiskEquation):
    """A risk equation of the form above.

    Subclasses set :attr:`basis` and :attr:`terms` and implement :meth:`groups`, :meth:`coefficients` and
    :meth:`link`; scores and contributions are computed here.
    """

    basis: tuple[Basis, ...]
    terms: tuple[tuple[str, ...], ...]  # per term, the basis variables multiplied; () is the constant

    @abstractmethod
    def groups(self, columns: Columns) -> np.ndarray:
        """Per row, its group: an index into the rows of :meth:`coefficients`."""

    @abstractmethod
    def coefficients(self) -> np.ndarray:
        """The coefficient table, groups x :attr:`terms`."""

    @abstractmethod
    def link(self, linear: np.ndarray, groups: np.ndarray) -> np.ndarray:
        """Risk from linear predictors (counterfactuals x rows) of rows in ``groups``."""

    def _score(self, columns: Columns) -> np.ndarray:
        risk: np.ndarray = self._blockwise(columns, ())[0]
        return risk

    def _score_and_contributions(self, columns: Columns) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        changed = self._modifiable
        n = len(next(iter(columns.values())))
        if n * (1 + len(changed)) <= STACKED_ROWS:  # a few patients: the counterfactuals as more rows, in one go
            risks = self._risks(counterfactuals(columns, changed, keep=True), ()).reshape(1 + len(changed), n)
        else:  # many: only the terms each field enters, block by block
            risks = self._blockwise(columns, changed)
        risks[1:] -= risks[0]
        risks[1:] *= -1.0
        return risks[0], {spec.name: risks[i] for i, spec in enumerate(changed, 1)}

    def _blockwise(self, columns: Columns, changed: tuple[FieldSpec, ...]) -> np.ndarray:
        """:meth:`_risks` over blocks of rows whose intermediate arrays stay in the processor's cache."""
        n = len(next(iter(columns.values())))
        if n <= BLOCK_ROWS:
            return self._risks(columns, changed)
        risks = np.empty((1 + len(changed), n))
        for start in range(0, n, BLOCK_ROWS):
            rows = slice(start, start + BLOCK_ROWS)
            risks[:, rows] = self._risks({name: values[rows] for name, values in columns.items()}, changed)
        return risks

    @functools.cached_property
    def _modifiable(self) -> tuple[FieldSpec, ...]:
        return tuple(spec for spec in self.fields if spec.reference is not None)

    @functools.cached_property
    def _table(self) -> np.ndarray:
        table = np.asarray(self.coefficients(), dtype=np.float64)
        if table.shape[1] != len(self.terms):
            raise ValueError(f"{self.name}: {table.shape[1]} coefficients per group for {len(self.terms)} terms")
        return table

    @functools.cached_property
    def _table_by_term(self) -> np.ndarray:
        """The coefficient table term by term: each term's coefficients for every group, contiguous."""
        return np.ascontiguousarray(self._table.T)

    @functools.cached_property
    def _terms_of(self) -> dict[str, tuple[int, ...]]:
        """Per modifiable field, the terms it enters (through any basis variable computed from it)."""
        result = {}
        for spec in self._modifiable:
            touched = {basis.name for basis in self.basis if spec.name in basis.fields}
            result[spec.name] = tuple(i for i, factors in enumerate(self.terms) if touched & set(factors))
        return result

    def _risks(self, columns: Columns, changed: tuple[FieldSpec, ...]) -> np.ndarray:
        """Risk per row: row 0 as given, row ``i`` with only ``changed[i - 1]`` at its reference."""
        groups = np.asarray(self.groups(columns), dtype=np.intp)
        n = len(groups)
        table = self._table_by_term
        coefficients = table[:, groups]
        bases = {basis.name: basis.transform(*(columns[name] for name in basis.fields)) for basis in self.basis}
        terms = np.empty((len(self.terms), n))
        for i, factors in enumerate(self.terms):
            _product(factors, bases, terms[i])
        linear = np.empty((1 + len(changed), n))
        np.einsum("tn,tn->n", coefficients, terms, out=linear[0])
        change = np.empty(n)
        for row, spec in enumerate(changed, 1):
            reference = np.array([spec.reference], dtype=np.float64)
            moved = bases | {basis.name: basis.transform(*(reference if name == spec.name else columns[name]
                                                           for name in basis.fields))
                             for basis in self.basis if spec.name in basis.fields}  # fmt: skip
            linear[row] = linear[0]
            for term in self._terms_of[spec.name]:
                _product(self.terms[term], moved, change)
                change -= terms[term]
                change *= coefficients[term]
                linear[row] += change
        return self.link(linear, groups)


def _product(factors: tuple[str, ...], bases: dict[str, np.ndarray], out: np.ndarray) -> None:
    """The product of the named basis variables, written into ``out`` (1 for no factors)."""
    if not factors:
        out[...] = 1.0
    elif len(factors) == 1:
        out[...] = bases[factors[0]]
    else:
        np.multiply(bases[factors[0]], bases[factors[1]], out=out)
        for name in factors[2:]:
            out *= bases[name]
