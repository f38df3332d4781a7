"""A risk method by name, opened for scoring outside the service (the CLI, batch runs).

An equation, or a registered tabular risk model on ONNX Runtime adapted to the same interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cds.errors import ModelNotFoundError
from cds.models.risk import RiskEquation, available_equations
from cds.models.spec import Task
from cds.results.risk import MethodRef


@contextlib.contextmanager
def open_risk_method(name: str, registry: Path | None) -> Iterator[tuple[RiskEquation, MethodRef]]:
    """An equation by name, or else a registered tabular risk model on ONNX Runtime, adapted to one interface.

    Raises:
        ModelNotFoundError: Neither (the message lists both).
    """
    from cds.models.registry import ModelRegistry
    from cds.models.spec import BackendKind
    from cds.pipelines.risk.equation import equation_ref
    from cds.pipelines.risk.model import ModelRiskEquation
    from cds.serving.backends import create_backend
    from cds.settings import Settings

    equations = available_equations()
    if name in equations:
        yield equations[name], equation_ref(equations[name])
        return
    models = ModelRegistry.from_directory(registry or Settings().registry_dir)
    risk_models = sorted(s.name for s in models if s.task is Task.RISK)
    if name not in risk_models:
        raise ModelNotFoundError(
            f"no risk equation or risk model {name!r}; equations: {', '.join(sorted(equations))}; "
            f"models: {', '.join(risk_models) or 'none'}"
        )
    with create_backend(BackendKind.ONNXRUNTIME, models.get(name)) as backend:
        adapted = ModelRiskEquation(backend)
        yield adapted, adapted.method()
