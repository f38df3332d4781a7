"""Tissue detection against the generator's ground truth, and the patch grid at a target resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cds.errors import InvalidInputError
from cds.pipelines.pathology import (
    TileSpec,
    TissueMask,
    TissueOptions,
    detect_tissue,
    iter_tiles,
    open_slide,
    plan_grid,
    read_tiles,
    tissue_mask,
)
from cds.pipelines.pathology.slide import resize_rgb
from cds.pipelines.pathology.tissue import otsu_threshold
from training.data.he_slide import GeneratedSlide


def on_truth_grid(tissue: TissueMask, truth: GeneratedSlide) -> np.ndarray:
    """The detected mask looked up at the centres of the ground-truth mask's cells."""
    rows, columns = truth.tissue_mask.shape
    ys = ((np.arange(rows) + 0.5) * truth.mask_scale / tissue.scale[1]).astype(int)
    xs = ((np.arange(columns) + 0.5) * truth.mask_scale / tissue.scale[0]).astype(int)
    ys, xs = np.clip(ys, 0, tissue.mask.shape[0] - 1), np.clip(xs, 0, tissue.mask.shape[1] - 1)
    return tissue.mask[np.ix_(ys, xs)]


def test_tissue_detection_recall_and_precision(tissue_slide: GeneratedSlide) -> None:
    with open_slide(tissue_slide.path) as slide:
        tissue = detect_tissue(slide, TissueOptions(thumbnail_side=512))
    assert tissue.mask.shape == (341, 512)
    assert tissue.scale == pytest.approx((3.0, 1024 / 341))
    found, truth = on_truth_grid(tissue, tissue_slide), tissue_slide.tissue_mask
    assert 0.05 < truth.mean() < 0.6
    recall = (found & truth).sum() / truth.sum()
    precision = (found & truth).sum() / found.sum()
    assert recall > 0.95 and precision > 0.95, (recall, precision)


def test_otsu_splits_two_populations() -> None:
    rng = np.random.default_rng(0)
    low, high = rng.normal(0.1, 0.02, 5000).clip(0, 1), rng.normal(0.6, 0.05, 3000).clip(0, 1)
    threshold = otsu_threshold(np.concatenate([low, high]))
    assert (low < threshold).mean() > 0.995 and (high > threshold).mean() > 0.995
    overlapping = np.concatenate([rng.normal(0.3, 0.1, 5000), rng.normal(0.7, 0.1, 5000)]).clip(0, 1)
    assert otsu_threshold(overlapping) == pytest.approx(0.5, abs=0.03)  # equal classes: the midpoint


def test_white_glass_is_never_tissue_and_small_specks_are_dropped() -> None:
    image = np.full((100, 100, 3), 245, np.uint8)
    image[:, :50] = (250, 236, 250)  # bright and faintly pink: glass by the brightness cut
    image[60:63, 70:73] = (120, 40, 140)  # a 9-pixel speck
    image[10:40, 60:95] = (200, 120, 190)  # a real piece
    mask, _ = tissue_mask(image, TissueOptions(min_object_pixels=16))
    assert mask[10:40, 60:95].all()
    assert not mask[:, :50].any() and not mask[60:63, 70:73].any()
    with pytest.raises(InvalidInputError) as caught:
        tissue_mask(image[..., 0])
    assert caught.value.code == "not_rgb"


@pytest.mark.parametrize(("target", "level", "read_size"), [
    (0.25, 0, 64),  # level 0 is the target
    (0.5, 1, 64),
    (1.0, 2, 64),
    (0.7, 1, 90),  # the closest finer level (0.5) read larger and resized: 64 × 0.7 / 0.5
    (0.52, 1, 64),  # within the 10 % tolerance: read as is
    (4.0, 3, 128),  # coarser than every level: the coarsest (2.0) read at twice the size
])
def test_grid_picks_the_closest_level_at_or_below_the_target(tissue_slide: GeneratedSlide, target: float,
                                                            level: int, read_size: int) -> None:
    with open_slide(tissue_slide.path) as slide:
        grid = plan_grid(slide, TileSpec(mpp=target, size=64))
        assert (grid.level, grid.read_size) == (level, read_size)
        width, height = slide.levels[level].size
        assert (grid.columns, grid.rows) == (width // read_size, height // read_size)
        assert len(list(iter_tiles(grid, None))) == grid.columns * grid.rows
        assert grid.extent0 == pytest.approx(read_size * 2**level)


def test_grid_refusals(tissue_slide: GeneratedSlide, tmp_path: Path) -> None:
    with open_slide(tissue_slide.path) as slide:
        with pytest.raises(InvalidInputError) as caught:
            plan_grid(slide, TileSpec(mpp=0.2))
        assert caught.value.code == "resolution_too_low"
        with pytest.raises(InvalidInputError) as caught:
            plan_grid(slide, TileSpec(mpp=2.0, size=600))
        assert caught.value.code == "slide_too_small"
    Image.fromarray(np.full((300, 300, 3), 200, np.uint8)).save(tmp_path / "tile.png")
    with open_slide(tmp_path / "tile.png") as tile:
        with pytest.raises(InvalidInputError) as caught:
            plan_grid(tile, TileSpec(mpp=0.5))
        assert caught.value.code == "unknown_resolution"
        assert plan_grid(tile, TileSpec(mpp=0.5), slide_mpp=0.5).columns == 1
    with pytest.raises(InvalidInputError):
        TileSpec(mpp=-1)


def test_tiles_are_kept_by_tissue_fraction_and_read_in_batches(tissue_slide: GeneratedSlide) -> None:
    spec = TileSpec(mpp=0.5, size=64, tissue_threshold=0.5)
    with open_slide(tissue_slide.path) as slide:
        tissue = detect_tissue(slide, TissueOptions(thumbnail_side=512))
        grid = plan_grid(slide, spec)
        everything = list(iter_tiles(grid, tissue, tissue_threshold=0.0))
        kept = list(iter_tiles(grid, tissue, tissue_threshold=spec.tissue_threshold))
        assert len(everything) == grid.columns * grid.rows == 12 * 8
        assert 0 < len(kept) < len(everything)
        assert all(coord.tissue_fraction >= 0.5 for coord in kept)
        dropped = {(c.column, c.row) for c in everything} - {(c.column, c.row) for c in kept}
        assert all(c.tissue_fraction < 0.5 for c in everything if (c.column, c.row) in dropped)
        batches = list(read_tiles(slide, iter(kept), size=spec.size, batch_size=8))
        assert [len(coords) for coords, _ in batches[:-1]] == [8] * (len(batches) - 1)
        assert sum(len(coords) for coords, _ in batches) == len(kept)
        coords, pixels = batches[0]
        assert pixels.shape == (len(coords), 64, 64, 3) and pixels.dtype == np.uint8
        first = coords[0]
        region = slide.read_region(first.level, first.x, first.y, first.read_size, first.read_size)
        np.testing.assert_array_equal(pixels[0], resize_rgb(region, 64, 64))
        assert pixels.reshape(len(coords), -1, 3).std(axis=1).mean() > 15  # tissue, not glass
    truth = tissue_slide.tissue_mask
    for coord in kept:  # each kept patch lies mostly on generated tissue
        cells = truth[int(coord.y0 / tissue_slide.mask_scale):int((coord.y0 + grid.extent0) / tissue_slide.mask_scale),
                      int(coord.x0 / tissue_slide.mask_scale):int((coord.x0 + grid.extent0) / tissue_slide.mask_scale)]
        assert cells.mean() > 0.3
