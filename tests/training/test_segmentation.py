"""Volume preprocessing shared by training and serving, the segmentation spec, and the smoke training run
(fit → whole-volume evaluation → ONNX → parity → MLflow → promotion into a temporary registry)."""

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cds.errors import InvalidInputError, InvalidSpecError
from cds.models.registry import ModelRegistry, load_spec
from cds.models.spec import ModelSpec, VolumePreprocessing
from cds.pipelines.imaging.ct_volume import (
    canonical_axes,
    labels_to_model_grid,
    labels_to_source_grid,
    model_shape,
    to_model_grid,
    window,
)
from cds.results.imaging import Volume
from training.segmentation import mean_dice
from training.segmentation_eval import bootstrap_mean_ci

REPO = Path(__file__).resolve().parents[2]
PARAMS = VolumePreprocessing(spacing_mm=(1.5, 1.5, 1.5), window=(-160.0, 240.0), roi_size=(32, 32, 32))


def _volume(voxels: np.ndarray, spacing: tuple[float, float, float], affine: np.ndarray | None = None) -> Volume:
    if affine is None:  # an ordinary axial series: (slice, row, column) along (+z, +y, +x) in LPS
        affine = np.eye(4)
        affine[:3, :3] = np.array([[0, 0, spacing[2]], [0, spacing[1], 0], [spacing[0], 0, 0]])
    return Volume(voxels=voxels.astype(np.float32), affine=affine, spacing=spacing, study_uid="", series_uid="",
                  modality="CT", sop_instance_uids=())


def test_window_scales_exactly() -> None:
    values = np.array([-1000, -160, -60, 40, 240, 3000], dtype=np.float32)
    np.testing.assert_array_equal(window(values, (-160.0, 240.0)), [0.0, 0.0, 0.25, 0.5, 1.0, 1.0])
    assert window(values, (-160.0, 240.0)).dtype == np.float32


def test_model_grid_size_follows_spacing() -> None:
    assert model_shape((40, 100, 100), (2.5, 0.75, 0.75), (1.5, 1.5, 1.5)) == (67, 50, 50)
    image, grid = to_model_grid(_volume(np.full((40, 100, 100), 40.0), (2.5, 0.75, 0.75)), PARAMS)
    assert image.shape == grid.shape == (67, 50, 50) and image.dtype == np.float32
    assert float(image.min()) == float(image.max()) == 0.5  # 40 HU, mid-window


def test_labels_survive_the_round_trip_where_the_model_grid_is_finer() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(7, 9, 11)).astype(np.uint8)
    volume = _volume(np.zeros(labels.shape), (3.0, 3.0, 3.0))
    _, grid = to_model_grid(volume, PARAMS)
    assert grid.shape == (14, 18, 22)
    on_model = labels_to_model_grid(labels, grid)
    assert on_model.dtype == np.uint8 and set(np.unique(on_model)) == set(np.unique(labels))
    np.testing.assert_array_equal(labels_to_source_grid(on_model, grid), labels)


def test_labels_survive_downsampling_when_constant_over_the_merged_voxels() -> None:
    rng = np.random.default_rng(1)
    coarse = rng.integers(0, 5, size=(5, 6, 7)).astype(np.uint8)
    labels = coarse.repeat(2, 0).repeat(2, 1).repeat(2, 2)  # 2x2x2 blocks
    _, grid = to_model_grid(_volume(np.zeros(labels.shape), (0.75, 0.75, 0.75)), PARAMS)
    np.testing.assert_array_equal(labels_to_model_grid(labels, grid), coarse)
    np.testing.assert_array_equal(labels_to_source_grid(coarse, grid), labels)


def test_reoriented_series_reach_the_same_model_input() -> None:
    rng = np.random.default_rng(2)
    hu = rng.normal(40, 60, size=(12, 16, 20)).astype(np.float32)
    labels = rng.integers(0, 5, size=hu.shape).astype(np.uint8)
    spacing = (3.0, 1.5, 0.75)
    standard = _volume(hu, spacing)
    # the same voxels stored head-to-feet with rows and columns swapped: voxel (k, i, j) holds hu[K-1-k, j, i]
    stored = np.transpose(hu[::-1], (0, 2, 1))
    affine = np.zeros((4, 4))
    affine[:3, 0], affine[:3, 1], affine[:3, 2] = [0, 0, -3.0], [0.75, 0, 0], [0, 1.5, 0]
    affine[2, 3], affine[3, 3] = 3.0 * 11, 1.0
    flipped = _volume(stored, (3.0, 0.75, 1.5), affine)
    assert canonical_axes(flipped.affine) == ((0, 2, 1), (True, False, False))
    image_a, grid_a = to_model_grid(standard, PARAMS)
    image_b, grid_b = to_model_grid(flipped, PARAMS)
    np.testing.assert_array_equal(image_a, image_b)
    on_model = labels_to_model_grid(labels, grid_a)
    np.testing.assert_array_equal(labels_to_model_grid(np.transpose(labels[::-1], (0, 2, 1)), grid_b), on_model)
    back = labels_to_source_grid(on_model, grid_a)  # columns were merged in pairs: not the labels, but the same
    np.testing.assert_array_equal(labels_to_source_grid(on_model, grid_b), np.transpose(back[::-1], (0, 2, 1)))


def test_oblique_series_and_mismatched_labels_are_refused() -> None:
    affine = np.eye(4)
    affine[:3, 1], affine[:3, 2] = [0.7071, 0.7071, 0], [0.7071, -0.7071, 0]
    with pytest.raises(InvalidInputError) as err:
        to_model_grid(_volume(np.zeros((4, 4, 4)), (1.0, 1.0, 1.0), affine), PARAMS)
    assert err.value.code == "oblique_orientation"
    _, grid = to_model_grid(_volume(np.zeros((4, 4, 4)), (1.5, 1.5, 1.5)), PARAMS)
    with pytest.raises(InvalidInputError) as err:
        labels_to_model_grid(np.zeros((4, 4, 5), np.uint8), grid)
    assert err.value.code == "label_shape"


