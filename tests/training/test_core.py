"""The shared training core: typed config, fit loop (learning, checkpoint/resume, early stopping), DDP on gloo."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from training.core.config import ConfigError, TrainConfig, as_dict, build, load_config
from training.core.distributed import World
from training.core.loop import fit

REPO = Path(__file__).resolve().parents[2]
CPU = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))


def test_config_loads_yaml_with_typed_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\nprecision: fp32\ncheckpoint_dir: ckpt\n")
    config = load_config(TrainConfig, path, ["lr=0.01", "patience=2", "precision=bf16"])
    assert (config.epochs, config.lr, config.patience, config.precision) == (3, 0.01, 2, "bf16")
    assert config.checkpoint_dir == Path("ckpt") and as_dict(config)["checkpoint_dir"] == "ckpt"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"epoch": 3}, "unknown keys \\['epoch'\\]"),
        ({"epochs": "many"}, "expected int"),
        ({"epochs": 2.5}, "expected int"),
        ({"precision": "fp8"}, "not one of"),
        ({"channels_last": "yes"}, "expected true or false"),
    ],
)
def test_config_errors_name_the_key(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build(TrainConfig, data)


class _Items(torch.utils.data.Dataset[dict[str, Any]]):
    """Two separable classes: the label is whether the mean of the image is positive."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.y = (rng.random(n) < 0.5).astype(np.float32)
        self.x = (rng.normal(0, 1, (n, 1, 8, 8)) + (self.y * 2 - 1)[:, None, None, None] * 0.5).astype(np.float32)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.x[i], "label": self.y[i : i + 1]}


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 1))


def _auc(labels: np.ndarray, logits: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels[:, 0], logits[:, 0]))


LOSS = torch.nn.functional.binary_cross_entropy_with_logits


def test_fit_learns_and_keeps_the_best_epoch() -> None:
    model = _model()
    config = TrainConfig(epochs=4, batch_size=16, lr=0.05, channels_last=False)
    result = fit(model, _Items(256, 0), _Items(128, 1), loss_fn=LOSS, config=config, world=CPU, score_fn=_auc)
    assert result.epochs_run == 4 and not result.stopped_early and result.samples_seen == 4 * 256
    assert result.best_score > 0.9, result.history
    assert result.best_score == max(r.score for r in result.history)
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_resume_continues_exactly_where_it_stopped(tmp_path: Path) -> None:
    base = TrainConfig(epochs=3, batch_size=16, lr=0.05, channels_last=False, checkpoint_dir=tmp_path / "a")
    straight = _model()
    fit(straight, _Items(128, 0), _Items(64, 1), loss_fn=LOSS, config=base, world=CPU, score_fn=_auc)

    stop_after_two = replace(base, checkpoint_dir=tmp_path / "b")
    interrupted = _model()
    # simulate a crash after two epochs: run with a hook that raises at the end of epoch 2
    def crash(record: Any) -> None:
        if record.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(interrupted, _Items(128, 0), _Items(64, 1), loss_fn=LOSS, config=stop_after_two, world=CPU,
            score_fn=_auc, on_epoch=crash)
    resumed = _model()
    again = replace(stop_after_two, resume=True)
    result = fit(resumed, _Items(128, 0), _Items(64, 1), loss_fn=LOSS, config=again, world=CPU, score_fn=_auc)
    # the crash happened before epoch 2's checkpoint was written, so the run resumes after epoch 1
    assert result.resumed_from_epoch == 1 and len(result.history) == 3
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert (tmp_path / "b" / "best.pt").is_file()


def test_early_stopping_stops_when_the_score_stops_improving() -> None:
    scores = iter([0.7, 0.8, 0.75, 0.74, 0.9, 0.95])
    config = TrainConfig(epochs=6, batch_size=32, lr=0.01, patience=2, channels_last=False)
    result = fit(_model(), _Items(64, 0), _Items(32, 1), loss_fn=LOSS, config=config, world=CPU,
                 score_fn=lambda y, p: next(scores))
    assert result.stopped_early and result.epochs_run == 4 and result.best_epoch == 2 and result.best_score == 0.8


def test_among_equal_scores_the_epoch_with_the_lowest_validation_loss_is_kept() -> None:
    config = TrainConfig(epochs=5, batch_size=16, lr=0.05, channels_last=False)
    result = fit(_model(), _Items(64, 0), _Items(32, 1), loss_fn=LOSS, config=config, world=CPU,
                 score_fn=lambda y, p: 1.0)  # saturated, like an AUC of 1.0 on separable data
    losses = [r.val_loss for r in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1 and result.best_val_loss == min(losses)
    assert result.best_epoch > 1  # the first epoch is not kept just because it reached the score first


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


WORKER = """
import json, sys, torch
sys.path.insert(0, {repo!r})
from tests.training.test_core import _Items, _model, LOSS
from training.core.config import TrainConfig
from training.core.distributed import init_world, shutdown
from training.core.loop import fit
world = init_world("cpu")
model = _model()
epochs = iter(range(100))  # rising score: the best epoch is the last, so rank 0 keeps the replicas' final weights
result = fit(model, _Items(96, 0), _Items(32, 1), loss_fn=LOSS, world=world, score_fn=lambda y, p: next(epochs),
             config=TrainConfig(epochs=2, batch_size=8, lr=0.05, channels_last=False))
checksum = float(sum(p.double().sum() for p in model.parameters()))
json.dump({{"rank": world.rank, "size": world.size, "seen": result.samples_seen, "checksum": checksum,
           "history": len(result.history)}}, open(sys.argv[1] + f"/rank{{world.rank}}.json", "w"))
shutdown(world)
"""


@pytest.mark.slow
def test_ddp_trains_with_two_gloo_processes_that_share_the_data_and_agree_on_weights(tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(repo=str(REPO)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(_free_port()),
         str(script), str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["size"] for r in ranks] == [2, 2]
    assert [r["seen"] for r in ranks] == [96, 96]  # each process saw half of 96 items in each of 2 epochs
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], abs=1e-9)  # DDP kept replicas identical
    assert ranks[0]["history"] == 2 and ranks[1]["history"] == 0  # rank 0 alone validates




@pytest.mark.gpu
def test_bf16_channels_last_training_runs_on_the_gpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    world = World(rank=0, size=1, local_rank=0, device=torch.device("cuda", 0))
    model = _model()
    config = TrainConfig(epochs=4, batch_size=16, lr=0.05, precision="bf16", channels_last=True, device="cuda")
    result = fit(model, _Items(256, 0), _Items(128, 1), loss_fn=LOSS, config=config, world=world, score_fn=_auc)
    assert next(model.parameters()).device.type == "cuda"
    assert result.best_score > 0.9, result.history
