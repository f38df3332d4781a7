"""Pixel-level plausibility gate: is the decoded image what the model was trained on, whatever its tags say?

A one-label classifier (e.g. ``chest-xray-plausibility``: "is this a frontal chest radiograph?") scores the
display-normalised image at its own input size; below its operating threshold the image is refused with
``implausible_image`` before the main model runs. The model a contract requires is named in
:attr:`~cds.models.spec.ImagingContract.plausibility_model`.
"""

from __future__ import annotations

import numpy as np

from cds.errors import InvalidInputError
from cds.models.backend import Backend
from cds.models.spec import Task
from cds.pipelines.imaging.radiograph import to_model_input


class PlausibilityCheck:
    """Scores display-normalised images with a one-label classifier and refuses those below its threshold.

    Args:
        backend: A loaded backend for a classification model with one label, one input [-1, 1, S, S] whose
            value range is that of the scaled image (default [0, 1]) and a threshold for its label.
    """

    def __init__(self, backend: Backend) -> None:
        spec = backend.spec
        shape = spec.inputs[0].shape
        if spec.task is not Task.CLASSIFICATION or len(spec.labels) != 1 or len(shape) != 4 or shape[1] != 1:
            raise InvalidInputError(f"{spec.key} is not a one-label single-channel image classifier",
                                    code="wrong_task")
        label = spec.labels[0]
        if label not in spec.thresholds:
            raise InvalidInputError(f"{spec.key} has no operating threshold for {label!r}", code="wrong_task")
        self.backend = backend
        self.label = label
        self.threshold = spec.thresholds[label]
        self.size = int(shape[2])
        self.value_range = spec.inputs[0].value_range or (0.0, 1.0)

    def score(self, pixels: np.ndarray) -> float:
        """Probability that ``pixels`` (float32 [H, W] in [0, 1], bright = dense) is what the gate accepts."""
        spec = self.backend.spec
        batch = to_model_input(pixels, self.size, self.value_range)[None]
        output = self.backend.infer({spec.inputs[0].name: batch})[spec.outputs[0].name]
        return float(np.asarray(output).reshape(-1)[0])

    def __call__(self, pixels: np.ndarray, *, source: str = "image") -> float:
        """The score, when at or above the threshold.

        Raises:
            InvalidInputError: ``implausible_image``, naming the score, the threshold and the gate's model.
        """
        score = self.score(pixels)
        if score < self.threshold:
            raise InvalidInputError(
                f"{source}: the pixels do not look like a {self.label.replace('_', ' ')} "
                f"(score {score:.3f} < threshold {self.threshold:.3f}, {self.backend.spec.key}); "
                "refused whatever its DICOM tags say",
                code="implausible_image",
            )
        return score
