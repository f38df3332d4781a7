"""The H&E generator the pathology tests rely on: deterministic, seamless, class-dependent, bounded in memory."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from cds.pipelines.pathology import open_slide
from training.data.he_slide import make_layout, write_slide
from training.data.he_tiles import HE_STAINS, Layout, compose, concentrations, he_tile, he_tiles, tile_concentrations


def test_tiles_are_deterministic_and_distinct() -> None:
    images, labels = he_tiles(6, seed=4, size=96)
    again, same_labels = he_tiles(6, seed=4, size=96)
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(labels, same_labels)
    assert images.shape == (6, 96, 96, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert set(labels.tolist()) <= {0, 1}
    assert not np.array_equal(he_tile(0, seed=4, index=0), he_tile(0, seed=4, index=1))
    np.testing.assert_array_equal(he_tiles(2, seed=4, size=96, start=4)[0], images[4:])


def test_tumour_nuclei_are_larger_denser_and_darker() -> None:
    def nuclear_stats(label: int) -> tuple[float, float]:
        stains = [tile_concentrations(label, seed=8, index=i)[..., 0] for i in range(6)]
        nuclear = [h > 0.4 for h in stains]
        return float(np.mean([n.mean() for n in nuclear])), float(np.mean([h[n].mean() for h, n in
                                                                          zip(stains, nuclear, strict=True)]))

    normal_area, normal_darkness = nuclear_stats(0)
    tumour_area, tumour_darkness = nuclear_stats(1)
    assert tumour_area > 3 * normal_area
    assert tumour_darkness > 1.3 * normal_darkness


def test_a_region_renders_the_same_however_it_is_cut() -> None:
    layout = make_layout(600, 400, seed=2, max_side=64)
    whole = concentrations(100, 50, 300, 200, layout=layout, mpp=0.5, key=(2,))
    parts = [[concentrations(x, y, 150, 100, layout=layout, mpp=0.5, key=(2,)) for x in (100, 250)]
             for y in (50, 150)]
    stitched = np.concatenate([np.concatenate(row, axis=1) for row in parts], axis=0)
    np.testing.assert_allclose(stitched, whole, atol=1e-5)
    assert whole[..., 0].max() > 0.5  # nuclei were drawn


def test_compose_follows_beer_lambert() -> None:
    concentrations_ = np.zeros((2, 2, 2), np.float32)
    concentrations_[0, 0] = (1.0, 0.0)
    rgb = compose(concentrations_, HE_STAINS)
    expected = 255 * np.exp(-(HE_STAINS[0] + 0.03))
    np.testing.assert_allclose(rgb[0, 0], expected, atol=0.6)
    assert (rgb[1, 1] > 240).all()  # glass


def test_slide_ground_truth_and_tile_content(tmp_path: Path) -> None:
    slide = write_slide(tmp_path / "slide.tif", 768, 512, seed=3, tile=128, factor=2, mpp=0.5)
    assert slide.tissue_mask.any() and slide.tumour_mask.any()
    assert not (slide.tumour_mask & ~slide.tissue_mask).any()
    assert slide.level_sizes == ((768, 512), (384, 256), (192, 128))
    layout = make_layout(768, 512, seed=3)
    expected = compose(concentrations(256, 128, 128, 128, layout=layout, mpp=0.5, key=(3,)), HE_STAINS)
    with open_slide(slide.path) as opened:
        tile = opened.read_region(0, 256, 128, 128, 128)
    assert np.abs(tile.astype(int) - expected).mean() < 2.5  # the same tile, up to sensor noise
    blank = write_slide(tmp_path / "blank.tif", 256, 256, seed=3, tile=128, factor=2, blank=True)
    assert not blank.tissue_mask.any()
    with open_slide(blank.path) as opened:
        assert opened.read_region(0, 0, 0, 256, 256).min() > 230


def test_writing_never_holds_level_zero(tmp_path: Path) -> None:
    """Peak traced memory grows with the slide's width (one row of tiles), not with its area."""
    write_slide(tmp_path / "warm.tif", 256, 256, seed=1, tile=256, layout=Layout.uniform(0))  # imports, caches
    peaks = {}
    for side in (1024, 2048):
        layout = make_layout(side, side, seed=1, max_side=128)
        tracemalloc.start()
        try:
            slide = write_slide(tmp_path / f"{side}.tif", side, side, seed=1, tile=256, factor=4, layout=layout,
                                buffer_bytes=2 * 2**20)
            peaks[side] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert slide.level_sizes[0] == (side, side)
    level_zero_growth = (2048**2 - 1024**2) * 3  # 9 MiB more pixels
    assert peaks[2048] - peaks[1024] < level_zero_growth / 2, peaks
