"""Train the chest X-ray model (MONAI DenseNet-121, 1 channel, 224×224, TorchXRayVision's 18 labels), export it to
ONNX with a parity check, evaluate it, log everything to MLflow, register it and promote it into the cds registry.

    python -m training.chest_xray --config training/configs/chest_xray.yaml            # the shipped model
    python -m training.chest_xray --config training/configs/chest_xray_smoke.yaml      # minutes on 2 CPU cores
    torchrun --nproc-per-node 2 -m training.chest_xray --config ...                     # DDP (gloo on CPU, NCCL on GPU)

``--set key.path=value`` overrides any config entry (``--set train.epochs=1 --set train.precision=bf16``).
Data is generated (``training/data/chest_xray.py``) unless ``data.folder`` names a folder with ``train/``,
``validation/`` and ``test/`` subfolders, each holding images (DICOM or PNG) and a ``labels.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import CacheDataset
from monai.transforms import Compose, MapTransform, RandAffined

from cds.models.activation_maps import ACTIVATION_MAPS
from cds.models.card import CardContent
from cds.models.spec import Activation
from cds.pipelines.imaging.radiograph import MODEL_RANGE, read_radiograph, to_model_input
from cds.settings import REPO_ROOT
from training.classifier import SPLITS, ClassifierConfig, ClassifierTask, Split, run_classifier
from training.core.config import as_dict
from training.data.chest_xray import LABELS, generate
from training.data.film_variants import FAMILIES, draw_families, film
from training.data.folder import read_labels_csv


@dataclass(frozen=True)
class GeneratedData:
    """Sizes of the generated splits (seeds ``seed``, ``seed + 1``, ``seed + 2``) and the finding prevalence."""

    train: int = 2000
    validation: int = 400
    test: int = 1000
    seed: int = 0
    prevalence: float = 0.1
    variants: float = 0.35  # probability of each film variant family per image (0: clean renders)


@dataclass(frozen=True)
class DataConfig:
    """Generated data, or a real dataset folder (``train/``, ``validation/``, ``test/`` with labels.csv each)."""

    generated: GeneratedData = field(default_factory=GeneratedData)
    folder: Path | None = None
    augment: bool = True
    cache_workers: int = 2


@dataclass(frozen=True)
class ChestXrayConfig(ClassifierConfig):
    """The chest X-ray task's configuration (``training/configs/chest_xray*.yaml``)."""

    name: str = "chest-xray-demo"
    image_size: int = 224
    network: dict[str, Any] = field(default_factory=lambda: {"spatial_dims": 2, "in_channels": 1, "out_channels": 18})
    data: DataConfig = field(default_factory=DataConfig)
    experiment: str = "chest-xray"
    plausibility_model: str | None = "chest-xray-plausibility:1.0.0"  # the gate its imaging contract names


class PrepareRadiographd(MapTransform):
    """``image``: a file path (DICOM/PNG) or a [H, W] / [1, H, W] array in [0, 1] → float32 [1, S, S] model input."""

    def __init__(self, size: int) -> None:
        super().__init__(keys=["image"])
        self.size = size

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        item = dict(data)
        image = item["image"]
        pixels = read_radiograph(Path(image)) if isinstance(image, str | Path) else np.asarray(image).squeeze()
        item["image"] = to_model_input(pixels, self.size)
        item["label"] = np.asarray(item["label"], dtype=np.float32)
        return item


def filmed(scene: np.ndarray, seed: int, index: int, probability: float) -> np.ndarray:
    """A rendered radiograph through film variant families (:mod:`training.data.film_variants`) each drawn with
    ``probability``, from its own random stream; unchanged when ``probability`` is 0."""
    if probability <= 0.0:
        return scene
    rng = np.random.default_rng((seed, index, 9))
    return film(scene, rng, draw_families(rng, probability))


