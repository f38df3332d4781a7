"""The pathology patch task: generated sets, training/serving preprocessing identity, the folder format end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cds.models.registry import ModelRegistry
from cds.models.tile_preprocessing import PREPROCESSING_FILE, TilePreprocessing
from cds.pipelines.pathology.pipeline import SlidePipeline
from cds.pipelines.pathology.preprocess import TilePreprocessor
from cds.serving.backends import create_backend
from cds.settings import REPO_ROOT
from training.core.config import load_config
from training.data.he_tile_sets import generate_tiles, write_tile_folder
from training.pathology_tiles import PathologyConfig, PathologyTilesTask, preprocessing_of

SMOKE = REPO_ROOT / "training" / "configs" / "pathology_tiles_smoke.yaml"


def small_config(*overrides: str) -> PathologyConfig:
    sizes = ["data.generated.train=4", "data.generated.validation=4", "data.generated.test=6"]
    return load_config(PathologyConfig, SMOKE, [*sizes, *overrides])


def test_generated_sets_are_reproducible_by_index_and_vary_in_stain() -> None:
    whole, labels = generate_tiles(6, seed=3, size=48, stain_jitter=0.08)
    part, part_labels = generate_tiles(3, seed=3, start=3, size=48, stain_jitter=0.08)
    np.testing.assert_array_equal(whole[3:], part)
    np.testing.assert_array_equal(labels[3:], part_labels)
    plain, plain_labels = generate_tiles(6, seed=3, size=48)
    np.testing.assert_array_equal(labels, plain_labels)
    assert np.abs(whole.astype(int) - plain).mean() > 2  # same tissue, other stains
    assert set(labels.tolist()) == {0, 1}


def test_training_feeds_the_network_exactly_what_serving_does() -> None:
    task = PathologyTilesTask(small_config())
    split = task.splits(("test",))["test"]
    dataset = task.dataset(split, train=False)
    g = task.config.data.generated
    raw, labels = generate_tiles(g.test, seed=g.seed + 2, size=task.config.tile_size, mpp=task.config.tile_mpp,
                                 tumour_fraction=g.tumour_fraction, stain_jitter=g.stain_jitter,
                                 edge_fraction=g.edge_fraction)
    serving = TilePreprocessor(task.preprocessing)(raw).pixels
    for index in range(g.test):
        item = dataset[index]
        np.testing.assert_array_equal(item["image"], serving[index])
        assert item["label"].tolist() == [float(labels[index])]
    augmented = task.dataset(split, train=True)[0]["image"]
    assert augmented.shape == serving[0].shape and np.isclose(float(np.sort(augmented, axis=None).sum()),
                                                              float(np.sort(serving[0], axis=None).sum()))


def test_the_stain_target_comes_from_the_reference(tmp_path: Path) -> None:
    generated = preprocessing_of(small_config())
    reference = tmp_path / "reference.png"
    from training.data.he_tile_sets import generated_tile

    Image.fromarray(generated_tile(0, seed=5, index=1, size=64, mpp=1.0, stain_jitter=0.2)).save(reference)
    from_file = preprocessing_of(small_config(f"stain.reference={reference}"))
    assert generated.stain.method == from_file.stain.method == "macenko"
    assert generated.stain.stain_matrix != from_file.stain.stain_matrix
    assert preprocessing_of(small_config()) == generated  # deterministic: the same target every run


@pytest.mark.slow
def test_a_tile_folder_trains_registers_and_serves(tmp_path: Path) -> None:
    from training.pathology_tiles import main

    data = tmp_path / "tiles"
    for split, count, seed in (("train", 96, 1), ("validation", 32, 2), ("test", 32, 3)):
        write_tile_folder(data / split, count, seed=seed, size=64, mpp=1.0, stain_jitter=0.08)
    registry, cards = tmp_path / "registry", tmp_path / "cards"
    evaluation = main(["--config", str(SMOKE), "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                       "--registry", str(registry), "--cards", str(cards), "--set", f"data.folder={data}",
                       "--set", f"train.checkpoint_dir={tmp_path / 'ckpt'}", "--set", "name=pathology-folder",
                       "--set", "train.epochs=4", "--set", "train.batch_size=8"])
    assert evaluation.splits["test"]["tumour"].auc > 0.85  # it learned from the folder (chance is 0.5)
    spec = ModelRegistry.from_directory(registry).get("pathology-folder")
    shipped = TilePreprocessing.read(spec.artifacts.onnx.path.parent / PREPROCESSING_FILE)
    assert shipped == preprocessing_of(load_config(PathologyConfig, SMOKE, [f"data.folder={data}"]))
    card = spec.model_card.read_text()
    assert "AUC (95 % bootstrap CI)" in card and shipped.sha256 in card and "### test (n = 32" in card
    tile = tmp_path / "tile.png"
    Image.open(next((data / "test").glob("*.png"))).save(tile)
    with create_backend("onnxruntime", spec) as backend:
        result = SlidePipeline(backend)(tile).result
    assert result.preprocessing == shipped and result.model.sha256 == spec.artifacts.onnx.sha256
    assert not any("ships no" in warning for warning in result.warnings)
    assert json.loads(result.model_dump_json())["status"] == "scored"
