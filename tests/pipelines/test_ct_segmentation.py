"""CT segmentation pipeline: mechanics with a fake backend (exact volumes, orientation, refusals), then the shipped
ct-organs-demo on ONNX Runtime against the generator's ground truth."""

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines.imaging.ct_segmentation import CtSegmentationOptions, CtSegmentationPipeline
from cds.pipelines.imaging.dicom_reader import DicomInstance, read_instance
from cds.results.imaging import CtSegmentation, Volume
from cds.serving.backends.base import BaseBackend
from tests.conftest import EchoBackend
from training.data.ct_volumes import LABELS, CtCase, generate_case
from training.evaluation import dice_hd95

ROI = 16
FAKE_SPEC: dict[str, Any] = {
    "name": "bright-blocks", "version": "1.0.0", "task": "segmentation", "modality": "CT",
    "description": "Labels voxels brighter than 200 HU.", "intended_use": "Tests only.",
    "labels": ["background", "bright"],
    "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 1, ROI, ROI, ROI], "value_range": [0.0, 1.0]}],
    "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, 2, ROI, ROI, ROI]}],
    "volume": {"spacing_mm": [2.0, 2.0, 2.0], "window": [-200, 300], "roi_size": [ROI, ROI, ROI], "overlap": 0.5},
    "imaging": {"modalities": ["CT"], "min_slices": 8, "slice_spacing_mm": [1.0, 5.0]},
    "max_batch_size": 2,
    "artifacts": {"onnx": {"path": "/nonexistent/fake.onnx", "sha256": "0" * 64}},
    "model_card": "/nonexistent/fake.md",
}


class BrightBackend(EchoBackend):
    """Fake engine: class 1 where the windowed input exceeds 0.8 (200 HU); ``calls`` records the window batches."""

    def __init__(self) -> None:
        BaseBackend.__init__(self, ModelSpec.model_validate(FAKE_SPEC))
        self.calls: list[int] = []
        self.gate = None

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = inputs["image"]
        self.calls.append(len(x))
        bright = (x > 0.8).astype(np.float32)
        return {"probabilities": np.concatenate([1 - bright, bright], axis=1)}


def _axial(voxels: np.ndarray, spacing: tuple[float, float, float] = (2.0, 2.0, 2.0),
           modality: str = "CT") -> Volume:
    affine = np.eye(4)
    affine[:3, :3] = np.array([[0, 0, spacing[2]], [0, spacing[1], 0], [spacing[0], 0, 0]])
    return Volume(voxels=voxels.astype(np.float32), affine=affine, spacing=spacing, study_uid="1.2", series_uid="1.3",
                  modality=modality, sop_instance_uids=())


def _block_volume() -> tuple[np.ndarray, np.ndarray]:
    hu = np.full((20, 24, 28), -1000.0, np.float32)
    truth = np.zeros(hu.shape, np.uint8)
    hu[5:12, 6:14, 8:20], truth[5:12, 6:14, 8:20] = 400.0, 1
    return hu, truth


@pytest.fixture
def bright() -> BrightBackend:
    backend = BrightBackend()
    backend.load()
    return backend


def test_volumes_in_ml_are_exact_on_the_source_grid(bright: BrightBackend) -> None:
    hu, truth = _block_volume()
    out = CtSegmentationPipeline(bright, CtSegmentationOptions(sw_batch_size=8))(_axial(hu))
    np.testing.assert_array_equal(out.labels, truth)
    (entry,) = out.result.structures
    assert entry.label == "bright" and entry.voxels == 7 * 8 * 12
    assert entry.volume_ml == pytest.approx(7 * 8 * 12 * 8 / 1000)
    assert out.result.spacing_mm == (2.0, 2.0, 2.0) and out.result.model.sha256 == "0" * 64
    assert out.result.warnings == ("not for diagnostic use",)
    assert max(bright.calls) == 2  # sw_batch_size is capped at the model's max_batch_size
    assert set(out.stage_ms) == {"contract_ms", "decode_ms", "preprocess_ms", "infer_ms", "postprocess_ms"}
    assert len(out.result.input_sha256) == 64


