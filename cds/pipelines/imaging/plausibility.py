"""Pixel-level plausibility gate: is the decoded image what the model was trained on, whatever its tags say?

A one-label classifier (e.g. ``chest-xray-plausibility``: "is this a frontal chest radiograph?") scores the
display-normalised image at its own input size. The decision is three-way and set per site
(:class:`PlausibilityPolicy`): at or above the model's operating threshold the image is accepted; below it, a
``refuse`` site refuses it (``implausible_image``) before the main model runs, while a ``warn`` site accepts it with
an ``out_of_distribution`` warning that every output carries, unless the score is below the site's
``refuse_below`` floor, where it is refused all the same. The model a contract requires is named in
:attr:`~cds.models.spec.ImagingContract.plausibility_model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from cds.errors import InvalidInputError
from cds.models.backend import Backend
from cds.models.spec import Task
from cds.pipelines.imaging.radiograph import to_model_input


class PlausibilityPolicy(StrEnum):
    """What a site does with an image that scores below the gate's threshold."""

    REFUSE = "refuse"
    WARN = "warn"


OUT_OF_DISTRIBUTION = "out_of_distribution"


@dataclass(frozen=True)
class Verdict:
    """An accepted image's score, and the warnings its outputs must carry (none when it passed outright)."""

    score: float
    warnings: tuple[str, ...] = ()


class PlausibilityCheck:
    """Scores display-normalised images with a one-label classifier and decides as the site's policy says.

    Args:
        backend: A loaded backend for a classification model with one label, one input [-1, 1, S, S] whose
            value range is that of the scaled image (default [0, 1]) and a threshold for its label.
        policy: What happens below the threshold (:class:`PlausibilityPolicy`).
        refuse_below: Under ``warn``, scores below this are refused all the same (0: never).
    """

    def __init__(self, backend: Backend, *, policy: PlausibilityPolicy = PlausibilityPolicy.REFUSE,
                 refuse_below: float = 0.0) -> None:
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
        self.policy = policy
        self.refuse_below = refuse_below

    def score(self, pixels: np.ndarray) -> float:
        """Probability that ``pixels`` (float32 [H, W] in [0, 1], bright = dense) is what the gate accepts."""
        spec = self.backend.spec
        batch = to_model_input(pixels, self.size, self.value_range)[None]
        output = self.backend.infer({spec.inputs[0].name: batch})[spec.outputs[0].name]
        return float(np.asarray(output).reshape(-1)[0])

    def judge(self, pixels: np.ndarray, *, source: str = "image") -> Verdict:
        """Accept (with an ``out_of_distribution`` warning when below the threshold under ``warn``) or refuse.

        Raises:
            InvalidInputError: ``implausible_image``, naming the score, the threshold and the gate's model.
        """
        score = self.score(pixels)
        what = f"{self.label.replace('_', ' ')} (score {score:.3f}, threshold {self.threshold:.3f}, " \
               f"{self.backend.spec.key})"
        if score >= self.threshold:
            return Verdict(score)
        if self.policy is PlausibilityPolicy.WARN and score >= self.refuse_below:
            return Verdict(score, (f"{OUT_OF_DISTRIBUTION}: the pixels do not look like a {what}; read with "
                                   "caution, the model was not trained on images like this",))
        raise InvalidInputError(f"{source}: the pixels do not look like a {what}; refused whatever its DICOM tags say",
                                code="implausible_image")
