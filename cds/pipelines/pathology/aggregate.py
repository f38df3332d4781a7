"""From per-patch tumour probabilities to one slide-level answer.

A slide is hundreds to hundreds of thousands of patches, and tumour may fill one corner of it, so no single
average answers "is there tumour here?". Three numbers are reported, each for a different question:

* **top-k mean**: the mean of the ``k`` highest patch probabilities: is there a focus of tumour anywhere? It is
  the slide score, called against the model's operating threshold. Averaging k patches (not taking the maximum)
  keeps one odd patch from deciding the slide.
* **mean probability** over all tissue patches: how much of the tissue looks like tumour, softly.
* **tumour area fraction**: the share of tissue patches at or above the threshold, the hard version.

The per-patch probabilities stay on the patch grid (:class:`ProbabilityGrid`), NaN where no patch was scored,
which is what the heatmap is drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cds.errors import InvalidInputError


class SlideScore(BaseModel):
    """Slide-level aggregation of patch probabilities (see the module docstring).

    Attributes:
        top_k: How many patches the top-k mean averaged (fewer when the slide has fewer tissue patches).
        top_k_mean: Mean probability of the ``top_k`` highest patches; the slide score.
        mean_probability: Mean probability over all scored patches.
        max_probability: Highest patch probability.
        tumour_tiles: Patches at or above the threshold.
        tumour_area_fraction: ``tumour_tiles`` over scored patches (0-1).
        threshold: The operating threshold used.
        positive: Whether ``top_k_mean`` reaches the threshold.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    top_k: int = Field(ge=1)
    top_k_mean: float = Field(ge=0.0, le=1.0)
    mean_probability: float = Field(ge=0.0, le=1.0)
    max_probability: float = Field(ge=0.0, le=1.0)
    tumour_tiles: int = Field(ge=0)
    tumour_area_fraction: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(ge=0.0, le=1.0)
    positive: bool


def aggregate(probabilities: np.ndarray, *, threshold: float, top_k: int) -> SlideScore:
    """Aggregate patch probabilities (any shape; NaN entries are ignored).

    Raises:
        InvalidInputError: ``no_tiles`` when nothing was scored (the caller reports "no tissue" instead).
    """
    values = np.asarray(probabilities, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    if values.size == 0:
        raise InvalidInputError("no patch was scored; nothing to aggregate", code="no_tiles")
    if top_k < 1:
        raise InvalidInputError(f"top_k {top_k}; allowed: 1 or more", code="invalid_option")
    k = min(top_k, values.size)
    highest = np.partition(values, values.size - k)[values.size - k:]
    top_k_mean = float(np.clip(highest.mean(), 0.0, 1.0))
    tumour = int((values >= threshold).sum())
    return SlideScore(top_k=k, top_k_mean=top_k_mean, mean_probability=float(np.clip(values.mean(), 0.0, 1.0)),
                      max_probability=float(np.clip(values.max(), 0.0, 1.0)), tumour_tiles=tumour,
                      tumour_area_fraction=tumour / values.size, threshold=threshold,
                      positive=top_k_mean >= threshold)


@dataclass
class ProbabilityGrid:
    """Patch probabilities laid out on the patch grid, and where the grid sits on the slide.

    Attributes:
        values: float32 [rows, columns]; NaN where no patch was scored (glass, or too little tissue).
        extent0: Side of one grid cell in level-0 pixels.
        dimensions: ``(width, height)`` of level 0.
    """

    values: np.ndarray
    extent0: float
    dimensions: tuple[int, int]

    @classmethod
    def empty(cls, rows: int, columns: int, extent0: float, dimensions: tuple[int, int]) -> ProbabilityGrid:
        """A grid with nothing scored yet."""
        return cls(np.full((rows, columns), np.nan, np.float32), extent0, dimensions)

    @property
    def scored(self) -> int:
        """How many patches hold a probability."""
        return int(np.count_nonzero(~np.isnan(self.values)))
