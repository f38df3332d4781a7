"""The worklist's triage: each finding's urgency from the spec of the model that produced it."""

from __future__ import annotations

from cds.errors import ModelNotFoundError
from cds.models.registry import ModelRegistry
from cds.models.spec import ModelSpec, Urgency
from cds.results.classification import Finding
from cds.store.worklist import Triage, positive_is_routine


def registry_triage(registry: ModelRegistry) -> Triage:
    """A :data:`~cds.store.worklist.Triage` reading urgencies from ``registry``'s specs.

    A finding of a model no longer registered (its outcome names ``name:version``) is triaged as a spec without
    urgencies: positive means routine.
    """
    specs: dict[str, ModelSpec | None] = {}

    def triage(model: str, finding: Finding) -> Urgency | None:
        if model not in specs:
            name, _, version = model.partition(":")
            try:
                specs[model] = registry.get(name, version or None)
            except ModelNotFoundError:
                specs[model] = None
        spec = specs[model]
        if spec is None:
            return positive_is_routine(model, finding)
        return spec.finding_urgency(finding.label, finding.probability, finding.positive)

    return triage
