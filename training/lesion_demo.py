"""Train, evaluate, export and register the ``lesion-demo`` classifier on generated patches.

    python -m training.lesion_demo                       # training/configs/lesion_demo.yaml, ~2 min on 2 CPU cores

Same flow as every classifier (``training/classifier.py``): MLflow run, fit loop, thresholds chosen on validation,
ONNX (+ fp16 copy and torch weights) with a parity check, MLflow model version, promotion into
``registry/lesion-demo/<version>/`` with its card. Also writes the two sample patches under ``samples/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import CacheDataset

from cds.models.card import CardContent
from cds.settings import REPO_ROOT
from training.classifier import SPLITS, ClassifierConfig, ClassifierTask, Split, run_classifier
from training.data.lesions import SIZE, generate

LABELS = ("lesion",)


@dataclass(frozen=True)
class LesionData:
    """Split sizes (seeds ``seed``, ``seed + 1``, ``seed + 2``)."""

    train: int = 4000
    validation: int = 1000
    test: int = 2000
    seed: int = 0


@dataclass(frozen=True)
class LesionConfig(ClassifierConfig):
    """The lesion task's configuration (``training/configs/lesion_demo.yaml``)."""

    name: str = "lesion-demo"
    data: LesionData = field(default_factory=LesionData)
    experiment: str = "lesion-demo"


class LesionTask(ClassifierTask[LesionConfig]):
    """Generated 64×64 patches → probability of a bright round lesion."""

    config_class = LesionConfig
    labels = LABELS

    def splits(self, names: tuple[str, ...]) -> dict[str, Split]:
        """Generated splits from independent seeds."""
        d, out = self.config.data, {}
        for offset, name in enumerate(SPLITS):
            if name in names:
                data = generate(getattr(d, name), seed=d.seed + offset)
                items = [{"image": x, "label": y} for x, y in zip(data.images, data.labels, strict=True)]
                out[name] = Split(items, data.labels)
        return out

    def dataset(self, split: Split, *, train: bool) -> CacheDataset:
        """No augmentation: the generator already varies every nuisance factor."""
        return CacheDataset(split.items, transform=None, cache_rate=1.0, progress=False)

    def spec_document(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """Contract: [-1, 1, 64, 64] in [0, 1] → [-1, 1] probability."""
        return {
            "name": self.config.name,
            "version": self.config.version,
            "task": "classification",
            "modality": "OT",
            "description": "Probability that a generated 64x64 grey-level patch contains a bright round lesion.",
            "intended_use": (
                "Demonstration and engine testing only. Not a medical device, not for diagnostic use, and not to be "
                "run on patient images: it was trained on generated data."
            ),
            "intended_use_zh": (
                "仅供演示与引擎测试。不是医疗器械，不可用于诊断，也不得对患者影像运行：在生成的数据上训练。"
            ),
            "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, SIZE, SIZE], "value_range": [0.0, 1.0]}],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 1], "value_range": [0.0, 1.0],
                         "channel_names": list(LABELS)}],
            "labels": list(LABELS),
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
            "max_batch_size": self.config.max_batch_size,
            "not_for_diagnostic_use": True,
        }

    def card(self, reproduce: str) -> CardContent:
        """Generated-data statement and limitations."""
        d = self.config.data
        return CardContent(
            data_statement=(
                "All data is **generated** by `training/data/lesions.py`; no patient data was used. Each 64×64 patch "
                "has a smooth uneven background, faint oblique bands and pixel noise; positive patches add one "
                "bright, roughly round lesion (radius 2–7 px, contrast 0.03–0.20). Splits come from independent "
                f"seeds: train {d.train} (seed {d.seed}), validation {d.validation} (seed {d.seed + 1}), "
                f"test {d.test} (seed {d.seed + 2}), about half positive."
            ),
            limitations=[
                "Trained and tested on generated patches only: its performance says nothing about real images.",
                "Detects one kind of bright round structure; any other abnormality is out of scope.",
                "Exists to exercise the engine (registry, backends, batching, Triton, benchmarks) end to end.",
            ],
            reproduce=reproduce,
            notes={"fp16 copy": "computes in half precision with fp32 inputs and outputs; runs on GPU providers only"},
        )


def write_samples(folder: Path, seed: int = 0) -> None:
    """One positive and one negative patch, from a seed no split uses, for the demo and the CLI docs."""
    data = generate(64, seed=seed + 1000)
    folder.mkdir(parents=True, exist_ok=True)
    for name, label in (("lesion-demo-positive", 1.0), ("lesion-demo-negative", 0.0)):
        index = int(np.flatnonzero(data.labels.ravel() == label)[0])
        np.save(folder / f"{name}.npy", data.images[index])


def main(argv: list[str] | None = None) -> Any:
    """Entry point (see the module docstring)."""
    evaluation = run_classifier(LesionTask, argv, description=__doc__,
                                default_config=REPO_ROOT / "training" / "configs" / "lesion_demo.yaml")
    if evaluation is not None:
        write_samples(REPO_ROOT / "samples")
    return evaluation


if __name__ == "__main__":
    main()
