"""Train, evaluate, export and register the ``pathology-demo`` patch classifier (normal vs tumour H&E patches).

    python -m training.pathology_tiles                    # training/configs/pathology_tiles.yaml (the shipped model)
    python -m training.pathology_tiles --config training/configs/pathology_tiles_smoke.yaml     # a minute, for tests
    python -m training.pathology_tiles --set data.folder=/data/tiles --set stain.reference=/data/reference.png

Same flow as every classifier (``training/classifier.py``): MLflow run, fit loop, threshold chosen on validation,
test metrics with bootstrap CIs, ONNX (and torch weights) with a parity check, MLflow model version, promotion into
``registry/pathology-demo/<version>/`` with its card. The patch preprocessing (resolution, size, the stain
target fitted on a reference patch, scaling) is
:class:`~cds.pipelines.pathology.preprocess.TilePreprocessing`, applied by the serving code's own
:class:`~cds.pipelines.pathology.preprocess.TilePreprocessor`, and written beside the promoted model as
``preprocessing.json``, which the slide pipeline reads: training and serving cannot drift apart.

Data: generated patches (``training/data/he_tile_sets.py``: per-patch stain variation, independent seeds per split),
or a real dataset in ``data.folder``: ``train/``, ``validation/`` and ``test/`` subfolders, each with image files
(PNG, JPEG or TIFF patches, at ``tile_mpp``; resized to ``tile_size``) and a ``labels.csv`` with ``path`` and
``tumour`` (0/1) columns, other columns being subgroups. PatchCamelyon's HDF5 files are not read directly (h5py is
not a dependency): export them to that folder layout first (``tile_size: 96``, ``tile_mpp: 0.97``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from monai.data import Dataset as MonaiDataset
from monai.transforms import Compose, MapTransform, RandFlipd, RandRotate90d
from tqdm import tqdm

from cds.models.card import CardContent
from cds.models.spec import Activation
from cds.models.tile_preprocessing import PREPROCESSING_FILE, StainMethod, TilePreprocessing
from cds.pipelines.pathology.preprocess import TilePreprocessor, fit_stain_target
from cds.pipelines.pathology.slide import open_slide
from cds.settings import REPO_ROOT
from training.classifier import SPLITS, ClassifierConfig, ClassifierTask, Split, run_classifier
from training.core.config import as_dict, load_config
from training.data.folder import read_labels_csv
from training.data.he_tile_sets import LABEL, generate_tiles
from training.data.he_tiles import he_tile
from training.release import parse_args

LABELS = (LABEL,)
CHUNK = 64  # patches generated and normalised at a time
DEFAULT_CONFIG = REPO_ROOT / "training" / "configs" / "pathology_tiles.yaml"


@dataclass(frozen=True)
class GeneratedTiles:
    """Sizes of the generated splits (seeds ``seed``, ``seed + 1``, ``seed + 2``), class balance, stain variation."""

    train: int = 2400
    validation: int = 600
    test: int = 1200
    seed: int = 0
    tumour_fraction: float = 0.5
    stain_jitter: float = 0.08
    edge_fraction: float = 0.3


@dataclass(frozen=True)
class TileData:
    """Generated patches, or a real dataset folder (``train/``, ``validation/``, ``test/`` with labels.csv each)."""

    generated: GeneratedTiles = field(default_factory=GeneratedTiles)
    folder: Path | None = None
    augment: bool = True


@dataclass(frozen=True)
class StainConfig:
    """The stain-normalisation target: fitted on ``reference`` (an image file), else on a generated normal patch."""

    method: str = StainMethod.MACENKO.value
    reference: Path | None = None
    reference_seed: int = 4242


@dataclass(frozen=True)
class PathologyConfig(ClassifierConfig):
    """The pathology task's configuration (``training/configs/pathology_tiles*.yaml``)."""

    name: str = "pathology-demo"
    tile_mpp: float = 0.5
    tile_size: int = 224
    stain: StainConfig = field(default_factory=StainConfig)
    data: TileData = field(default_factory=TileData)
    experiment: str = "pathology-demo"


def read_tile(path: Path) -> np.ndarray:
    """A patch file (PNG, JPEG, TIFF) as uint8 RGB, through the slide readers (so bad files are refused alike)."""
    with open_slide(path) as slide:
        width, height = slide.dimensions
        return slide.read_region(0, 0, 0, width, height)


def preprocessing_of(config: PathologyConfig) -> TilePreprocessing:
    """The task's patch preprocessing: resolution, size and the stain target fitted on the reference patch."""
    if config.stain.reference is not None:
        reference = read_tile(config.stain.reference)
    else:
        reference = he_tile(0, seed=config.stain.reference_seed, size=config.tile_size, mpp=config.tile_mpp)
    return TilePreprocessing(mpp=config.tile_mpp, size=config.tile_size,
                             stain=fit_stain_target(config.stain.method, reference))


