"""The shipped ``pathology-demo`` model on generated slides, and the same weights brought in by ``cds models import``."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cds.models.importer import ImportOptions, import_model
from cds.models.registry import ModelRegistry
from cds.models.spec import Modality, ModelSpec
from cds.models.tile_preprocessing import PREPROCESSING_FILE, StainMethod, TilePreprocessing
from cds.pipelines.pathology.pipeline import SlidePipeline
from cds.results.slide import SlideAnalysis, SlideStatus
from cds.serving.backends import create_backend
from cds.settings import REPO_ROOT
from tests.pipelines.pathology.slides import patch_truth
from training.data.he_slide import GeneratedSlide, write_slide
from training.data.he_tiles import Layout


@pytest.fixture(scope="module")
def spec() -> ModelSpec:
    return ModelRegistry.from_directory(REPO_ROOT / "registry").get("pathology-demo", "1.0.0")


@pytest.fixture(scope="module")
def analysis(spec: ModelSpec, tumour_slide: GeneratedSlide) -> SlideAnalysis:
    with create_backend("onnxruntime", spec) as backend:
        return SlidePipeline(backend)(tumour_slide.path)


def test_shipped_preprocessing_fits_the_model(spec: ModelSpec) -> None:
    preprocessing = TilePreprocessing.read(spec.artifacts.onnx.path.parent / PREPROCESSING_FILE)
    assert preprocessing.mpp == 0.5 and preprocessing.size == spec.inputs[0].shape[-1] == 224
    assert preprocessing.stain.method is StainMethod.MACENKO and spec.modality is Modality.SM
    assert spec.artifacts.onnx.path.stat().st_size < 3_000_000
    card = spec.model_card.read_text()
    assert "demonstration model trained on generated tiles" in card and preprocessing.sha256 in card


def test_shipped_model_finds_the_generated_tumour(analysis: SlideAnalysis, tumour_slide: GeneratedSlide) -> None:
    grid = analysis.grid
    assert grid is not None and analysis.result.score is not None
    rows, columns = np.nonzero(~np.isnan(grid.values))
    truth = np.array([patch_truth(tumour_slide, c * grid.extent0, r * grid.extent0, grid.extent0)
                      for r, c in zip(rows, columns, strict=True)])
    clear = (truth >= 0.9) | (truth <= 0.1)
    assert roc_auc_score(truth[clear] >= 0.9, grid.values[rows, columns][clear]) > 0.9
    assert analysis.result.score.positive
    assert abs(analysis.result.score.tumour_area_fraction - float((truth >= 0.5).mean())) < 0.15


def test_shipped_model_calls_tumour_free_tissue_negative(spec: ModelSpec, tmp_path: Path) -> None:
    tissue = np.zeros((32, 48), np.float32)
    tissue[5:27, 4:44] = 1.0
    layout = Layout(tissue, np.zeros_like(tissue), 64.0)
    slide = write_slide(tmp_path / "normal.tif", 3072, 2048, seed=12, mpp=0.5, tile=256, factor=2, layout=layout)
    with create_backend("onnxruntime", spec) as backend:
        result = SlidePipeline(backend)(slide.path).result
    assert result.status is SlideStatus.SCORED and result.score is not None
    assert not result.score.positive and result.score.tumour_area_fraction < 0.1


def test_the_same_weights_imported_as_onnx_give_the_same_scores(spec: ModelSpec, tmp_path: Path,
                                                               tumour_slide: GeneratedSlide,
                                                               analysis: SlideAnalysis) -> None:
    options = ImportOptions(name="imported-pathology", version="1.0.0", modality=Modality.SM, labels=("tumour",),
                            thresholds=dict(spec.thresholds))
    imported = import_model(spec.artifacts.onnx.path, options, registry_root=tmp_path / "registry",
                            cards_root=tmp_path / "cards")
    assert imported.spec.inputs[0].shape == (-1, 3, 224, 224) and imported.spec.labels == ("tumour",)
    with create_backend("onnxruntime", imported.spec) as backend:
        bare = SlidePipeline(backend)
        assert bare.preprocessing.stain.method is StainMethod.NONE  # nothing shipped beside it: the defaults
        shutil.copyfile(spec.artifacts.onnx.path.parent / PREPROCESSING_FILE, imported.folder / PREPROCESSING_FILE)
        grid = SlidePipeline(backend)(tumour_slide.path).grid
    assert grid is not None and analysis.grid is not None
    np.testing.assert_allclose(grid.values, analysis.grid.values, atol=1e-5, equal_nan=True)