def test_mean_dice_and_bootstrap_interval() -> None:
    labels = np.zeros((1, 1, 4, 4, 4), np.uint8)
    labels[0, 0, :2] = 1
    logits = np.zeros((1, 3, 4, 4, 4), np.float32)
    logits[0, 0] = 1.0
    logits[0, 1, :1] = 2.0  # half of class 1 found; class 2 absent from the truth and not scored
    assert mean_dice(labels, logits) == pytest.approx(2 * 16 / (32 + 16))
    assert bootstrap_mean_ci(np.array([0.5, np.nan])) is None
    low, high = bootstrap_mean_ci(np.array([0.7, 0.8, 0.9, 1.0]))  # type: ignore[misc]
    assert 0.7 <= low < 0.85 < high <= 1.0


SEG_SPEC: dict[str, Any] = {
    "name": "seg", "version": "1.0.0", "task": "segmentation", "modality": "CT", "description": "d",
    "intended_use": "tests", "labels": ["background", "liver"],
    "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, 32, 32, 32]}],
    "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 2, 32, 32, 32]}],
    "volume": {"spacing_mm": [1.5, 1.5, 1.5], "window": [-160, 240], "roi_size": [32, 32, 32]},
    "artifacts": {"onnx": {"path": "/x.onnx", "sha256": "0" * 64}}, "model_card": "/x.md",
}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"labels": ["liver", "background"]}, "must start with 'background'"),
        ({"labels": ["background", "liver", "spleen"]}, "first output must be [-1, 3, *spatial]"),
        ({"volume": {"spacing_mm": [1.5, 1.5, 1.5], "window": [-160, 240], "roi_size": [48, 32, 32]}},
         "does not fit the input"),
        ({"volume": {"spacing_mm": [1.5, 1.5, 1.5], "window": [240, -160], "roi_size": [32, 32, 32]}},
         "window low must be below high"),
    ],
)
def test_segmentation_specs_are_validated(tmp_path: Path, change: dict[str, Any], fragment: str) -> None:
    import yaml

    assert ModelSpec.model_validate(SEG_SPEC).volume == VolumePreprocessing(
        spacing_mm=(1.5, 1.5, 1.5), window=(-160, 240), roi_size=(32, 32, 32), overlap=0.25)
    document = copy.deepcopy(SEG_SPEC) | change
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidSpecError) as err:
        load_spec(tmp_path / "spec.yaml")
    assert fragment in err.value.message


@pytest.mark.slow
def test_smoke_configuration_trains_exports_and_promotes(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    from cds.models.spec import BackendKind
    from cds.pipelines.imaging.ct_segmentation import CtSegmentationPipeline
    from cds.serving.backends import create_backend
    from training.ct_organs import main
    from training.data.ct_volumes import generate_case

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    evaluation = main(["--config", str(REPO / "training/configs/ct_organs_smoke.yaml"), "--tracking-uri", uri,
                       "--registry", str(tmp_path / "registry"), "--cards", str(tmp_path / "cards"),
                       "--set", f"train.checkpoint_dir={tmp_path / 'ckpt'}"])
    assert evaluation.parity is not None and evaluation.parity.max_abs < 1e-4 and evaluation.parity.samples == 2
    assert set(evaluation.segmentation) == {"validation", "test"}
    assert set(evaluation.segmentation["test"]) <= {"liver", "spleen", "kidney_left", "kidney_right"}
    assert "liver" in evaluation.segmentation["test"] and evaluation.segmentation["test"]["liver"].n == 2

    spec = ModelRegistry.from_directory(tmp_path / "registry").get("ct-organs-smoke")
    assert spec.volume == VolumePreprocessing(spacing_mm=(3.0, 3.0, 3.0), window=(-160.0, 240.0),
                                              roi_size=(32, 32, 32), overlap=0.25)
    assert spec.inputs[0].shape == (-1, 1, 32, 32, 32) and spec.outputs[0].shape == (-1, 5, 32, 32, 32)
    assert spec.imaging is not None and spec.imaging.slice_spacing_mm == (1.0, 6.0)
    card = spec.model_card.read_text()
    assert "Not for diagnostic use" in card and "**generated**" in card and spec.artifacts.onnx.sha256 in card
    liver = evaluation.segmentation["test"]["liver"]
    assert f"| liver | 2 | {liver.dice:.4f}" in card
    assert "python -m training.ct_organs --config training/configs/ct_organs_smoke.yaml" in card

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("ct-organs-smoke", "1").run_id)
    assert run.data.params["spacing_mm"] == "[3.0, 3.0, 3.0]" and "test.mean_dice" in run.data.metrics
    assert [m.step for m in client.get_metric_history(run.info.run_id, "val_loss")] == [1]

    volume = generate_case(500, 0).volume()
    labels = {}
    for kind in (BackendKind.ONNXRUNTIME, BackendKind.TORCH):  # the shipped state_dict loads into the spec's UNet
        backend = create_backend(kind, spec)
        backend.load()
        try:
            labels[kind] = CtSegmentationPipeline(backend)(volume).labels
        finally:
            backend.close()
    assert labels[BackendKind.ONNXRUNTIME].shape == volume.voxels.shape
    agreement = float((labels[BackendKind.ONNXRUNTIME] == labels[BackendKind.TORCH]).mean())
    assert agreement > 0.999
