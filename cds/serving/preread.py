"""Assemble pre-read pipelines from the registry: the model's backend plus every model its contract requires.

The one place where a chest radiograph model and the plausibility gate its imaging contract names are loaded
together; the CLI, the benchmarks and the service all build their pipelines here.
"""

from __future__ import annotations

from contextlib import ExitStack

from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines.plausibility import PlausibilityCheck
from cds.pipelines.radiograph_preread import RadiographPrereadPipeline
from cds.serving.backends import create_backend


def radiograph_pipeline(models: ModelRegistry, spec: ModelSpec, stack: ExitStack, *,
                        kind: BackendKind = BackendKind.ONNXRUNTIME, saliency_grid: int = 7
                        ) -> RadiographPrereadPipeline:
    """A radiograph pre-read pipeline whose backends close with ``stack``.

    Raises:
        ModelNotFoundError: The plausibility model the contract names is not in the registry.
    """
    backend = stack.enter_context(create_backend(kind, spec))
    key = spec.imaging.plausibility_model if spec.imaging is not None else None
    gate = None
    if key is not None:
        name, version = key.split(":", 1)
        gate = PlausibilityCheck(stack.enter_context(create_backend(kind, models.get(name, version))))
    return RadiographPrereadPipeline(backend, saliency_grid=saliency_grid, plausibility=gate)
