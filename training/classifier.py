"""The one command flow of every image-classifier training CLI: train → evaluate → export → log → register → promote.

A task (chest X-ray, lesion demo) says how to load its splits, build its datasets and describe its model
(:class:`ClassifierTask`); everything else is here, once: the MLflow run, the fit loop (``training.core``),
operating thresholds chosen on validation, metrics per label and subgroup, ONNX export with parity, the MLflow model
version, and promotion into the cds registry with a generated model card.
"""

from __future__ import annotations

import argparse
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from cds.models.card import CardContent, Evaluation
from cds.models.nets import build_network
from cds.models.spec import Activation, Architecture, NetworkSpec
from training.core.config import TrainConfig, as_dict, load_config
from training.core.distributed import init_world, shutdown
from training.core.loop import fit, predict, unwrap_copy
from training.evaluation import choose_thresholds, evaluate_multilabel
from training.release import (
    fit_tracked,
    parse_args,
    promote_version,
    publish,
    reproduce_command,
    with_checkpoints,
)
from training.tracking import Run

log = logging.getLogger("training.classifier")
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class ClassifierConfig:
    """Fields every classifier task has; tasks subclass it with their data section."""

    name: str = "model"
    version: str = "1.0.0"
    architecture: str = Architecture.DENSENET121.value
    network: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    parity_atol: float = 1e-4
    parity_samples: int = 64
    fp16_copy: bool = False
    torch_weights: bool = False  # also ship the state_dict (for the torch backend)
    experiment: str = "default"
    max_batch_size: int = 32
    target_sensitivity: float | None = None  # operating thresholds: Youden's J when None
    activation_maps: bool = False  # export class activation maps as a second ONNX output (global-pooling heads)
    urgency: dict[str, str] = field(default_factory=dict)  # worklist urgency per label (critical, urgent, routine)
    critical_thresholds: dict[str, float] = field(default_factory=dict)  # high-confidence calls of critical labels

    def triage(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """The spec's triage fields (none when the config names no urgency).

        A critical threshold below the label's operating threshold (the one this run derived) is raised to it: a
        critical call is never made on less than a positive finding.
        """
        if not self.urgency:
            return {}
        critical = {label: max(value, round(thresholds[label], 6)) for label, value in self.critical_thresholds.items()}
        return {"urgency": dict(self.urgency), "critical_thresholds": critical}

    def network_spec(self, activation: Activation) -> NetworkSpec:
        """The network, with ``activation`` appended (none while training, sigmoid when served)."""
        return NetworkSpec(architecture=Architecture(self.architecture), params=self.network,
                           output_activation=activation)


@dataclass(frozen=True)
class Split:
    """One split: dataset items (``image`` + ``label``), label matrix and subgroup columns for evaluation."""

    items: list[dict[str, Any]]
    labels: np.ndarray
    subgroups: dict[str, np.ndarray] = field(default_factory=dict)


C = TypeVar("C", bound=ClassifierConfig)


class ClassifierTask(ABC, Generic[C]):
    """What differs between classifier tasks."""

    config_class: type[C]
    labels: tuple[str, ...]

    def __init__(self, config: C) -> None:
        self.config = config

    @abstractmethod
    def splits(self, names: tuple[str, ...]) -> dict[str, Split]:
        """The requested splits."""

    @abstractmethod
    def dataset(self, split: Split, *, train: bool) -> Dataset[Any]:
        """A dataset over ``split`` (augmented when ``train``)."""

    @abstractmethod
    def spec_document(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """The cds spec fields the run knows (promotion adds artifacts, card path and run identity)."""

    @abstractmethod
    def card(self, reproduce: str) -> CardContent:
        """The card's prose."""

    def held_out_sections(self, score: Callable[[np.ndarray], np.ndarray], thresholds: dict[str, float]
                          ) -> dict[str, str]:
        """Card sections measured with the trained model (``score``: model inputs [N, ...] → probabilities
        [N, labels]) on held-out sets of the task's own; none by default."""
        return {}


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC AUC over labels with both classes present (the validation score for early stopping)."""
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(labels[:, j], scores[:, j]) for j in range(labels.shape[1])
            if labels[:, j].min() != labels[:, j].max()]
    return float(np.mean(aucs)) if aucs else 0.0


def _release(task: ClassifierTask[Any], args: argparse.Namespace, run: Run, body: torch.nn.Module,
             splits: dict[str, Split], val_set: Dataset[Any]) -> Evaluation:
    """Main process after training: evaluate, export with parity, log, register, promote."""
    config = task.config
    model = torch.nn.Sequential(unwrap_copy(body), torch.nn.Sigmoid())
    test_set = task.dataset(splits["test"], train=False)
    device = next(body.parameters()).device
    probs = {name: 1.0 / (1.0 + np.exp(-predict(body, ds, config.train, device)[1]))
             for name, ds in (("validation", val_set), ("test", test_set))}
    thresholds = choose_thresholds(splits["validation"].labels, probs["validation"], task.labels,
                                   target_sensitivity=config.target_sensitivity)
    evaluation = evaluate_multilabel({name: (splits[name].labels, probs[name]) for name in ("validation", "test")},
                                     task.labels, thresholds, subgroups=splits["test"].subgroups)
    card = task.card(reproduce_command(task, args).strip())

    def score(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            model.eval()
            return model(torch.from_numpy(batch).to(device)).float().cpu().numpy()

    card = card.model_copy(update={"sections": card.sections | task.held_out_sections(score, thresholds)})
    count = min(config.parity_samples, len(splits["test"].items))
    inputs = np.stack([np.asarray(test_set[i]["image"], dtype=np.float32) for i in range(count)])
    network = config.network_spec(Activation.SIGMOID) if config.torch_weights else None
    published = publish(run, model, inputs, name=config.name, output_name="probabilities",
                        document=task.spec_document(thresholds), evaluation=evaluation,
                        card=card, parity_atol=config.parity_atol,
                        fp16_copy=config.fp16_copy, torch_network=network,
                        activation_maps=config.activation_maps)
    evaluation = published.evaluation
    aucs = {f"test.auc.{k}": m.auc for k, m in evaluation.splits["test"].items() if m.auc is not None}
    run.log_metrics(aucs | {"test.macro_auc": evaluation.macro_auc("test") or float("nan"),
                            "parity.max_abs": published.parity.max_abs})
    promote_version(run, args, config.name, published.version)
    return evaluation


def run_classifier(task_class: type[ClassifierTask[Any]], argv: list[str] | None, *, description: str | None,
                   default_config: Path) -> Evaluation | None:
    """Parse options, then train, evaluate, export, log, register and promote one classifier.

    Under ``torchrun`` every process trains; the main process alone evaluates, exports and logs.
    Returns the evaluation on the main process, ``None`` elsewhere.
    """
    args = parse_args(argv, description, default_config)
    config = load_config(task_class.config_class, args.config, args.set)
    world = init_world(config.train.device)
    logging.basicConfig(level=logging.INFO if world.is_main else logging.WARNING, format="%(message)s")
    config = replace(config, train=with_checkpoints(config.train, config.name, config.version))
    task = task_class(config)
    loss = torch.nn.functional.binary_cross_entropy_with_logits
    try:
        splits = task.splits(SPLITS if world.is_main else ("train", "validation"))
        train_set, val_set = task.dataset(splits["train"], train=True), task.dataset(splits["validation"], train=False)
        torch.manual_seed(config.train.seed)  # the initial weights, whatever ran in this process before
        body = build_network(config.network_spec(Activation.NONE))
        if not world.is_main:
            fit(body, train_set, val_set, loss_fn=loss, config=config.train, world=world, score_fn=macro_auc)
            return None
        with Run(config.experiment, f"{config.name}-{config.version}", args.tracking_uri) as run:
            fit_tracked(run, body, train_set, val_set, loss_fn=loss, config=config.train, world=world,
                        score_fn=macro_auc, params=as_dict(config))
            evaluation = _release(task, args, run, body, splits, val_set)
            log.info("test macro AUC %.4f", evaluation.macro_auc("test") or float("nan"))
            return evaluation
    finally:
        shutdown(world)
