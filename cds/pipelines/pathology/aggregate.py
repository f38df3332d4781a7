"""From per-patch tumour probabilities to one slide-level answer.

A slide is hundreds to hundreds of thousands of patches, and tumour may fill one corner of it, so no single
average answers "is there tumour here?". Three numbers are reported, each for a different question:

* **top-k mean**: the mean of the ``k`` highest patch probabilities: is there a focus of tumour anywhere? It is
  the slide score, called against the model's operating threshold. Averaging k patches (not taking the maximum)
  keeps one odd patch from deciding the slide.
* **mean probability** over all tissue patches: how much of the tissue looks like tumour, softly.
* **tumour area fraction**: the share of tissue patches at or above the threshold, the hard version.

The per-patch probabilities stay on the patch grid (:class:`ProbabilityGrid`), NaN where no patch was scored,
which is what the heatmap is drawn from. Both types live in :mod:`cds.results.slide`.
"""

from __future__ import annotations

import numpy as np

from cds.errors import InvalidInputError
from cds.results.slide import SlideScore


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
