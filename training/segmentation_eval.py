"""Whole-volume evaluation of a volumetric segmentation network, the way the serving pipeline runs it.

Each held-out volume goes through :func:`cds.pipelines.imaging.ct_volume.to_model_grid`, the sliding-window inferer of
:mod:`cds.pipelines.imaging.ct_segmentation` and its :func:`~cds.pipelines.imaging.ct_segmentation.source_labels`; the
labels on the source grid are compared with the ground truth there: Dice and HD95 per structure
(:func:`training.evaluation.dice_hd95`) and the volume error in mL. Per-split summaries are means over volumes with
percentile-bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cds.models.card import StructureMetrics
from cds.models.spec import VolumePreprocessing
from cds.pipelines.imaging.ct_segmentation import sliding_window_probabilities, source_labels, structure_volumes
from cds.pipelines.imaging.ct_volume import to_model_grid
from cds.results.imaging import Volume
from training.evaluation import dice_hd95


@dataclass(frozen=True)
class LabelledVolume:
    """A volume and its ground-truth labels on the volume's own grid (values index the task's labels)."""

    volume: Volume
    labels: np.ndarray


@dataclass(frozen=True)
class VolumeScores:
    """One volume's per-structure scores (background excluded): NaN where the structure is absent from the truth."""

    dice: np.ndarray
    hd95_mm: np.ndarray
    true_ml: np.ndarray
    predicted_ml: np.ndarray


def segment(model: torch.nn.Module, volume: Volume, params: VolumePreprocessing, *,
            sw_batch_size: int = 4) -> np.ndarray:
    """Labels uint8 on ``volume``'s grid from ``model`` (eval mode, probabilities out), as the pipeline does it."""

    def predictor(windows: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            result: np.ndarray = model(torch.from_numpy(windows)).float().numpy()
        return result

    image, grid = to_model_grid(volume, params)
    probabilities = sliding_window_probabilities(image, predictor, params, sw_batch_size=sw_batch_size)
    return source_labels(probabilities, grid, params)


def score_volume(predicted: np.ndarray, case: LabelledVolume, labels: Sequence[str]) -> VolumeScores:
    """Dice, HD95 (mm) and volumes (mL) of every structure of one volume."""
    classes = len(labels)
    spacing = case.volume.spacing
    scores = dice_hd95(predicted[None], case.labels[None], classes, spacing)
    dice = np.array(scores["dice"], dtype=np.float64)
    hd95 = np.array(scores["hd95"], dtype=np.float64)
    present = np.bincount(case.labels.ravel(), minlength=classes)[1:] > 0
    dice[~present] = np.nan
    hd95[~present | ~np.isfinite(hd95)] = np.nan
    true_ml = np.array([s.volume_ml for s in structure_volumes(case.labels, labels, spacing)])
    predicted_ml = np.array([s.volume_ml for s in structure_volumes(predicted, labels, spacing)])
    return VolumeScores(dice=dice, hd95_mm=hd95, true_ml=true_ml, predicted_ml=predicted_ml)


def bootstrap_mean_ci(values: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float] | None:
    """Percentile-bootstrap 95 % interval of the mean of ``values`` (NaN dropped); ``None`` below two values."""
    finite = values[np.isfinite(values)]
    if len(finite) < 2 or resamples <= 0:
        return None
    rng = np.random.default_rng(seed)
    means = finite[rng.integers(0, len(finite), size=(resamples, len(finite)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def summarise(scores: Sequence[VolumeScores], labels: Sequence[str], *,
              resamples: int = 1000, seed: int = 0) -> dict[str, StructureMetrics]:
    """Per-structure means over volumes with bootstrap intervals (structures never present are left out)."""
    dice = np.stack([s.dice for s in scores])
    hd95 = np.stack([s.hd95_mm for s in scores])
    true_ml = np.stack([s.true_ml for s in scores])
    error = np.stack([s.predicted_ml for s in scores]) - true_ml
    out: dict[str, StructureMetrics] = {}
    for j, label in enumerate(labels[1:]):
        present = np.isfinite(dice[:, j])
        if not present.any():
            continue
        finite_hd = hd95[present, j][np.isfinite(hd95[present, j])]
        out[label] = StructureMetrics(
            n=int(present.sum()),
            dice=float(dice[present, j].mean()),
            dice_ci95=bootstrap_mean_ci(dice[:, j], resamples=resamples, seed=seed),
            hd95_mm=float(finite_hd.mean()) if len(finite_hd) else None,
            hd95_ci95=bootstrap_mean_ci(hd95[:, j], resamples=resamples, seed=seed),
            volume_ml=float(true_ml[present, j].mean()),
            volume_error_ml=float(error[present, j].mean()),
            volume_abs_error_ml=float(np.abs(error[present, j]).mean()),
        )
    return out


def evaluate_volumes(model: torch.nn.Module, cases: Sequence[LabelledVolume], labels: Sequence[str],
                     params: VolumePreprocessing, *, resamples: int = 1000, seed: int = 0,
                     ) -> tuple[dict[str, StructureMetrics], list[VolumeScores]]:
    """Segment every case whole and summarise; also returns the per-volume scores."""
    scores = [score_volume(segment(model, case.volume, params), case, labels) for case in cases]
    return summarise(scores, labels, resamples=resamples, seed=seed), scores
