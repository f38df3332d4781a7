"""Train the chest radiograph plausibility gate: "is this image a frontal chest radiograph, from any vendor?"

    python -m training.chest_plausibility            # training/configs/chest_plausibility.yaml, ~15 min on 2 CPU cores

DICOM tags can lie: a CT slice, a knee film or a scanned form can arrive tagged CR, CHEST, PA. The chest X-ray model
would score any of them. This small classifier sees the display-normalised image at 64×64 (the same reading and resizing
as the chest model, :mod:`cds.pipelines.imaging.radiograph`) and gives the probability that it is a frontal chest
radiograph; the pre-read acts on it below its operating threshold (chosen on validation, Youden's J) as the site
configured: refuse (``implausible_image``) or accept with an ``out_of_distribution`` warning.

It must answer for films it has never seen, so every image, positive or negative, is filmed with random vendor
variants (:mod:`training.data.film_variants`: polarity, bit depth, VOI LUTs, gamma, equalisation, unsharp masking,
noise, collimation, text and markers, devices, rotation, sizes, JPEG): no processing trait tells chest from not
chest, only the anatomy does. Positives: generated frontal chests (adults and children, findings at prevalence
0.2). Negatives: generated images of every other kind (``training/data/non_chest.py``, lateral chests included)
and real non-chest images from pydicom's bundled files (two thirds; the other third is held out). Rates per
variant family and per kind on held-out sets go into the model card and are measured again through DICOM files by
``python -m benchmarks.plausibility_rates``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
from training.data.film_variants import FAMILIES, draw_families, film
from training.data.non_chest import KINDS, generate_non_chest, real_non_chest, render_non_chest

LABELS = ("chest_radiograph",)
UNIT_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class PlausibilityData:
    """Split sizes (half chest, half other kinds; seeds ``seed``, ``seed + 1``, ``seed + 2``), render size, and how
    many filmed variants of each real non-chest image (pydicom's; the held-out third only in the test split)."""

    train: int = 3000
    validation: int = 1000
    test: int = 2000
    seed: int = 100
    render_size: int = 160
    real_copies: int = 8
    per_family: int = 200


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


def chest_film(size: int, seed: int, index: int, families: Iterable[str] | None = None) -> np.ndarray:
    """A generated frontal chest radiograph (findings at prevalence 0.2) filmed with ``families`` of
    :mod:`training.data.film_variants` (drawn at random when ``None``)."""
    rng = np.random.default_rng((seed, index, 8))
    scene = render(size, seed, index, prevalence=0.2)[0]
    return film(scene, rng, draw_families(rng) if families is None else families)


def generate_split(count: int, *, seed: int, render_size: int, image_size: int, real_copies: int = 0,
                   held_out_real: bool = False) -> PlausibilitySplit:
    """``count`` model inputs [1, S, S] in [0, 1], half chest radiographs, half other kinds, every one filmed
    with random vendor variants; plus ``real_copies`` variants of each real non-chest image of pydicom's
    (the held-out third when ``held_out_real``), as negatives."""
    chests = count // 2
    others, kinds = generate_non_chest(count - chests, seed=seed, size=render_size)
    images = [chest_film(render_size, seed, i) for i in range(chests)] + list(others)
    kinds = ["chest"] * chests + kinds
    rng = np.random.default_rng((seed, 99))
    for name, pixels in (real_non_chest(held_out_real) if real_copies else []):
        for _ in range(real_copies):
            images.append(film(pixels, rng, draw_families(rng)))
            kinds.append(f"real:{name}")
    labels = np.array([[1.0 if kind == "chest" else 0.0] for kind in kinds], dtype=np.float32)
    items = [{"image": to_model_input(x, image_size, UNIT_RANGE), "label": y}
             for x, y in zip(images, labels, strict=True)]
    return PlausibilitySplit(items, labels, kinds=tuple(kinds))


@dataclass(frozen=True)
class HeldOutSet:
    """Images of one held-out set and whether the gate should pass them."""

    name: str
    images: list[np.ndarray]
    should_pass: bool


def held_out_sets(seed: int, size: int, count: int) -> list[HeldOutSet]:
    """Sets from seeds no split uses, for rates per variant family and per kind.

    Per family (none, each of :data:`~training.data.film_variants.FAMILIES` alone, all mixed at random): ``count``
    chest films and ``count`` non-chest images cycling through the kinds. Per kind and for paediatric chests:
    ``count // 2`` with random families. Real: every held-out pydicom image as it is, and three random filmings.
    """
    sets: list[HeldOutSet] = []
    names = sorted(KINDS)
    for family in ("none", *FAMILIES, "mixed"):
        chosen: Iterable[str] | None = None if family == "mixed" else (() if family == "none" else (family,))
        sets.append(HeldOutSet(f"chest · {family}", [chest_film(size, seed, i, chosen) for i in range(count)], True))
        sets.append(HeldOutSet(f"non-chest · {family}", [render_non_chest(names[i % len(names)], size, seed, i,
                                                                          chosen) for i in range(count)], False))
    half = max(count // 2, 1)
    rng = np.random.default_rng((seed, 5))
    children = [film(render(size, seed + 1, i, prevalence=0.2, child=True)[0], rng, draw_families(rng))
                for i in range(half)]
    sets.append(HeldOutSet("chest · paediatric", children, True))
    for kind in names:
        sets.append(HeldOutSet(f"kind · {kind}", [render_non_chest(kind, size, seed + 2, i) for i in range(half)],
                               False))
    real = real_non_chest(held_out=True)
    sets.append(HeldOutSet("real non-chest (pydicom, held out) · as stored", [p for _, p in real], False))
    sets.append(HeldOutSet("real non-chest (pydicom, held out) · filmed",
                           [film(p, rng, draw_families(rng)) for _, p in real for _ in range(3)], False))
    return sets


def rates_table(rows: list[tuple[str, int, int, bool]]) -> str:
    """Markdown table of (set, n, passed, should pass) rows: the rate that matters for each set."""
    lines = ["| held-out set | n | passed | refused | correct |", "| --- | --- | --- | --- | --- |"]
    for name, n, passed, should_pass in rows:
        correct = passed if should_pass else n - passed
        lines.append(f"| {name} | {n} | {passed} | {n - passed} | {correct / max(n, 1):.1%} "
                     f"{'passed' if should_pass else 'refused'} |")
    return "\n".join(lines)


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
                                           image_size=self.config.image_size, real_copies=d.real_copies,
                                           held_out_real=name == "test")
        return out

    def dataset(self, split: Split, *, train: bool) -> CacheDataset:
        """Training adds small rotations, shifts and zooms, and left-right flips (a chest can be mirrored)."""
        transforms: list[Any] = []
        if train:
            transforms = [RandAffined(keys="image", prob=0.7, rotate_range=0.1, scale_range=0.1,
                                      translate_range=(3, 3), padding_mode="border"),
                          RandFlipd(keys="image", prob=0.5, spatial_axis=1)]
        return CacheDataset(split.items, transform=Compose(transforms), cache_rate=1.0, progress=False)

    def held_out_sections(self, score: Callable[[np.ndarray], np.ndarray], thresholds: dict[str, float]
                          ) -> dict[str, str]:
        """Pass and refusal rates per variant family, per kind and on real images, at the operating threshold."""
        d, size, threshold = self.config.data, self.config.image_size, thresholds[LABELS[0]]
        rows = []
        for held in held_out_sets(d.seed + 10, d.render_size, d.per_family):
            inputs = np.stack([to_model_input(x, size, UNIT_RANGE) for x in held.images])
            scores = np.concatenate([score(inputs[k:k + 256])[:, 0] for k in range(0, len(inputs), 256)])
            rows.append((held.name, len(scores), int((scores >= threshold).sum()), held.should_pass))
        intro = (f"Held-out sets (seeds {d.seed + 10} to {d.seed + 12}; the pydicom images of the held-out third), "
                 f"filmed with one variant family alone, none, or all at random; threshold {threshold:.3f}. "
                 "Measured again through DICOM files and ONNX Runtime by `python -m benchmarks.plausibility_rates`.")
        return {"Rates per variant family and kind": f"{intro}\n\n{rates_table(rows)}"}

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
            "intended_use_zh": (
                "胸部 X 线演示模型的输入把关：无论 DICOM 标签如何，拒绝非正位胸片的图像。在生成的图像上训练；不是医"
                "疗器械。"
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
                "Images are **generated** except the real non-chest ones named below; no patient data was used. "
                "Positives: frontal chest "
                "radiographs from `training/data/chest_xray.py` (adults and children, findings at prevalence 0.2). "
                f"Negatives, in equal numbers across kinds: {', '.join(sorted(KINDS))} (`training/data/non_chest.py`)"
                f", and {d.real_copies} filmings of each of two thirds of the real non-chest images in pydicom's "
                "bundled test files (CT, MR, US, ...; the other third is held out for measurement). Every image is "
                "filmed with random vendor variants (`training/data/film_variants.py`, each family with probability "
                f"0.35: {', '.join(FAMILIES)}), rendered at {d.render_size}² and area-resized to "
                f"{self.config.image_size}² exactly as the pre-read does. Splits from independent seeds, half "
                f"positive: train {d.train} (seed {d.seed}), validation {d.validation} (seed {d.seed + 1}; operating "
                f"threshold), test {d.test} (seed {d.seed + 2})."
            ),
            limitations=[
                "Trained on generated anatomy: real chest films unlike every variant here (heavy pathology that "
                "whites out a lung, unusual positioning, stitched or cropped films) may fall below the threshold; "
                "measure the false-refusal rate on local films and choose the site's policy (refuse or accept with "
                "an out_of_distribution warning) accordingly.",
                "It only asks 'frontal chest radiograph or not'; it does not judge image quality or positioning.",
                "Real non-chest images for training and measurement are only those pydicom ships (a few dozen, "
                "none a radiograph of another body part); generated radiographs of other body parts stand in.",
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
