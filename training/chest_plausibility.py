"""Train the chest radiograph plausibility check: "is this image a frontal chest radiograph at all?"

    python -m training.chest_plausibility            # training/configs/chest_plausibility.yaml, minutes on 2 CPU cores

DICOM tags can lie: a CT slice, a knee film or a scanned form can arrive tagged CR, CHEST, PA. The chest X-ray model
would score any of them. This small classifier sees the display-normalised image at 64×64 (the same reading and resizing
as the chest model, :mod:`cds.pipelines.imaging.radiograph`) and gives the probability that it is a frontal chest
radiograph; the pre-read refuses the image (``implausible_image``) below its operating threshold, chosen on validation
(Youden's J; for separable classes the middle of the gap between them).

Positives are generated chest radiographs (``training/data/chest_xray.py``, findings at the usual prevalence);
negatives are generated images of thirteen other kinds (``training/data/non_chest.py``). Same flow as every
classifier (``training/classifier.py``). Refusal rates per kind and on real non-chest DICOM images (pydicom's
bundled files) are measured by ``python -m benchmarks.plausibility_rates``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from monai.data import CacheDataset
from monai.transforms import Compose, RandAffined, RandFlipd

from cds.models.card import CardContent
from cds.models.spec import Activation
from cds.pipelines.imaging.radiograph import to_model_input
from cds.settings import REPO_ROOT
from training.classifier import SPLITS, ClassifierConfig, ClassifierTask, Split, run_classifier
from training.core.config import as_dict
from training.data.chest_xray import render
from training.data.non_chest import KINDS, generate_non_chest

LABELS = ("chest_radiograph",)
UNIT_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class PlausibilityData:
    """Split sizes (half chest, half other kinds; seeds ``seed``, ``seed + 1``, ``seed + 2``) and render size."""

    train: int = 3000
    validation: int = 1000
    test: int = 2000
    seed: int = 100
    render_size: int = 128


@dataclass(frozen=True)
class PlausibilityConfig(ClassifierConfig):
    """The plausibility task's configuration (``training/configs/chest_plausibility.yaml``)."""

    name: str = "chest-xray-plausibility"
    image_size: int = 64
    data: PlausibilityData = field(default_factory=PlausibilityData)
    experiment: str = "chest-xray-plausibility"


@dataclass(frozen=True)
class PlausibilitySplit(Split):
    """A split and the kind of each image (``chest`` or a key of ``non_chest.KINDS``)."""

    kinds: tuple[str, ...] = ()


def _stretch(image: np.ndarray) -> np.ndarray:
    """Over the image's own range, as :func:`cds.pipelines.imaging.radiograph.display_pixels` does for DICOM."""
    low, high = float(image.min()), float(image.max())
    return (image - low) / max(high - low, 1e-6)


def generate_split(count: int, *, seed: int, render_size: int, image_size: int) -> PlausibilitySplit:
    """``count`` model inputs [1, S, S] in [0, 1]: the first half chest radiographs, the rest other kinds."""
    chests = count // 2
    others, kinds = generate_non_chest(count - chests, seed=seed, size=render_size)
    images = [_stretch(render(render_size, seed, i)[0]) for i in range(chests)] + list(others)
    labels = np.array([[1.0]] * chests + [[0.0]] * (count - chests), dtype=np.float32)
    items = [{"image": to_model_input(x, image_size, UNIT_RANGE), "label": y}
             for x, y in zip(images, labels, strict=True)]
    return PlausibilitySplit(items, labels, kinds=("chest",) * chests + tuple(kinds))


class PlausibilityTask(ClassifierTask[PlausibilityConfig]):
    """Generated chest radiographs vs generated other images → probability of a chest radiograph."""

    config_class = PlausibilityConfig
    labels = LABELS

    def splits(self, names: tuple[str, ...]) -> dict[str, Split]:
        """Generated splits from independent seeds."""
        d, out = self.config.data, {}
        for offset, name in enumerate(SPLITS):
            if name in names:
                out[name] = generate_split(getattr(d, name), seed=d.seed + offset, render_size=d.render_size,
                                           image_size=self.config.image_size)
        return out

    def dataset(self, split: Split, *, train: bool) -> CacheDataset:
        """Training adds small rotations, shifts and zooms, and left-right flips (a chest can be mirrored)."""
        transforms: list[Any] = []
        if train:
            transforms = [RandAffined(keys="image", prob=0.7, rotate_range=0.1, scale_range=0.1,
                                      translate_range=(3, 3), padding_mode="border"),
                          RandFlipd(keys="image", prob=0.5, spatial_axis=1)]
        return CacheDataset(split.items, transform=Compose(transforms), cache_rate=1.0, progress=False)

    def spec_document(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """Contract: [-1, 1, S, S] in [0, 1] → [-1, 1] probability of a frontal chest radiograph."""
        size = self.config.image_size
        return {
            "name": self.config.name,
            "version": self.config.version,
            "task": "classification",
            "modality": "DX",
            "description": (
                f"Probability that a display-normalised grey-level image (1 channel, {size}x{size}, [0, 1]) is a "
                "frontal chest radiograph; the chest X-ray pre-read refuses images below its threshold."
            ),
            "intended_use": (
                "Input gate for the chest X-ray demonstration model: refuses images that are not frontal chest "
                "radiographs whatever their DICOM tags say. Trained on generated images; not a medical device."
            ),
            "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, size, size],
                        "value_range": list(UNIT_RANGE)}],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 1], "value_range": [0.0, 1.0],
                         "channel_names": list(LABELS)}],
            "labels": list(LABELS),
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
            "max_batch_size": self.config.max_batch_size,
            "not_for_diagnostic_use": True,
        }

    def card(self, reproduce: str) -> CardContent:
        """Generated-data statement, what the gate can and cannot catch."""
        d = self.config.data
        network = self.config.network_spec(Activation.SIGMOID)
        return CardContent(
            data_statement=(
                "All images are **generated**; no patient data was used. Positives: chest radiographs from "
                "`training/data/chest_xray.py`. Negatives, in equal numbers across kinds: "
                f"{', '.join(sorted(KINDS))} (`training/data/non_chest.py`). Each is rendered at "
                f"{d.render_size}² and area-resized to {self.config.image_size}² exactly as the pre-read does. "
                f"Splits from independent seeds, half positive: train {d.train} (seed {d.seed}), validation "
                f"{d.validation} (seed {d.seed + 1}; operating threshold), "
                f"test {d.test} (seed {d.seed + 2})."
            ),
            limitations=[
                "Learns what the generated chest radiographs look like: real chest films from other devices, "
                "children, lateral views or heavy pathology may be refused; measure the false-refusal rate on local "
                "data before relying on it.",
                "It only asks 'chest radiograph or not'; it does not judge image quality or positioning.",
                "Refusal rates per negative kind and on real non-chest DICOM images: `python -m "
                "benchmarks.plausibility_rates` (results in `benchmarks/results/`).",
            ],
            reproduce=reproduce,
            notes={"network": f"`{network.architecture.value}` with {network.params}, sigmoid output",
                   "training": str(as_dict(self.config.train))},
        )


def main(argv: list[str] | None = None) -> Any:
    """Entry point (see the module docstring)."""
    return run_classifier(PlausibilityTask, argv, description=__doc__,
                          default_config=REPO_ROOT / "training" / "configs" / "chest_plausibility.yaml")


if __name__ == "__main__":
    main()
