"""The one command flow of every image-classifier training CLI: train → evaluate → export → log → register → promote.

A task (chest X-ray, lesion demo) says how to load its splits, build its datasets and describe its model
(:class:`ClassifierTask`); everything else is here, once: the MLflow run, the fit loop (``training.core``),
operating thresholds chosen on validation, metrics per label and subgroup, ONNX export with parity, the MLflow model
version, and promotion into the cds registry with a generated model card.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from cds.models.card import CardContent, Evaluation, Parity
from cds.models.nets import build_network
from cds.models.promote import promote
from cds.models.spec import Activation, Architecture, NetworkSpec
from cds.settings import REPO_ROOT
from training.core.config import TrainConfig, as_dict, load_config
from training.core.distributed import init_world, shutdown
from training.core.loop import fit, predict, unwrap_copy
from training.evaluation import choose_thresholds, evaluate_multilabel
from training.export import check_parity, export_onnx
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


def macro_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean ROC AUC over labels with both classes present (the validation score for early stopping)."""
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(labels[:, j], scores[:, j]) for j in range(labels.shape[1])
            if labels[:, j].min() != labels[:, j].max()]
    return float(np.mean(aucs)) if aucs else 0.0


def parse_args(argv: list[str] | None, description: str | None, default_config: Path) -> argparse.Namespace:
    """The options every classifier CLI takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config entry")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: runs/mlflow/mlflow.db)")
    parser.add_argument("--registry", type=Path, default=REPO_ROOT / "registry")
    parser.add_argument("--cards", type=Path, default=REPO_ROOT / "model_cards")
    parser.add_argument("--no-promote", action="store_true", help="register in MLflow only")
    return parser.parse_args(argv)


def _release(task: ClassifierTask[Any], args: argparse.Namespace, run: Run, body: torch.nn.Module,
             splits: dict[str, Split], val_set: Dataset[Any]) -> Evaluation:
    """Main process after training: evaluate, export with parity, log, register, promote."""
    config = task.config
    model = torch.nn.Sequential(unwrap_copy(body), torch.nn.Sigmoid())
    test_set = task.dataset(splits["test"], train=False)
    device = next(body.parameters()).device
    probs = {name: 1.0 / (1.0 + np.exp(-predict(body, ds, config.train, device)[1]))
             for name, ds in (("validation", val_set), ("test", test_set))}
    thresholds = choose_thresholds(splits["validation"].labels, probs["validation"], task.labels)
    evaluation = evaluate_multilabel({name: (splits[name].labels, probs[name]) for name in ("validation", "test")},
                                     task.labels, thresholds, subgroups=splits["test"].subgroups)
    count = min(config.parity_samples, len(splits["test"].items))
    inputs = np.stack([np.asarray(test_set[i]["image"], dtype=np.float32) for i in range(count)])
    example = torch.from_numpy(inputs[:1])
    with tempfile.TemporaryDirectory(prefix="cds-export-") as scratch:
        folder = Path(scratch)
        onnx_path = export_onnx(model, example, folder / "model.onnx", input_name="image", output_name="probabilities")
        parity = check_parity(model, onnx_path, inputs, input_name="image", atol=config.parity_atol)
        evaluation = evaluation.model_copy(update={"parity": Parity(
            max_abs=parity.max_abs, max_rel=parity.max_rel, samples=parity.samples, atol=config.parity_atol)})
        fp16 = (export_onnx(model, example, folder / "model_fp16.onnx", input_name="image",
                            output_name="probabilities", fp16=True) if config.fp16_copy else None)
        weights = None
        if config.torch_weights:
            weights = folder / "model.pt"
            torch.save(model.state_dict(), weights)
        with torch.inference_mode():
            output = model(example).numpy()
        reproduce = _reproduce(task, args)
        document = task.spec_document(thresholds)
        if weights is not None:
            document["torch_network"] = config.network_spec(Activation.SIGMOID).model_dump(mode="json")
        version = run.log_model(onnx_path, registered_name=config.name, spec_document=document,
                                evaluation=evaluation, card=task.card(reproduce.strip()), input_example=inputs[:1],
                                output_example=output, fp16_path=fp16, torch_path=weights)
    aucs = {f"test.auc.{k}": m.auc for k, m in evaluation.splits["test"].items() if m.auc is not None}
    run.log_metrics(aucs | {"test.macro_auc": evaluation.macro_auc("test") or float("nan"),
                            "parity.max_abs": parity.max_abs})
    if not args.no_promote:
        promoted = promote(run.uri, config.name, version, registry_root=args.registry, cards_root=args.cards)
        run.log_artifact(promoted.spec.model_card)
        log.info("promoted to %s (%s)", promoted.folder, promoted.spec.key)
    return evaluation


def _reproduce(task: ClassifierTask[Any], args: argparse.Namespace) -> str:
    """The command that trains this model again (module name even when run with ``-m``; config path relative)."""
    import sys

    module = type(task).__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else module
    config = Path(args.config).resolve()
    shown = config.relative_to(REPO_ROOT) if config.is_relative_to(REPO_ROOT) else config
    return " ".join([f"python -m {module} --config {shown}", *(f"--set {s}" for s in args.set)])


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
    if config.train.checkpoint_dir is None:
        checkpoints = REPO_ROOT / "runs" / "checkpoints" / f"{config.name}-{config.version}"
        config = replace(config, train=replace(config.train, checkpoint_dir=checkpoints))
    task = task_class(config)
    loss = torch.nn.functional.binary_cross_entropy_with_logits
    try:
        splits = task.splits(SPLITS if world.is_main else ("train", "validation"))
        train_set, val_set = task.dataset(splits["train"], train=True), task.dataset(splits["validation"], train=False)
        body = build_network(config.network_spec(Activation.NONE))
        if not world.is_main:
            fit(body, train_set, val_set, loss_fn=loss, config=config.train, world=world, score_fn=macro_auc)
            return None
        with Run(config.experiment, f"{config.name}-{config.version}", args.tracking_uri) as run:
            run.log_params(as_dict(config) | {"world_size": world.size})
            result = fit(body, train_set, val_set, loss_fn=loss, config=config.train, world=world, score_fn=macro_auc,
                         on_epoch=lambda record: run.log_metrics(record.metrics(), step=record.epoch))
            run.log_metrics({"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                             "samples_seen_rank0": result.samples_seen, "world_size": world.size})
            evaluation = _release(task, args, run, body, splits, val_set)
            log.info("test macro AUC %.4f", evaluation.macro_auc("test") or float("nan"))
            return evaluation
    finally:
        shutdown(world)
