"""The fit loop: AdamW + one-cycle, bf16 autocast, channels-last, clipping, checkpoint/resume, early stopping, DDP.

Batches are mappings with ``image`` and ``label`` tensors (MONAI dictionary datasets). The network returns raw
scores (logits); ``loss_fn(logits, labels)`` and ``score_fn(labels, logits)`` interpret them. Rank 0 validates,
checkpoints and reports; the early-stopping decision is broadcast so every process stops at the same epoch.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm import tqdm

from training.core.config import TrainConfig, as_dict
from training.core.distributed import World, all_sum, broadcast_flag

log = logging.getLogger("training.loop")

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ScoreFn = Callable[[np.ndarray, np.ndarray], float]
EpochHook = Callable[["EpochRecord"], None]


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch did; ``score`` is the validation score (higher is better)."""

    epoch: int
    train_loss: float
    val_loss: float
    score: float
    images_per_second: float
    seconds: float
    lr: float

    def metrics(self) -> dict[str, float]:
        """Per-epoch metrics for the tracker (the epoch number is the step)."""
        return {k: v for k, v in asdict(self).items() if k != "epoch"}


@dataclass
class FitResult:
    """Outcome of :func:`fit`; the model passed in holds the best epoch's weights afterwards.

    The best epoch has the highest validation score; among equal scores (e.g. an AUC saturated at 1.0), the lowest
    validation loss.
    """

    best_epoch: int
    best_score: float
    epochs_run: int
    stopped_early: bool
    world_size: int
    samples_seen: int  # by this process, over the epochs it ran in this call
    resumed_from_epoch: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_val_loss: float = float("inf")


def _tensor(value: Any, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    tensor = value.as_tensor() if hasattr(value, "as_tensor") else torch.as_tensor(value)
    tensor = tensor.to(device, non_blocking=True)
    if channels_last and tensor.ndim == 4:
        tensor = tensor.contiguous(memory_format=torch.channels_last)
    return tensor


def _autocast(config: TrainConfig, device: torch.device) -> AbstractContextManager[Any]:
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=config.precision == "bf16")


def predict(
    model: torch.nn.Module, dataset: Dataset[Any], config: TrainConfig, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, raw outputs as float32) for every item of ``dataset``, in order, in eval mode."""
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers)
    labels, outputs = [], []
    model.eval()
    with torch.inference_mode(), _autocast(config, device):
        for batch in loader:
            logits = model(_tensor(batch["image"], device, config.channels_last))
            outputs.append(logits.float().cpu().numpy())
            labels.append(_tensor(batch["label"], torch.device("cpu")).numpy())
    return np.concatenate(labels), np.concatenate(outputs)


class _Checkpoints:
    """``last.pt`` (everything needed to resume) and ``best.pt`` (weights of the best epoch)."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)

    @property
    def last(self) -> Path | None:
        return None if self.folder is None else self.folder / "last.pt"

    def load_last(self) -> dict[str, Any] | None:
        if self.last is None or not self.last.is_file():
            return None
        state: dict[str, Any] = torch.load(self.last, map_location="cpu", weights_only=False)
        return state

    def save(self, state: dict[str, Any], best_weights: Mapping[str, torch.Tensor] | None) -> None:
        if self.folder is None or self.last is None:
            return
        scratch = self.last.with_suffix(".tmp")
        torch.save(state, scratch)
        scratch.replace(self.last)  # a crash mid-write never leaves a half-written last.pt
        if best_weights is not None:
            torch.save(dict(best_weights), self.folder / "best.pt")


def _loader(dataset: Dataset[Any], config: TrainConfig, world: World, epoch: int) -> DataLoader[Any]:
    sampler: DistributedSampler[Any] | RandomSampler
    if world.distributed:
        sampler = DistributedSampler(dataset, num_replicas=world.size, rank=world.rank, seed=config.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(config.seed + epoch))
    transform = getattr(dataset, "transform", None)
    if hasattr(transform, "set_random_state"):
        transform.set_random_state(seed=config.seed + 1000 * epoch + world.rank)  # augmentation resumes exactly
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=world.device.type == "cuda",
        drop_last=False,
    )


def _progress(loader: DataLoader[Any], world: World, desc: str) -> tqdm[Any]:
    """Rank 0's per-epoch bar; the loop shows running loss and images/s (all processes) in it."""
    return tqdm(loader, desc=desc, unit="batch", disable=not world.is_main, leave=False)


