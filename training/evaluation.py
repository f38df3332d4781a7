"""Evaluation shared by every training CLI: AUC with a bootstrap CI, operating thresholds chosen on validation,
sensitivity/specificity, calibration, per-subgroup metrics (classification), Dice and HD95 (segmentation)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import minimize
from sklearn.metrics import brier_score_loss, roc_auc_score, roc_curve

from cds.models.card import Evaluation, LabelMetrics, SubgroupMetrics


def youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """Threshold maximising sensitivity + specificity - 1 (choose it on a validation split); 0.5 when the
    split has a single class.

    Every threshold in the gap between the scores around the best cut gives the same split; the middle of the gap
    is returned (for separable classes: halfway between the highest negative and the lowest positive score), not
    its edge, so that a new score just beside a training score is not decided by chance.
    """
    if np.min(labels) == np.max(labels):
        return 0.5
    fpr, tpr, thresholds = roc_curve(labels, scores)
    youden = tpr - fpr
    best = int(np.argmax(youden))
    cut = float(min(thresholds[best], 1.0))
    below = np.asarray(scores)[np.asarray(scores) < cut]
    return (cut + float(below.max())) / 2 if below.size else cut


def sensitivity_threshold(labels: np.ndarray, scores: np.ndarray, target: float) -> float:
    """Highest threshold whose sensitivity on this split is at least ``target``."""
    positives = np.sort(np.asarray(scores)[np.asarray(labels).astype(bool)])[::-1]
    if len(positives) == 0:
        return 0.5
    needed = int(np.ceil(target * len(positives)))
    return float(positives[max(needed, 1) - 1])


def sensitivity_specificity(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """Sensitivity and specificity when ``score >= threshold`` is called positive."""
    positive = scores >= threshold
    truth = labels.astype(bool)
    sensitivity = float((positive & truth).sum() / max(truth.sum(), 1))
    specificity = float((~positive & ~truth).sum() / max((~truth).sum(), 1))
    return sensitivity, specificity


def _rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic (ties count one half), from average ranks."""
    from scipy.stats import rankdata

    positives = labels.astype(bool)
    n1 = int(positives.sum())
    n0 = len(labels) - n1
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_ci(labels: np.ndarray, scores: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95 % confidence interval of the ROC AUC (resamples with one class are skipped)."""
    rng = np.random.default_rng(seed)
    n, aucs = len(labels), []
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        if labels[idx].min() != labels[idx].max():
            aucs.append(_rank_auc(labels[idx], scores[idx]))
    low, high = np.percentile(aucs, [2.5, 97.5])
    return float(low), float(high)


def evaluate_binary(labels: np.ndarray, scores: np.ndarray, threshold: float) -> LabelMetrics:
    """All metrics of one label at a fixed operating threshold (AUC ``None`` when only one class is present)."""
    labels, scores = np.asarray(labels).ravel(), np.asarray(scores).ravel()
    sensitivity, specificity = sensitivity_specificity(labels, scores, threshold)
    both = labels.min() != labels.max()
    return LabelMetrics(
        n=len(labels),
        prevalence=float(labels.mean()),
        auc=float(roc_auc_score(labels, scores)) if both else None,
        auc_ci95=auc_ci(labels, scores) if both else None,
        threshold=threshold,
        sensitivity=sensitivity,
        specificity=specificity,
        brier=float(np.mean((scores - labels) ** 2)),
    )


def choose_thresholds(
    labels: np.ndarray, scores: np.ndarray, names: Sequence[str], *, target_sensitivity: float | None = None
) -> dict[str, float]:
    """One operating threshold per label column: Youden's J, or the highest reaching ``target_sensitivity``."""
    thresholds = {}
    for j, name in enumerate(names):
        if target_sensitivity is None:
            thresholds[name] = youden_threshold(labels[:, j], scores[:, j])
        else:
            thresholds[name] = sensitivity_threshold(labels[:, j], scores[:, j], target_sensitivity)
    return thresholds


def evaluate_multilabel(
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    names: Sequence[str],
    thresholds: dict[str, float],
    *,
    subgroups: dict[str, np.ndarray] | None = None,
    subgroup_split: str = "test",
) -> Evaluation:
    """Per-split, per-label metrics at ``thresholds``; macro AUC per subgroup value of ``subgroup_split``.

    ``splits`` maps a split name to (labels [N, L], probabilities [N, L]).
    """
    result = {
        split: {name: evaluate_binary(y[:, j], p[:, j], thresholds[name]) for j, name in enumerate(names)}
        for split, (y, p) in splits.items()
    }
    groups: dict[str, dict[str, SubgroupMetrics]] = {}
    for column, values in (subgroups or {}).items():
        y, p = splits[subgroup_split]
        groups[column] = {}
        for value in sorted(set(values.tolist())):
            mask = values == value
            aucs = [
                float(roc_auc_score(y[mask, j], p[mask, j]))
                for j in range(len(names))
                if y[mask, j].min() != y[mask, j].max()
            ]
            groups[column][str(value)] = SubgroupMetrics(
                n=int(mask.sum()), macro_auc=float(np.mean(aucs)) if aucs else None, labels_scored=len(aucs)
            )
    return Evaluation(splits=result, subgroups=groups)


def dice_hd95(
    prediction: np.ndarray, truth: np.ndarray, classes: int, spacing: Sequence[float]
) -> dict[str, list[float]]:
    """Per-class (background excluded) Dice and 95th-percentile Hausdorff distance (in the units of ``spacing``)
    of label volumes [N, *spatial] with values 0..classes-1."""
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance
    from monai.networks.utils import one_hot

    pred = one_hot(torch.as_tensor(prediction)[:, None].long(), classes)
    true = one_hot(torch.as_tensor(truth)[:, None].long(), classes)
    dice = compute_dice(pred, true, include_background=False, ignore_empty=True)
    hd95 = compute_hausdorff_distance(pred, true, include_background=False, percentile=95, spacing=list(spacing))
    return {
        "dice": [float(v) for v in torch.nanmean(dice, dim=0)],
        "hd95": [float(v) for v in torch.nanmean(hd95, dim=0)],
    }


@dataclass(frozen=True)
class Calibration:
    """Agreement of predicted probabilities with outcomes.

    Attributes:
        brier: Mean squared error of the probabilities (lower is better).
        slope: Calibration slope: b in logit P(y) = a + b logit(p); 1 is ideal, < 1 means too extreme predictions.
        intercept: Calibration-in-the-large: a in logit P(y) = a + logit(p); 0 is ideal, > 0 means under-prediction.
        bins: (mean predicted, observed fraction, count) per decile of prediction, for the reliability plot.
    """

    brier: float
    slope: float
    intercept: float
    bins: tuple[tuple[float, float, int], ...]

    def as_dict(self) -> dict[str, object]:
        """Plain dictionary for JSON and model cards."""
        return asdict(self)


def _logistic_fit(y: np.ndarray, offset: np.ndarray, x: np.ndarray | None) -> np.ndarray:
    """Maximum-likelihood (a[, b]) of logit P(y) = a + b x + offset."""

    def loss(params: np.ndarray) -> float:
        eta = params[0] + offset + (params[1] * x if x is not None else 0.0)
        return float(np.sum(np.logaddexp(0.0, eta) - y * eta))

    start = np.zeros(1 if x is None else 2)
    result: np.ndarray = minimize(loss, start, method="BFGS").x
    return result


def calibration(labels: np.ndarray, probabilities: np.ndarray, *, bins: int = 10) -> Calibration:
    """Brier score, calibration slope and intercept (logistic recalibration), and decile reliability bins."""
    y = np.asarray(labels, dtype=float).ravel()
    p = np.clip(np.asarray(probabilities, dtype=float).ravel(), 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    slope = float(_logistic_fit(y, np.zeros_like(y), logit)[1])
    intercept = float(_logistic_fit(y, logit, None)[0])
    edges = np.quantile(p, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    table = tuple(
        (float(p[which == b].mean()), float(y[which == b].mean()), int((which == b).sum()))
        for b in range(bins)
        if (which == b).any()
    )
    return Calibration(brier=float(brier_score_loss(y, p)), slope=slope, intercept=intercept, bins=table)


def reliability_plot(calibration_result: Calibration, path: str, title: str) -> None:
    """Write the reliability diagram (observed vs predicted, by decile) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted, observed, counts = zip(*calibration_result.bins, strict=True)
    figure, axis = plt.subplots(figsize=(4.5, 4.5), dpi=100)
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="ideal")
    axis.plot(predicted, observed, marker="o", label="deciles")
    for x, y, n in zip(predicted, observed, counts, strict=True):
        axis.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    axis.set(xlabel="predicted probability", ylabel="observed fraction", xlim=(0, 1), ylim=(0, 1), title=title)
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