def test_labels_return_in_the_source_order_of_a_reoriented_series(bright: BrightBackend) -> None:
    hu, truth = _block_volume()
    stored = np.ascontiguousarray(hu[::-1].transpose(0, 2, 1))  # head-to-feet, rows and columns swapped
    affine = np.zeros((4, 4))
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[3, 3] = [0, 0, -2.0], [2.0, 0, 0], [0, 2.0, 0], 1.0
    volume = Volume(voxels=stored, affine=affine, spacing=(2.0, 2.0, 2.0), study_uid="", series_uid="",
                    modality="CT", sop_instance_uids=())
    out = CtSegmentationPipeline(bright)(volume)
    np.testing.assert_array_equal(out.labels, truth[::-1].transpose(0, 2, 1))
    assert out.result.structures[0].voxels == int(truth.sum())


def test_stray_islands_are_dropped_when_the_spec_keeps_the_largest_part(bright: BrightBackend) -> None:
    hu, truth = _block_volume()
    hu[15:17, 18:20, 2:4] = 400.0  # a separate 2x2x2 island
    assert CtSegmentationPipeline(bright)(_axial(hu)).result.structures[0].voxels == int(truth.sum()) + 8
    volume = bright.spec.volume.model_copy(update={"largest_component_only": True})  # type: ignore[union-attr]
    bright._spec = bright.spec.model_copy(update={"volume": volume})
    out = CtSegmentationPipeline(bright)(_axial(hu))
    np.testing.assert_array_equal(out.labels, truth)


def test_partial_and_missing_structures_are_warned_about(bright: BrightBackend) -> None:
    hu, _ = _block_volume()
    hu[0:3] = 400.0  # reaches the first slice
    assert any("reaches the first or last slice" in w for w in CtSegmentationPipeline(bright)(_axial(hu)).result.warnings)
    empty = CtSegmentationPipeline(bright)(_axial(np.full((10, 20, 20), -1000.0)))
    assert empty.result.structures[0].voxels == 0 and "bright: not found" in empty.result.warnings