def fit(
    model: torch.nn.Module,
    train_set: Dataset[Any],
    val_set: Dataset[Any],
    *,
    loss_fn: LossFn,
    config: TrainConfig,
    world: World,
    score_fn: ScoreFn | None = None,
    on_epoch: EpochHook | None = None,
) -> FitResult:
    """Train ``model`` in place and leave the best validation epoch's weights in it.

    Without ``score_fn`` the validation score is minus the validation loss.
    """
    torch.manual_seed(config.seed)
    model.to(world.device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = len(_loader(train_set, config, world, 0))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, total_steps=max(1, config.epochs * steps_per_epoch)
    )
    checkpoints = _Checkpoints(config.checkpoint_dir if world.is_main else None)
    result = FitResult(best_epoch=0, best_score=float("-inf"), epochs_run=0, stopped_early=False,
                       world_size=world.size, samples_seen=0)
    best_weights: dict[str, torch.Tensor] | None = None
    bad_epochs, start = 0, 0
    saved = _Checkpoints(config.checkpoint_dir).load_last() if config.resume else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimiser.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["scheduler"])
        start, bad_epochs = int(saved["epoch"]), int(saved["bad_epochs"])
        result.best_epoch, result.best_score = int(saved["best_epoch"]), float(saved["best_score"])
        result.best_val_loss = float(saved.get("best_val_loss", float("inf")))
        result.history = [EpochRecord(**r) for r in saved["history"]]
        result.resumed_from_epoch = start
        best_weights = saved.get("best_weights")
        log.info("resumed after epoch %d (best %.4f at epoch %d)", start, result.best_score, result.best_epoch)
    network: torch.nn.Module = DistributedDataParallel(model) if world.distributed else model

    for epoch in range(start, config.epochs):
        tic = time.perf_counter()
        network.train()
        loss_sum, seen = 0.0, 0
        bar = _progress(_loader(train_set, config, world, epoch), world, f"epoch {epoch + 1}/{config.epochs}")
        for batch in bar:
            images = _tensor(batch["image"], world.device, config.channels_last)
            labels = _tensor(batch["label"], world.device)
            optimiser.zero_grad(set_to_none=True)
            with _autocast(config, world.device):
                logits = network(images)
            loss = loss_fn(logits.float(), labels.float())
            loss.backward()
            if config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(network.parameters(), config.grad_clip)
            optimiser.step()
            schedule.step()
            loss_sum += float(loss.item()) * len(images)
            seen += len(images)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}",
                            img_s=f"{seen * world.size / (time.perf_counter() - tic):.1f}", refresh=False)
        bar.close()
        result.samples_seen += seen
        total = all_sum(float(seen), world)
        train_loss = all_sum(loss_sum, world) / max(total, 1.0)
        elapsed = time.perf_counter() - tic

        improved = False
        if world.is_main:
            labels_np, logits_np = predict(model, val_set, config, world.device)
            val_loss = float(loss_fn(torch.from_numpy(logits_np), torch.from_numpy(labels_np).float()).item())
            score = score_fn(labels_np, logits_np) if score_fn is not None else -val_loss
            record = EpochRecord(epoch + 1, train_loss, val_loss, float(score), total / elapsed, elapsed,
                                 float(schedule.get_last_lr()[0]))
            result.history.append(record)
            improved = record.score > result.best_score or (
                record.score == result.best_score and record.val_loss < result.best_val_loss)
            if improved:
                result.best_epoch, result.best_score = record.epoch, record.score
                result.best_val_loss = record.val_loss
                best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                bad_epochs = 0
            else:
                bad_epochs += 1
            log.info("epoch %d: train loss %.4f, val loss %.4f, score %.4f, %.1f img/s%s", record.epoch,
                     train_loss, val_loss, record.score, record.images_per_second, " (best)" if improved else "")
            if on_epoch is not None:
                on_epoch(record)
            checkpoints.save(
                {"epoch": epoch + 1, "model": model.state_dict(), "optimizer": optimiser.state_dict(),
                 "scheduler": schedule.state_dict(), "best_epoch": result.best_epoch,
                 "best_score": result.best_score, "best_val_loss": result.best_val_loss, "bad_epochs": bad_epochs,
                 "history": [asdict(r) for r in result.history], "best_weights": best_weights,
                 "config": as_dict(config)},
                best_weights if improved else None,
            )
        result.epochs_run = epoch + 1
        stop = world.is_main and config.patience is not None and bad_epochs >= config.patience
        if broadcast_flag(stop, world):
            result.stopped_early = epoch + 1 < config.epochs
            break

    if world.is_main and best_weights is not None:
        model.load_state_dict(best_weights)
    return result


def unwrap_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A CPU, contiguous-format, eval-mode copy of ``model`` for export and evaluation."""
    return copy.deepcopy(model).to("cpu", memory_format=torch.contiguous_format).eval()  # type: ignore[call-overload]
