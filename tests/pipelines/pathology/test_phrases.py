"""A slide read's warnings and its reason for no score as phrases (``cds.results.phrase``), one per English
warning in the same order, carrying the numbers the English states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cds.pipelines.pathology.pipeline import SlidePipeline
from cds.results.phrase import phrase
from cds.results.slide import SlideStatus
from tests.pipelines.pathology.fakes import DarknessBackend, macenko_preprocessing, patch_spec
from training.data.he_slide import GeneratedSlide, write_slide
from training.data.he_tiles import Layout, he_tile

SIZE, MPP = 112, 1.0


def test_a_tiles_warnings_are_phrased_one_for_one(tmp_path: Path) -> None:
    backend = DarknessBackend(patch_spec(tmp_path, size=SIZE))  # ships no preprocessing.json
    tile = he_tile(1, seed=5, size=SIZE, mpp=MPP)[:, : SIZE - 12]  # not square
    Image.fromarray(tile).save(tmp_path / "tile.png")
    result = SlidePipeline(backend)(tmp_path / "tile.png").result
    assert len(result.warning_phrases) == len(result.warnings)
    codes = [p.code for p in result.warning_phrases]
    assert codes[0] == "slide.not_for_diagnostic_use" and result.warnings[0] == "not for diagnostic use"
    assert {"slide.no_preprocessing_file", "slide.tile_resolution_assumed", "slide.tile_resized"} <= set(codes)
    for text, said in zip(result.warnings, result.warning_phrases, strict=True):
        if said.code == "slide.tile_resized":
            assert said.values == {"width": SIZE - 12, "height": SIZE, "size": SIZE}
            assert f"{SIZE - 12} × {SIZE} tile" in text
        if said.code == "slide.no_preprocessing_file":
            assert said.values["model"] in text
    assert result.reason == "" and result.reason_phrase is None  # scored: no reason


def test_no_tissue_says_why_as_a_phrase(blank_slide: GeneratedSlide, tmp_path: Path) -> None:
    backend = DarknessBackend(patch_spec(tmp_path, size=SIZE, preprocessing=macenko_preprocessing(SIZE, MPP)))
    glass = SlidePipeline(backend)(blank_slide.path).result
    assert glass.status is SlideStatus.NO_TISSUE and glass.reason_phrase == phrase("slide.no_tissue_glass")
    tissue = np.zeros((24, 32), np.float32)
    tissue[10:12, 14:16] = 1.0  # a speck under half of any patch
    speck = write_slide(tmp_path / "speck.tif", 2048, 1536, seed=3, mpp=0.5, tile=256, factor=2,
                        layout=Layout(tissue, np.zeros_like(tissue), 64.0))  # fmt: skip
    result = SlidePipeline(backend)(speck.path).result
    assert result.reason_phrase == phrase("slide.no_tissue_patch", percent=50) and "50% tissue" in result.reason
