"""Heatmaps: occlusion saliency for any backend, and class activation maps brought onto the image.

Occlusion saliency: which regions of an image a finding's probability depends on, for any backend.

Each cell of a grid over the image is replaced by the image's mean in turn; the drop in each label's probability
when a cell is hidden is that cell's importance for the label. It needs only forward passes, so it works the same
on ONNX Runtime, torch and Triton (Grad-CAM would need the torch graph and its gradients). Cost: ``grid²``
extra inferences per image, batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

import numpy as np


class HeatmapMethod(StrEnum):
    """How a radiograph pre-read localises its positive findings (see the pre-read pipeline)."""

    AUTO = "auto"
    CAM = "cam"
    OCCLUSION = "occlusion"
    OFF = "off"


Infer = Callable[[np.ndarray], np.ndarray]  # float32 [N, C, H, W] -> probabilities [N, L]
MIN_DROP = 0.01  # a region whose hiding lowers the probability by less than this does not explain it
MIN_CONTRAST = 0.05  # a map whose cells all matter within this of each other points nowhere in particular


def localises(heatmap: np.ndarray) -> bool:
    """Whether a map (from :func:`occlusion_heatmaps`) points somewhere: not all zero, and not the same everywhere.

    A finding whose map does not is reported as "no localisation", never drawn as an empty or uniform picture.
    """
    return bool(heatmap.size) and float(heatmap.max()) > 0.0 and float(heatmap.max() - heatmap.min()) >= MIN_CONTRAST


def occlusion_heatmaps(
    infer: Infer, image: np.ndarray, labels: Sequence[int], *, grid: int = 7, batch: int = 16,
    min_drop: float = MIN_DROP,
) -> np.ndarray:
    """float32 [len(labels), H, W] in [0, 1] for one image [C, H, W]; 0 where hiding a region raises the score.

    Each map is scaled by its own maximum drop; a label whose probability no occlusion lowers by ``min_drop`` or
    more gets an all-zero map (no localisation: scaling noise up would draw a confident picture of nothing).
    """
    if image.ndim != 3:
        raise ValueError(f"expected one image [C, H, W], got shape {image.shape}")
    channels, height, width = image.shape
    rows = np.linspace(0, height, grid + 1).round().astype(int)
    cols = np.linspace(0, width, grid + 1).round().astype(int)
    fill = image.mean(axis=(1, 2), keepdims=True)
    cells = [(i, j) for i in range(grid) for j in range(grid)]
    occluded = np.repeat(image[None], len(cells), axis=0)
    for n, (i, j) in enumerate(cells):
        occluded[n, :, rows[i] : rows[i + 1], cols[j] : cols[j + 1]] = fill
    base = infer(image[None])[0]
    scores = np.concatenate([infer(occluded[k : k + batch]) for k in range(0, len(cells), batch)])
    drops = np.clip(base[list(labels)][None, :] - scores[:, list(labels)], 0.0, None)  # [cells, labels]
    maps = np.zeros((len(labels), height, width), dtype=np.float32)
    for n, (i, j) in enumerate(cells):
        maps[:, rows[i] : rows[i + 1], cols[j] : cols[j + 1]] = drops[n][:, None, None]
    peak = maps.reshape(len(labels), -1).max(axis=1)
    scaled = maps / np.maximum(peak, 1e-12)[:, None, None]
    return np.where(peak[:, None, None] >= min_drop, scaled, 0.0).astype(np.float32)


def probability_scaled(heatmap: np.ndarray, probability: float) -> np.ndarray:
    """A map (peak-normalised, in [0, 1]) on the fixed probability scale: its shape times the finding's probability.

    Its maximum is the probability, so a finding at 0.36 never shows above 0.36 on the 0-1 legend and one at its
    threshold is drawn as faintly as it is likely, not like a certain one.
    """
    peak = float(np.max(heatmap)) if heatmap.size else 0.0
    scale = min(max(float(probability), 0.0), 1.0) / peak if peak > 0.0 else 0.0
    scaled: np.ndarray = np.clip(np.asarray(heatmap, np.float32) * scale, 0.0, 1.0).astype(np.float32)
    return scaled


CAM_MIN_CONTRAST = 0.5  # logits: an activation map whose cells all lie within this of their median points nowhere


def upsample_map(activation: np.ndarray, size: tuple[int, int], min_contrast: float = CAM_MIN_CONTRAST) -> np.ndarray:
    """One label's class activation map [h, w] (logit units) → float32 [H, W] in [0, 1], bilinearly enlarged.

    Evidence above the map's median, scaled by its peak. All zero when no cell rises ``min_contrast`` above the
    median: a flat map is "no localisation", never scaled up into a confident picture of nothing.
    """
    from cds.pipelines.imaging.radiograph import resize

    positive = np.clip(activation - float(np.median(activation)), 0.0, None)
    peak = float(positive.max())
    if peak < min_contrast:
        return np.zeros(size, np.float32)
    enlarged = resize(positive / peak, size)
    result: np.ndarray = np.clip(enlarged / max(float(enlarged.max()), 1e-12), 0.0, 1.0).astype(np.float32)
    return result
