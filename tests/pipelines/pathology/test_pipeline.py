"""The slide pipeline end to end on generated slides, with a weightless test model (see fakes.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from PIL import Image
from sklearn.metrics import roc_auc_score

from cds.errors import InvalidInputError
from cds.interop.outputs.slide import write_slide_outputs
from cds.pipelines.pathology.pipeline import SlideOptions, SlidePipeline
from cds.pipelines.pathology.preprocess import TilePreprocessor
from cds.results.identity import hash_path
from cds.results.slide import SlideAnalysis, SlideResult, SlideStatus
from tests.pipelines.pathology.fakes import DarknessBackend, macenko_preprocessing, patch_spec
from tests.pipelines.pathology.slides import patch_truth
from training.data.he_slide import GeneratedSlide, write_slide
from training.data.he_tiles import Layout, he_tile

SIZE, MPP = 112, 1.0  # patches of 112 µm, read from the slides' 1 µm/px level


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> DarknessBackend:
    folder = tmp_path_factory.mktemp("model")
    return DarknessBackend(patch_spec(folder, size=SIZE, preprocessing=macenko_preprocessing(SIZE, MPP)))


@pytest.fixture(scope="module")
def tumour_analysis(backend: DarknessBackend, tumour_slide: GeneratedSlide) -> SlideAnalysis:
    return SlidePipeline(backend, options=SlideOptions(batch_size=8))(tumour_slide.path)


def test_probabilities_follow_the_ground_truth_tumour(tumour_analysis: SlideAnalysis,
                                                      tumour_slide: GeneratedSlide) -> None:
    grid = tumour_analysis.grid
    assert grid is not None
    rows, columns = np.nonzero(~np.isnan(grid.values))
    truth = np.array([patch_truth(tumour_slide, c * grid.extent0, r * grid.extent0, grid.extent0)
                      for r, c in zip(rows, columns, strict=True)])
    scores = grid.values[rows, columns]
    clear = (truth >= 0.9) | (truth <= 0.1)  # patches on the tumour's edge are neither
    assert (truth[clear] >= 0.9).sum() >= 10 and (truth[clear] <= 0.1).sum() >= 10
    assert roc_auc_score(truth[clear] >= 0.9, scores[clear]) > 0.95
    result = tumour_analysis.result
    assert result.status is SlideStatus.SCORED and result.score is not None and result.score.positive
    true_area = float((truth >= 0.5).mean())
    assert abs(result.score.tumour_area_fraction - true_area) < 0.1
    assert result.tiles is not None and result.tiles.scored == len(scores) and result.tiles.level == 1


def test_heatmap_is_red_over_the_tumour_and_untouched_off_tissue(tumour_analysis: SlideAnalysis,
                                                                 tumour_slide: GeneratedSlide) -> None:
    heatmap = tumour_analysis.heatmap
    assert heatmap is not None and heatmap.dtype == np.uint8
    height, width = heatmap.shape[:2]
    assert (width, height) == (1024, 683)  # the tissue thumbnail's size
    # the tumour disc's centre (0.32 w, 0.5 h) is red-dominant; glass at the top-left corner stays near white
    centre = heatmap[int(0.5 * height) - 5:int(0.5 * height) + 5, int(0.32 * width) - 5:int(0.32 * width) + 5]
    assert centre[..., 0].mean() > centre[..., 2].mean() + 60
    assert heatmap[:20, :20].min() > 200


def test_result_carries_model_identity_and_input_hash(tumour_analysis: SlideAnalysis, backend: DarknessBackend,
                                                      tumour_slide: GeneratedSlide) -> None:
    result = tumour_analysis.result
    assert result.model.name == "darkness-test" and result.model.sha256 == backend.spec.artifacts.onnx.sha256
    assert result.input_sha256 == hashlib.sha256(tumour_slide.path.read_bytes()).hexdigest()
    assert result.preprocessing.mpp == MPP and result.preprocessing_sha256 == result.preprocessing.sha256
    assert result.finding is not None and result.finding.probability == result.score.top_k_mean  # type: ignore[union-attr]
    assert result.warnings[0] == "not for diagnostic use"
    assert {"open_ms", "tissue_ms", "read_ms", "preprocess_ms", "infer_ms", "heatmap_ms", "total_ms"} <= set(
        result.stage_ms)


def test_outputs_are_valid_json_fhir_and_png(tumour_analysis: SlideAnalysis, tmp_path: Path) -> None:
    paths = write_slide_outputs(tumour_analysis, tmp_path, title="test read-out")
    assert [p.name for p in paths] == ["result.json", "diagnostic-report.json", "heatmap.png"]
    assert SlideResult.model_validate_json(paths[0].read_text()) == tumour_analysis.result
    report = json.loads(paths[1].read_text())
    DiagnosticReport.model_validate(report)
    assert report["category"][0]["coding"][0]["code"] == "PAT" and report["code"]["coding"][0]["code"] == "11526-1"
    device = next(r for r in report["contained"] if r["resourceType"] == "Device")
    assert device["identifier"][0]["value"] == tumour_analysis.result.model.sha256
    area = next(r for r in report["contained"] if r.get("id") == "area")
    assert area["valueQuantity"]["value"] == pytest.approx(
        100 * tumour_analysis.result.score.tumour_area_fraction, abs=1e-3)  # type: ignore[union-attr]
    assert "tumour suspected" in report["conclusion"]
    with Image.open(paths[2]) as image:
        assert image.size == (1024, 683) and image.mode == "RGB"


def test_blank_slide_is_reported_as_no_tissue_without_a_score(backend: DarknessBackend, blank_slide: GeneratedSlide,
                                                              tmp_path: Path) -> None:
    calls = len(backend.batches)
    analysis = SlidePipeline(backend)(blank_slide.path)
    result = analysis.result
    assert result.status is SlideStatus.NO_TISSUE and "no tissue" in result.reason
    assert result.score is None and result.finding is None and analysis.heatmap is None
    assert len(backend.batches) == calls  # the model was never asked
    paths = write_slide_outputs(analysis, tmp_path, title="blank")
    assert [p.name for p in paths] == ["result.json", "diagnostic-report.json"]
    report = json.loads(paths[1].read_text())
    assert "result" not in report and "no tissue found" in report["conclusion"]


@pytest.mark.parametrize("label", [0, 1])
def test_a_single_tile_is_classified_as_one_patch(backend: DarknessBackend, tmp_path: Path, label: int) -> None:
    path = tmp_path / f"tile-{label}.png"
    Image.fromarray(he_tile(label, seed=31, size=SIZE, mpp=MPP)).save(path)
    calls = len(backend.batches)
    result = SlidePipeline(backend)(path).result
    assert backend.batches[calls:] == [1]
    assert result.status is SlideStatus.SCORED and result.tiles is not None and result.tiles.scored == 1
    assert result.score is not None and result.score.positive is bool(label)
    assert any("single tile states no resolution" in w for w in result.warnings)


def test_the_model_sees_exactly_the_shared_preprocessing(tmp_path: Path) -> None:
    spec = patch_spec(tmp_path / "model", size=SIZE, preprocessing=macenko_preprocessing(SIZE, MPP))
    backend = DarknessBackend(spec, keep_inputs=True)
    tile = he_tile(1, seed=32, size=SIZE, mpp=MPP)
    Image.fromarray(tile).save(tmp_path / "tile.png")
    pipeline = SlidePipeline(backend)
    pipeline(tmp_path / "tile.png")
    expected = TilePreprocessor(macenko_preprocessing(SIZE, MPP))(tile[None]).pixels
    np.testing.assert_array_equal(backend.seen[0], expected)
    assert not np.array_equal(expected, TilePreprocessor(pipeline.preprocessing.model_copy(
        update={"stain": macenko_preprocessing(SIZE, MPP).stain.model_copy(update={"max_concentrations": (2.0, 1.0)})
                }))(tile[None]).pixels)  # and the stain target matters


def test_input_hash_of_a_file_and_of_a_folder(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    (tmp_path / "a.bin").write_bytes(data)
    assert hash_path(tmp_path / "a.bin") == hashlib.sha256(data).hexdigest()
    before = hash_path(tmp_path)
    (tmp_path / "b.bin").write_bytes(b"x")
    assert hash_path(tmp_path) != before


def test_models_that_are_not_rgb_patch_classifiers_are_refused(tmp_path: Path) -> None:
    spec = patch_spec(tmp_path, size=SIZE)
    grey = spec.model_copy(update={"inputs": (spec.inputs[0].model_copy(update={"shape": (-1, 1, SIZE, SIZE)}),)})
    with pytest.raises(InvalidInputError) as caught:
        SlidePipeline(DarknessBackend(grey))
    assert caught.value.code == "wrong_task"
    with pytest.raises(InvalidInputError) as caught:
        SlidePipeline(DarknessBackend(spec), options=SlideOptions(label="mitosis"))
    assert caught.value.code == "unknown_label"


def test_a_model_without_shipped_preprocessing_runs_with_a_warning(tmp_path: Path) -> None:
    pipeline = SlidePipeline(DarknessBackend(patch_spec(tmp_path, size=SIZE)))
    assert pipeline.preprocessing.stain.method == "none" and pipeline.preprocessing.size == SIZE
    Image.fromarray(he_tile(0, seed=3, size=SIZE, mpp=MPP)).save(tmp_path / "tile.png")
    result = pipeline(tmp_path / "tile.png").result
    assert any("ships no preprocessing.json" in w for w in result.warnings)


def test_tissue_too_small_for_any_patch_is_no_tissue_too(backend: DarknessBackend, tmp_path: Path) -> None:
    tissue = np.zeros((24, 32), np.float32)
    tissue[10:12, 14:16] = 1.0  # a 128-pixel speck: under half of any 224-pixel patch
    layout = Layout(tissue, np.zeros_like(tissue), 64.0)
    slide = write_slide(tmp_path / "speck.tif", 2048, 1536, seed=3, mpp=0.5, tile=256, factor=2, layout=layout)
    result = SlidePipeline(backend)(slide.path).result
    assert result.status is SlideStatus.NO_TISSUE and "no patch is at least 50% tissue" in result.reason
    assert result.source.tissue_fraction > 0 and result.tiles is not None and result.tiles.scored == 0


def test_given_preprocessing_must_fit_the_model(tmp_path: Path) -> None:
    backend = DarknessBackend(patch_spec(tmp_path, size=SIZE))
    with pytest.raises(InvalidInputError) as caught:
        SlidePipeline(backend, preprocessing=macenko_preprocessing(SIZE * 2, MPP))
    assert caught.value.code == "preprocessing_mismatch"
    given = macenko_preprocessing(SIZE, MPP)
    pipeline = SlidePipeline(backend, preprocessing=given)
    Image.fromarray(he_tile(1, seed=5, size=SIZE, mpp=MPP)).save(tmp_path / "tile.png")
    result = pipeline(tmp_path / "tile.png").result
    assert result.preprocessing == given and not any("ships no" in w for w in result.warnings)
