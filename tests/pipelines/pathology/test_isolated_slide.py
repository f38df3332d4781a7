"""Slides are read in a decoder process of their own: the same pixels as in-process, and a slide whose one tile
inflates beyond the decoder's memory budget is refused for it while the next slide reads as usual."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.pipelines import isolation
from cds.pipelines.pathology.isolated_slide import IsolatedSlide, open_isolated_slide
from cds.pipelines.pathology.slide import open_slide
from tests.pipelines.pathology.slides import write_pyramid
from tests.support.isolation import isolation_limits
from tests.support.poison import tiff_tile_bomb


@pytest.fixture
def limits() -> Iterator[isolation.IsolationLimits]:
    with isolation_limits(timeout_s=20.0, memory_bytes=320 << 20, workers=1) as chosen:
        yield chosen


def test_an_isolated_slide_reads_what_the_reader_reads(tmp_path: Path, limits: isolation.IsolationLimits) -> None:
    image = np.random.default_rng(4).integers(0, 256, (600, 900, 3), dtype=np.uint8)
    path = tmp_path / "slide.tif"
    write_pyramid(path, image, tile=128, levels=3, mpp=0.25)
    with open_isolated_slide(path) as isolated, open_slide(path) as local:
        assert isinstance(isolated, IsolatedSlide) and isolated.reader == "TiffSlide" and not isolated.single_image
        assert isolated.levels == local.levels and isolated.mpp == local.mpp == 0.25
        np.testing.assert_array_equal(isolated.read_region(1, -20, 100, 300, 200), local.read_region(1, -20, 100, 300,
                                                                                                      200))
        np.testing.assert_array_equal(isolated.thumbnail(200), local.thumbnail(200))
    with pytest.raises(InvalidInputError) as err:
        isolated.read_region(0, 0, 0, 10, 10)  # closed: its process is gone
    assert err.value.code == "decoder_crashed"
    with pytest.raises(InvalidInputError) as err:
        open_isolated_slide(tmp_path / "absent.tif")
    assert err.value.code == "not_found"


def test_a_tile_bomb_costs_its_own_process_only(tmp_path: Path, limits: isolation.IsolationLimits) -> None:
    bomb = tiff_tile_bomb(tmp_path / "bomb.tif")
    assert bomb.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with open_isolated_slide(bomb) as slide, pytest.raises(InvalidInputError) as err:
            slide.read_region(0, 0, 0, 256, 256)  # decodes the whole 243 MiB tile, in a 512 MiB process
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.code == "decoder_memory" and "bomb.tif" in err.value.message
    assert peak < 32 << 20
    path = tmp_path / "next.tif"
    write_pyramid(path, np.full((256, 256, 3), 200, dtype=np.uint8), levels=1)
    with open_isolated_slide(path) as slide:
        assert int(slide.read_region(0, 0, 0, 256, 256).min()) == 200
