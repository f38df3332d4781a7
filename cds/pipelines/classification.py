"""Classification over ready-made tensors: batch them, run the model, threshold each label.

Task-specific pipelines (DICOM pre-reads, pathology tiles) do their own decoding and preprocessing and reuse
:func:`findings_from_probabilities` for the last step.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from cds.errors import InvalidInputError
from cds.models.backend import Backend
from cds.models.spec import ModelSpec, Task
from cds.pipelines.base import Pipeline
from cds.results.classification import ClassificationResult, Finding
from cds.results.identity import hash_arrays

TensorInput = np.ndarray | Mapping[str, np.ndarray]


def findings_from_probabilities(spec: ModelSpec, probabilities: np.ndarray) -> tuple[Finding, ...]:
    """One finding per label for one item's probability vector."""
    return tuple(
        Finding(
            label=label,
            probability=float(p),
            threshold=spec.thresholds.get(label),
            positive=label in spec.thresholds and float(p) >= spec.thresholds[label],
        )
        for label, p in zip(spec.labels, probabilities, strict=True)
    )


class TensorClassificationPipeline(Pipeline[TensorInput, ClassificationResult]):
    """Classifies arrays that already match the model's input contract (one item, or a batch).

    A single-input model takes a bare array; a multi-input model takes a mapping of arrays by tensor name. An
    array missing only the batch dimension is treated as one item.
    """

    def __init__(self, backend: Backend) -> None:
        super().__init__(backend)
        if backend.spec.task is not Task.CLASSIFICATION:
            raise InvalidInputError(
                f"model {backend.spec.key} is a {backend.spec.task.value} model, not classification",
                code="wrong_task",
            )

    def preprocess(self, raw: TensorInput) -> dict[str, np.ndarray]:
        """Name and batch the arrays; contract checks happen in the backend before inference."""
        spec = self.backend.spec
        if isinstance(raw, np.ndarray):
            if len(spec.inputs) != 1:
                names = [t.name for t in spec.inputs]
                raise InvalidInputError(
                    f"model {spec.key} takes several inputs {names}; pass them by name", code="input_names"
                )
            raw = {spec.inputs[0].name: raw}
        tensors = {}
        for tensor in spec.inputs:
            array = raw.get(tensor.name)
            if array is None:
                continue
            if isinstance(array, np.ndarray) and array.ndim == len(tensor.shape) - 1:
                array = array[None]
            tensors[tensor.name] = array
        extra = {k: v for k, v in raw.items() if k not in tensors}
        return tensors | extra  # the backend reports missing or unexpected names

    def postprocess(
        self, inputs: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], elapsed_ms: float
    ) -> list[ClassificationResult]:
        """One result per item, each with its own input hash."""
        spec = self.backend.spec
        model = self.backend.metadata().model
        probabilities = outputs[spec.outputs[0].name]
        results = []
        for index, row in enumerate(probabilities):
            item = {name: array[index : index + 1] for name, array in inputs.items()}
            results.append(
                ClassificationResult(
                    model=model,
                    input_sha256=hash_arrays(item),
                    findings=findings_from_probabilities(spec, row),
                    intended_use=spec.intended_use,
                    warnings=("not for diagnostic use",) if spec.not_for_diagnostic_use else (),
                    inference_ms=elapsed_ms / len(probabilities),
                )
            )
        return results