@pytest.mark.parametrize(
    ("volume", "options", "code"),
    [
        (_axial(np.zeros((10, 20, 20)), modality="MR"), None, "wrong_modality"),
        (_axial(np.zeros((6, 20, 20))), None, "wrong_slice_count"),
        (_axial(np.zeros((10, 20, 20)), spacing=(8.0, 2.0, 2.0)), None, "slice_spacing_out_of_range"),
        (_axial(np.zeros((10, 20, 20))), CtSegmentationOptions(max_model_voxels=1000), "volume_too_large"),
    ],
)
def test_volumes_outside_the_contract_are_refused(bright: BrightBackend, volume: Volume,
                                                  options: CtSegmentationOptions | None, code: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        CtSegmentationPipeline(bright, options)(volume)
    assert err.value.code == code
    assert bright.calls == []  # refused before any inference


def test_non_segmentation_models_are_refused(echo: BaseBackend) -> None:
    with pytest.raises(InvalidInputError) as err:
        CtSegmentationPipeline(echo)
    assert err.value.code == "wrong_task"


# The shipped model on held-out generated series (stream 4242, which no training split uses), cases 0-3, as measured
# when it was trained: mean Dice liver 0.879, spleen 0.695, kidney_left 0.577, kidney_right 0.714 (non-contrast
# cases are the hard ones); mean |volume error| liver 9 %, small structures <= 1.0 mL. Floors leave a margin.
DICE_FLOOR = {"liver": 0.8, "spleen": 0.55, "kidney_left": 0.45, "kidney_right": 0.6}
LIVER_RELATIVE_ERROR = 0.15
SMALL_ABSOLUTE_ERROR_ML = 2.0
CASES = 4


@pytest.fixture(scope="module")
def shipped(registry: ModelRegistry) -> ModelSpec:
    return registry.get("ct-organs-demo", "1.0.0")


@pytest.fixture(scope="module")
def read(shipped: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[CtCase, list[DicomInstance],
                                                                                    CtSegmentation]]:
    from cds.serving.backends import create_backend

    backend = create_backend(BackendKind.ONNXRUNTIME, shipped)
    backend.load()
    pipeline = CtSegmentationPipeline(backend)
    folder = tmp_path_factory.mktemp("ct")
    out = []
    try:
        for index in range(CASES):
            case = generate_case(4242, index)
            instances = [read_instance(p) for p in case.write_dicom(folder / str(index), shuffle_seed=index)]
            out.append((case, instances, pipeline(instances)))
    finally:
        backend.close()
    return out


def test_shipped_model_segments_held_out_series_against_ground_truth(shipped: ModelSpec, read: list[Any]) -> None:
    dice: dict[str, list[float]] = {label: [] for label in LABELS[1:]}
    errors: dict[str, list[float]] = {label: [] for label in LABELS[1:]}
    for case, _, out in read:
        assert out.labels.shape == case.labels.shape and out.labels.dtype == np.uint8
        scores = dice_hd95(out.labels[None], case.labels[None], len(LABELS), case.spacing_mm)["dice"]
        truth = case.volumes_ml()
        for label, value in zip(LABELS[1:], scores, strict=True):
            assert truth[label] > 0
            dice[label].append(value)
            errors[label].append(out.result.structure(label).volume_ml - truth[label])
        assert out.result.structure("liver").voxels == int((out.labels == 1).sum())
    for label, floor in DICE_FLOOR.items():
        assert float(np.mean(dice[label])) >= floor, (label, dice[label])
    liver_truth = [case.volumes_ml()["liver"] for case, _, _ in read]
    assert float(np.mean(np.abs(errors["liver"]) / liver_truth)) <= LIVER_RELATIVE_ERROR, errors["liver"]
    for label in ("spleen", "kidney_left", "kidney_right"):
        assert float(np.mean(np.abs(errors[label]))) <= SMALL_ABSOLUTE_ERROR_ML, (label, errors[label])


def test_shipped_result_carries_identity_and_matches_the_volume_path(shipped: ModelSpec, read: list[Any]) -> None:
    from cds.serving.backends import create_backend

    case, _, out = read[0]
    model = out.result.model
    assert (model.name, model.version, model.sha256, model.backend) == (
        "ct-organs-demo", "1.0.0", shipped.artifacts.onnx.sha256, BackendKind.ONNXRUNTIME)
    assert out.result.intended_use == shipped.intended_use and "not for diagnostic use" in out.result.warnings
    assert [s.label for s in out.result.structures] == list(LABELS[1:])
    assert out.volume.series_uid and len(out.volume.sop_instance_uids) == case.hounsfield.shape[0]
    with create_backend(BackendKind.ONNXRUNTIME, shipped) as backend:
        again = CtSegmentationPipeline(backend)(case.volume())  # the in-memory volume, not the DICOM files
    np.testing.assert_array_equal(again.labels, out.labels)
    assert again.result.input_sha256 == out.result.input_sha256


def _modality(instances: list[DicomInstance], value: str) -> list[DicomInstance]:
    changed = []
    for instance in instances:
        dataset = copy.deepcopy(instance.dataset)  # Dataset.copy() would share the elements
        dataset.Modality = value
        changed.append(DicomInstance(dataset=dataset, source=instance.source))
    return changed


def test_shipped_model_refuses_series_outside_its_contract(shipped: ModelSpec, read: list[Any]) -> None:
    from cds.serving.backends import create_backend

    _, instances, _ = read[0]
    ordered = sorted(instances, key=lambda i: float(i.dataset.ImagePositionPatient[2]))
    cases = {"wrong_modality": _modality(instances, "MR"), "wrong_slice_count": ordered[:10],
             "missing_slices": ordered[:12] + ordered[13:]}
    with create_backend(BackendKind.ONNXRUNTIME, shipped) as backend:
        pipeline = CtSegmentationPipeline(backend)
        for code, series in cases.items():
            with pytest.raises(InvalidInputError) as err:
                pipeline(series)
            assert err.value.code == code


def test_spec_fields_of_the_shipped_model(shipped: ModelSpec, tmp_path: Path) -> None:
    assert shipped.volume is not None and shipped.imaging is not None
    assert shipped.inputs[0].shape == (-1, 1, *shipped.volume.roi_size)
    assert shipped.outputs[0].shape == (-1, len(LABELS), *shipped.volume.roi_size)
    assert shipped.labels == LABELS and shipped.imaging.modalities[0].value == "CT"
    assert shipped.artifacts.onnx.path.stat().st_size < 5e6
    card = shipped.model_card.read_text()
    assert "demonstration model trained on generated volumes" in card and "not for clinical use" in card
    assert "python -m training.ct_organs --config training/configs/ct_organs.yaml" in card
