import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.evaluation import (
    _rank_auc,
    auc_ci,
    choose_thresholds,
    dice_hd95,
    evaluate_binary,
    evaluate_multilabel,
    sensitivity_specificity,
)


def test_rank_auc_matches_sklearn_including_ties() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.2).astype(float)
    s = np.round(rng.random(500) + 0.4 * y, 1)  # heavy ties
    assert _rank_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    low, high = auc_ci(y, s)
    assert low < roc_auc_score(y, s) < high and high - low < 0.2


def test_thresholds_youden_and_target_sensitivity() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(300), np.ones(100)]
    s = np.r_[rng.normal(0, 1, 300), rng.normal(2, 1, 100)]
    labels, scores = y[:, None], s[:, None]
    youden = choose_thresholds(labels, scores, ["x"])["x"]
    assert 0.5 < youden < 1.5  # the equal-variance optimum lies at 1.0
    strict = choose_thresholds(labels, scores, ["x"], target_sensitivity=0.95)["x"]
    sensitivity, _ = sensitivity_specificity(y, s, strict)
    assert sensitivity >= 0.95 and strict < youden
    single = evaluate_binary(np.zeros(10), np.linspace(0, 1, 10), 0.5)
    assert single.auc is None and single.specificity == 0.5


def test_multilabel_evaluation_reports_subgroups() -> None:
    rng = np.random.default_rng(2)
    y = (rng.random((200, 2)) < 0.3).astype(float)
    p = np.clip(y * 0.6 + rng.random((200, 2)) * 0.5, 0, 1)
    group = np.where(np.arange(200) < 120, "A", "B")
    evaluation = evaluate_multilabel({"test": (y, p)}, ["a", "b"], {"a": 0.5, "b": 0.5}, subgroups={"site": group})
    assert set(evaluation.splits["test"]) == {"a", "b"}
    assert evaluation.splits["test"]["a"].auc == pytest.approx(roc_auc_score(y[:, 0], p[:, 0]))
    site = evaluation.subgroups["site"]
    assert (site["A"].n, site["B"].n) == (120, 80) and site["A"].labels_scored == 2
    expected = np.mean([roc_auc_score(y[120:, j], p[120:, j]) for j in range(2)])
    assert site["B"].macro_auc == pytest.approx(expected)


def test_dice_and_hd95_on_known_volumes() -> None:
    truth = np.zeros((1, 12, 12, 12), dtype=np.int64)
    truth[0, 4:8, 4:8, 4:8] = 1
    shifted = np.roll(truth, 1, axis=1)  # one voxel along the first axis: overlap 48 of 64 voxels
    same = dice_hd95(truth, truth, classes=2, spacing=(2.0, 1.0, 1.0))
    assert same["dice"] == [pytest.approx(1.0)] and same["hd95"] == [pytest.approx(0.0)]
    moved = dice_hd95(shifted, truth, classes=2, spacing=(2.0, 1.0, 1.0))
    assert moved["dice"] == [pytest.approx(2 * 48 / 128)]
    assert moved["hd95"] == [pytest.approx(2.0)]  # one voxel of 2 mm


def test_youden_threshold_sits_in_the_middle_of_the_gap_between_separable_classes() -> None:
    y = np.r_[np.zeros(50), np.ones(50)]
    s = np.r_[np.linspace(0.0, 0.3, 50), np.linspace(0.9, 1.0, 50)]
    assert choose_thresholds(y[:, None], s[:, None], ["x"])["x"] == pytest.approx(0.6)
