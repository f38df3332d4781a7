"""The steps every training CLI shares: options, tracked fitting, the reproduce line, export → parity → MLflow →
promotion.

:func:`fit_tracked` runs the shared fit loop inside an MLflow run (parameters, per-epoch metrics, outcome). After a
task has evaluated its network, :func:`publish` exports it to ONNX, checks the export against torch on held-out
inputs, optionally writes an fp16 copy and the torch weights, and logs all of it to the MLflow run as a registered
model version; :func:`promote_version` then imports that version into the cds registry with its generated model
card (unless ``--no-promote``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch.utils.data import Dataset

from cds.models.activation_maps import add_class_activation_maps
from cds.models.card import CardContent, Evaluation, Parity
from cds.models.conversion import check_parity, export_onnx
from cds.models.promote import TORCH_NETWORK_KEY, promote
from cds.models.spec import NetworkSpec
from cds.settings import REPO_ROOT
from training.core.config import TrainConfig
from training.core.distributed import World
from training.core.loop import FitResult, LossFn, ScoreFn, fit
from training.tracking import Run

log = logging.getLogger("training.release")


def parse_args(argv: list[str] | None, description: str | None, default_config: Path) -> argparse.Namespace:
    """The options every training CLI takes."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=default_config)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config entry")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: runs/mlflow/mlflow.db)")
    parser.add_argument("--registry", type=Path, default=REPO_ROOT / "registry")
    parser.add_argument("--cards", type=Path, default=REPO_ROOT / "model_cards")
    parser.add_argument("--no-promote", action="store_true", help="register in MLflow only")
    return parser.parse_args(argv)


def with_checkpoints(train: TrainConfig, name: str, version: str) -> TrainConfig:
    """``train`` with ``checkpoint_dir`` defaulting to ``runs/checkpoints/<name>-<version>``."""
    if train.checkpoint_dir is not None:
        return train
    return replace(train, checkpoint_dir=REPO_ROOT / "runs" / "checkpoints" / f"{name}-{version}")


def fit_tracked(run: Run, model: torch.nn.Module, train_set: Dataset[Any], val_set: Dataset[Any], *, loss_fn: LossFn,
                config: TrainConfig, world: World, score_fn: ScoreFn, params: dict[str, Any]) -> FitResult:
    """:func:`~training.core.loop.fit` on the main process, logging ``params``, every epoch and the outcome."""
    run.log_params(params | {"world_size": world.size})
    result = fit(model, train_set, val_set, loss_fn=loss_fn, config=config, world=world, score_fn=score_fn,
                 on_epoch=lambda record: run.log_metrics(record.metrics(), step=record.epoch))
    run.log_metrics({"best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
                     "samples_seen_rank0": result.samples_seen, "world_size": world.size})
    return result


def reproduce_command(task: object, args: argparse.Namespace) -> str:
    """The command that trains this model again (module name even when run with ``-m``; config path relative)."""
    module = type(task).__module__
    if module == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        module = spec.name if spec is not None else module
    config = Path(args.config).resolve()
    shown = config.relative_to(REPO_ROOT) if config.is_relative_to(REPO_ROOT) else config
    return " ".join([f"python -m {module} --config {shown}", *(f"--set {s}" for s in args.set)])


@dataclass(frozen=True)
class Published:
    """What :func:`publish` logged: the evaluation with its parity, the parity itself, the MLflow model version."""

    evaluation: Evaluation
    parity: Parity
    version: str


def publish(run: Run, model: torch.nn.Module, inputs: np.ndarray, *, name: str, output_name: str,
            document: dict[str, Any], evaluation: Evaluation, card: CardContent, parity_atol: float,
            fp16_copy: bool = False, torch_network: NetworkSpec | None = None,
            activation_maps: bool = False) -> Published:
    """Export ``model`` (input ``image``, batch dimension dynamic) to ONNX, check parity on ``inputs``, log and
    register it with the spec document, evaluation and card; ``torch_network`` also ships the state_dict;
    ``activation_maps`` adds the class activation maps output (:mod:`cds.models.activation_maps`)."""
    example = torch.from_numpy(inputs[:1])
    with tempfile.TemporaryDirectory(prefix="cds-export-") as scratch:
        folder = Path(scratch)
        onnx_path = export_onnx(model, example, folder / "model.onnx", input_name="image", output_name=output_name)
        if activation_maps:
            graph = onnx.load(str(onnx_path))
            add_class_activation_maps(graph)
            onnx.save(graph, str(onnx_path))
        checked = check_parity(model, onnx_path, inputs, input_name="image", atol=parity_atol)
        parity = Parity(max_abs=checked.max_abs, max_rel=checked.max_rel, samples=checked.samples, atol=parity_atol)
        evaluation = evaluation.model_copy(update={"parity": parity})
        fp16 = (export_onnx(model, example, folder / "model_fp16.onnx", input_name="image", output_name=output_name,
                            fp16=True) if fp16_copy else None)
        weights = None
        if torch_network is not None:
            weights = folder / "model.pt"
            torch.save(model.state_dict(), weights)
            document = dict(document, **{TORCH_NETWORK_KEY: torch_network.model_dump(mode="json")})
        with torch.inference_mode():
            output = model(example).numpy()
        version = run.log_model(onnx_path, registered_name=name, spec_document=document, evaluation=evaluation,
                                card=card, input_example=inputs[:1], output_example=output, fp16_path=fp16,
                                torch_path=weights)
    return Published(evaluation=evaluation, parity=parity, version=version)


def promote_version(run: Run, args: argparse.Namespace, name: str, version: str) -> None:
    """Import the registered MLflow version into the cds registry (skipped with ``--no-promote``)."""
    if args.no_promote:
        return
    promoted = promote(run.uri, name, version, registry_root=args.registry, cards_root=args.cards)
    run.log_artifact(promoted.spec.model_card)
    log.info("promoted to %s (%s)", promoted.folder, promoted.spec.key)
