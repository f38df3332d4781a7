"""ML risk models behind any backend, scored exactly like the validated equations.

:class:`ModelRiskEquation` adapts a loaded backend whose spec declares tabular ``features`` to the
:class:`~cds.models.risk.RiskEquation` interface, so ML models get the same range policy (impossible values
refused, values outside the training range not scored), counterfactual contributions, cohort-file scoring and
FHIR output as the equations.
"""

from __future__ import annotations

import numpy as np

from cds.errors import InvalidSpecError
from cds.models.backend import Backend
from cds.models.risk.base import Columns, FieldSpec, RiskBand, RiskEquation, banded
from cds.models.spec import Task
from cds.results.risk import MethodKind, MethodRef


class ModelRiskEquation(RiskEquation):
    """A risk model (``task: risk`` with ``features``) as an equation over a loaded backend.

    The score is the probability of the model's last output column (the positive class); the band compares it
    with the spec's operating threshold (below: low, at or above: high).

    Args:
        backend: A loaded backend for the model.
    """

    contribution_unit = "change in predicted probability if only this input took its reference (training mean)"

    def __init__(self, backend: Backend) -> None:
        spec = backend.spec
        if spec.task is not Task.RISK or not spec.features:
            raise InvalidSpecError(f"model {spec.key} is not a tabular risk model (task risk with features)")
        self.backend = backend
        self.name = spec.name
        self.version = spec.version
        self.title = spec.description
        self.source = f"model card {spec.model_card.name}"
        self.population = spec.intended_use
        self.score_unit = "probability"
        self.outcome = spec.outcome or spec.description
        self.fields = tuple(
            FieldSpec(f.name, f.unit, f.description, valid=f.valid, plausible=f.plausible, reference=f.reference)
            for f in spec.features
        )
        self._threshold = spec.thresholds.get(spec.labels[0]) if spec.labels else None
        self._probability_output = next(t.name for t in spec.outputs if t.dtype.value.startswith("float"))

    def method(self) -> MethodRef:
        """Identity: the model's name, version and the sha256 of the artifact the backend runs."""
        identity = self.backend.metadata().model
        return MethodRef(
            kind=MethodKind.MODEL,
            name=identity.name,
            version=identity.version,
            title=self.title,
            source=self.source,
            sha256=identity.sha256,
            backend=identity.backend,
        )

    def _score(self, columns: Columns) -> np.ndarray:
        matrix = np.stack([columns[f.name] for f in self.fields], axis=1).astype(np.float32)
        outputs = self.backend.infer({self.backend.spec.inputs[0].name: matrix})
        probability: np.ndarray = outputs[self._probability_output][:, -1].astype(np.float64)
        return probability

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Low below the operating threshold, high at or above it."""
        if self._threshold is None:
            return np.full(len(score), None, dtype=object)
        return banded(score, (self._threshold,), (RiskBand.LOW, RiskBand.HIGH))