class ChestXrayTask(ClassifierTask[ChestXrayConfig]):
    """Generated or folder radiographs → 18 independent findings."""

    config_class = ChestXrayConfig
    labels = LABELS

    def splits(self, names: tuple[str, ...]) -> dict[str, Split]:
        """From ``data.folder`` when set, else generated."""
        config, out = self.config, {}
        for offset, name in enumerate(SPLITS):
            if name not in names:
                continue
            if config.data.folder is not None:
                files = read_labels_csv(config.data.folder / name, LABELS)
                items = [{"image": str(p), "label": y} for p, y in zip(files.paths, files.labels, strict=True)]
                out[name] = Split(items, files.labels, files.subgroups)
            else:
                g = config.data.generated
                data = generate(getattr(g, name), seed=g.seed + offset, size=config.image_size,
                                prevalence=g.prevalence)
                items = [{"image": filmed(x[0], g.seed + offset, i, g.variants), "label": y}
                         for i, (x, y) in enumerate(zip(data.images, data.labels, strict=True))]
                out[name] = Split(items, data.labels, {"sex": data.sex})
        return out

    def dataset(self, split: Split, *, train: bool) -> CacheDataset:
        """MONAI CacheDataset: decoding and scaling cached once, augmentation (training only) on every pass."""
        transforms: list[Any] = [PrepareRadiographd(self.config.image_size)]
        if train and self.config.data.augment:
            transforms.append(RandAffined(keys="image", prob=0.7, rotate_range=0.08, scale_range=0.06,
                                          translate_range=(8, 8), padding_mode="border"))
        return CacheDataset(split.items, transform=Compose(transforms), cache_rate=1.0,
                            num_workers=self.config.data.cache_workers, progress=False)

    def spec_document(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """Contract: [-1, 1, S, S] in [-1024, 1024] → [-1, 18] probabilities."""
        size = self.config.image_size
        return {
            "name": self.config.name,
            "version": self.config.version,
            "task": "classification",
            "modality": "DX",
            "description": (
                f"Independent probabilities of the 18 TorchXRayVision chest findings on a frontal chest radiograph "
                f"(1 channel, {size}x{size}, display values scaled to [-1024, 1024])."
            ),
            "intended_use": (
                "Demonstration and engine testing only: trained on synthetic radiographs generated by this "
                "repository. Not a medical device, not for clinical use, not to be run on patient images for any "
                "decision."
            ),
            "intended_use_zh": (
                "仅供演示与引擎测试：在本仓库生成的合成 X 线片上训练。不是医疗器械，不用于临床，不得对患者影像运行"
                "以作任何决策。"
            ),
            "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, size, size],
                        "value_range": list(MODEL_RANGE)}],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, len(LABELS)],
                         "value_range": [0.0, 1.0], "channel_names": list(LABELS)}]
            + ([{"name": ACTIVATION_MAPS, "dtype": "float32", "shape": [-1, len(LABELS), size // 32, size // 32],
                 "channel_names": list(LABELS)}] if self.config.activation_maps else []),
            "labels": list(LABELS),
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
            **self.config.triage(thresholds),
            "max_batch_size": self.config.max_batch_size,
            "not_for_diagnostic_use": True,
            "imaging": {"modalities": ["CR", "DX"], "body_parts": ["CHEST"], "views": ["PA", "AP"],
                        "min_rows": size, "min_columns": size, "pixel_spacing_mm": [0.05, 1.0],
                        "plausibility_model": self.config.plausibility_model},
        }

    def card(self, reproduce: str) -> CardContent:
        """Synthetic-data statement, limitations, how to reproduce."""
        config, g = self.config, self.config.data.generated
        if config.data.folder is None:
            data = (
                "All images are **synthetic**, generated by `training/data/chest_xray.py`; no patient data was "
                "used. Each is a caricature of a frontal chest radiograph (body, lung fields with vascular markings, "
                "mediastinum, heart, spine, clavicles, ribs) with label-dependent findings drawn independently at "
                f"prevalence {g.prevalence} (Lung Lesion and Lung Opacity derived from their child findings); "
                "habitus, field of view, arms, neck, breast shadows and paediatric proportions vary per image. "
                "Each image is then filmed as some vendor's system would deliver it "
                f"(`training/data/film_variants.py`, each family with probability {g.variants}: "
                f"{', '.join(FAMILIES)}), through the same display conversion the pre-read uses; validation and "
                "test images are filmed the same way. "
                f"Splits come from independent seeds: train {g.train} (seed {g.seed}), validation {g.validation} "
                f"(seed {g.seed + 1}; thresholds and early stopping), test {g.test} (seed {g.seed + 2}; reported). "
                "Subgroup column `sex` changes body and heart size."
            )
        else:
            data = f"Images and labels from `{config.data.folder}` (train/validation/test subfolders)."
        network = config.network_spec(Activation.SIGMOID)
        return CardContent(
            data_statement=data,
            limitations=[
                "A demonstration model trained on synthetic images: its metrics say nothing about real "
                "radiographs, and it is not for clinical use.",
                "The synthetic findings are caricatures with one appearance each; real findings vary far more.",
                "Frontal (PA/AP) views only; lateral views and post-operative chests are out of scope; children "
                "appear only as generated paediatric proportions.",
                "Heatmaps are class activation maps exported beside the scores (`activation_maps`, 7×7 per label, "
                "logit units): exact for this global-pooling head, coarse (32-pixel cells at 224²).",
                "Real weights drop in: export a TorchXRayVision-compatible DenseNet-121 to ONNX with this "
                "input/output contract and register it under its own name.",
            ],
            reproduce=reproduce,
            notes={"network": f"`{network.architecture.value}` with {network.params}, sigmoid outputs",
                   "training": str(as_dict(config.train))},
        )


def main(argv: list[str] | None = None) -> Any:
    """Entry point (see the module docstring)."""
    return run_classifier(ChestXrayTask, argv, description=__doc__,
                          default_config=REPO_ROOT / "training" / "configs" / "chest_xray.yaml")


if __name__ == "__main__":
    main()