class ToModelInputd(MapTransform):
    """``image``: a stain-normalised uint8 [S, S, 3] patch → float32 [3, S, S] (the serving code's step 2)."""

    def __init__(self, preprocessor: TilePreprocessor) -> None:
        super().__init__(keys=["image"])
        self.preprocessor = preprocessor

    def __call__(self, data: dict[str, Any]) -> dict[str, Any]:
        item = dict(data)
        item["image"] = self.preprocessor.to_input(np.asarray(item["image"])[None])[0]
        item["label"] = np.asarray(item["label"], dtype=np.float32)
        return item


class PathologyTilesTask(ClassifierTask[PathologyConfig]):
    """H&E patches → probability of tumour."""

    config_class = PathologyConfig
    labels = LABELS

    def __init__(self, config: PathologyConfig) -> None:
        super().__init__(config)
        self.preprocessing = preprocessing_of(config)
        self.preprocessor = TilePreprocessor(self.preprocessing)

    def splits(self, names: tuple[str, ...]) -> dict[str, Split]:
        """From ``data.folder`` when set, else generated; every patch stain-normalised once, kept as uint8."""
        out = {}
        for offset, name in enumerate(SPLITS):
            if name in names:
                from_folder = self.config.data.folder is not None
                out[name] = self._folder_split(name) if from_folder else self._generated_split(name, offset)
        return out

    def _generated_split(self, name: str, offset: int) -> Split:
        g, config = self.config.data.generated, self.config
        count, items, labels = getattr(g, name), [], []
        for start in tqdm(range(0, count, CHUNK), desc=f"generating {name}", unit="chunk", leave=False):
            images, chunk_labels = generate_tiles(min(CHUNK, count - start), seed=g.seed + offset, start=start,
                                                  size=config.tile_size, mpp=config.tile_mpp,
                                                  tumour_fraction=g.tumour_fraction, stain_jitter=g.stain_jitter,
                                                  edge_fraction=g.edge_fraction)
            normalised, _ = self.preprocessor.normalise(images)
            items += [{"image": x, "label": [float(y)]} for x, y in zip(normalised, chunk_labels, strict=True)]
            labels += chunk_labels.tolist()
        return Split(items, np.asarray(labels, np.float32)[:, None])

    def _folder_split(self, name: str) -> Split:
        assert self.config.data.folder is not None
        files = read_labels_csv(self.config.data.folder / name, LABELS)
        items = []
        for path, label in tqdm(list(zip(files.paths, files.labels, strict=True)), desc=f"reading {name}",
                                unit="tile", leave=False):
            normalised, _ = self.preprocessor.normalise(read_tile(path)[None])
            items.append({"image": normalised[0], "label": label.tolist()})
        return Split(items, files.labels, files.subgroups)

    def dataset(self, split: Split, *, train: bool) -> MonaiDataset:
        """Scaling on every access (cheap), plus flips and quarter turns when training (tissue has no up)."""
        transforms: list[Any] = [ToModelInputd(self.preprocessor)]
        if train and self.config.data.augment:
            transforms += [RandFlipd(keys="image", prob=0.5, spatial_axis=0),
                           RandFlipd(keys="image", prob=0.5, spatial_axis=1),
                           RandRotate90d(keys="image", prob=0.75, max_k=3)]
        return MonaiDataset(split.items, transform=Compose(transforms))

    def spec_document(self, thresholds: dict[str, float]) -> dict[str, Any]:
        """Contract: [-1, 3, S, S] in [0, 1] (stain-normalised RGB) → [-1, 1] tumour probability."""
        size, mpp = self.config.tile_size, self.config.tile_mpp
        return {
            "name": self.config.name,
            "version": self.config.version,
            "task": "classification",
            "modality": "SM",
            "description": (f"Probability that a {size}x{size} H&E patch at {mpp:g} um/px shows tumour. Input: RGB "
                            f"stain-normalised to the target in {PREPROCESSING_FILE}, scaled to [0, 1]."),
            "intended_use": (
                "Demonstration and engine testing only. Not a medical device, not for diagnostic use, and not to be "
                "run on patient slides for any decision: it was trained on generated H&E-like patches."
            ),
            "intended_use_zh": (
                "仅供演示与引擎测试。不是医疗器械，不可用于诊断，不得对患者切片运行以作任何决策：在生成的类 H&E 图"
                "块上训练。"
            ),
            "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 3, size, size],
                        "value_range": list(self.preprocessing.value_range), "channel_names": ["R", "G", "B"]}],
            "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 1], "value_range": [0.0, 1.0],
                         "channel_names": list(LABELS)}],
            "labels": list(LABELS),
            "thresholds": {k: round(v, 6) for k, v in thresholds.items()},
            "max_batch_size": self.config.max_batch_size,
            "not_for_diagnostic_use": True,
        }

    def card(self, reproduce: str) -> CardContent:
        """Generated-data statement, preprocessing, limitations."""
        config, g = self.config, self.config.data.generated
        if config.data.folder is None:
            data = (
                "**This is a demonstration model trained on generated tiles.** All patches are **generated** by "
                "`training/data/he_tile_sets.py` (rendered by `training/data/he_tiles.py`); no patient data was used. "
                "Each patch is H&E-like tissue rendered by the Beer-Lambert law from stain concentrations: eosin "
                "stroma with fibres, haematoxylin nuclei. Normal patches have small, round, sparse nuclei; tumour "
                "patches larger, crowded, pleomorphic, irregular, darker ones. Every patch has its own stains "
                f"(optical-density vectors tilted by N(0, {g.stain_jitter:g}) per component, concentrations scaled "
                f"by 1 ± {2 * g.stain_jitter:g}) to mimic lab-to-lab variation, and {g.edge_fraction:.0%} are cut by "
                "a straight tissue edge (50-95 % tissue, the rest glass) as at a section's border. Splits come from "
                "independent seeds: "
                f"train {g.train} (seed {g.seed}), validation {g.validation} (seed {g.seed + 1}; threshold and "
                f"early stopping), test {g.test} (seed {g.seed + 2}; the held-out metrics below), about "
                f"{g.tumour_fraction:.0%} tumour."
            )
        else:
            data = f"Patches and labels from `{config.data.folder}` (train/validation/test subfolders)."
        network = config.network_spec(Activation.SIGMOID)
        preprocessing = self.preprocessing.model_dump_json(indent=2)
        reference = (f"`{config.stain.reference}`" if config.stain.reference is not None
                     else f"a generated normal patch (seed {config.stain.reference_seed})")
        return CardContent(
            data_statement=data,
            limitations=[
                "A demonstration model trained and tested on generated patches only: its metrics say nothing about "
                "real slides, and it is not for clinical use.",
                "Two classes of caricatured tissue; every other tissue type, artefact (folds, pen, blur, bubbles) "
                "and stain (IHC, special stains) is out of scope.",
                f"Patches must be cut at {config.tile_mpp:g} um/px and stain-normalised to the shipped target; the "
                "slide pipeline does both from preprocessing.json.",
                "Real weights drop in: `cds models import model.onnx --modality SM --labels tumour ...`, with a "
                "preprocessing.json beside the imported model for its resolution, stain target and scaling.",
            ],
            reproduce=reproduce,
            notes={"network": f"`{network.architecture.value}` with {network.params}, sigmoid output",
                   "training": str(as_dict(config.train))},
            sections={"Preprocessing (training and serving)": (
                f"Patches are cut at {config.tile_mpp:g} um/px, {config.tile_size} px square, stain-normalised "
                f"({self.preprocessing.stain.method.value}) to a target fitted on {reference} and scaled to "
                f"[0, 1], by `cds.pipelines.pathology.preprocess.TilePreprocessor` in training and "
                f"serving alike. Shipped as `{PREPROCESSING_FILE}` beside the model (sha256 of its canonical form "
                f"`{self.preprocessing.sha256}`):\n\n```json\n{preprocessing}\n```")},
        )


def write_sample(folder: Path, config: PathologyConfig) -> Path:
    """One tumour patch, from a seed no split uses, for the CLI docs (``samples/pathology-demo-tumour.png``)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pathology-demo-tumour.png"
    Image.fromarray(he_tile(1, seed=config.data.generated.seed + 1000, size=config.tile_size,
                            mpp=config.tile_mpp)).save(path, optimize=True)
    return path


def main(argv: list[str] | None = None) -> Any:
    """Entry point (see the module docstring); also writes preprocessing.json beside the promoted model."""
    evaluation = run_classifier(PathologyTilesTask, argv, description=__doc__, default_config=DEFAULT_CONFIG)
    if evaluation is not None:
        args = parse_args(argv, __doc__, DEFAULT_CONFIG)
        config = load_config(PathologyConfig, args.config, args.set)
        if not args.no_promote:
            preprocessing_of(config).write(args.registry / config.name / config.version / PREPROCESSING_FILE)
        if config.name == "pathology-demo":
            write_sample(REPO_ROOT / "samples", config)
    return evaluation


if __name__ == "__main__":
    main()
