"""OpenSlideSlide on generated generic tiled TIFFs, checked against TiffSlide (skipped without OpenSlide)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from cds.pipelines.pathology import SlideReader, open_slide
from cds.pipelines.pathology.tiff_slide import TiffSlide
from tests.pipelines.pathology.slides import write_pyramid

try:
    import openslide  # noqa: F401
except (ImportError, OSError) as exc:  # the library itself may be missing even when the binding imports
    pytest.skip(f"OpenSlide is not available ({exc})", allow_module_level=True)

from cds.pipelines.pathology.openslide_slide import OpenSlideSlide  # noqa: E402


def test_openslide_reads_what_tifffile_reads(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "pages.tif"
    arrays = write_pyramid(path, noise_image, levels=3, pyramid="pages")  # OpenSlide's generic TIFF: one page a level
    with open_slide(path, reader=SlideReader.OPENSLIDE) as slide, open_slide(path) as reference:
        assert isinstance(slide, OpenSlideSlide) and isinstance(reference, TiffSlide)
        assert slide.levels == reference.levels
        assert slide.mpp == pytest.approx(0.5)
        for level, (x, y, w, h) in [(0, (100, 90, 200, 180)), (1, (120, 60, 100, 150)), (2, (10, 10, 100, 80))]:
            region = slide.read_region(level, x, y, w, h)
            np.testing.assert_array_equal(region, arrays[level][y:y + h, x:x + w])
        outside = slide.read_region(0, 690, 490, 20, 20)  # beyond the image: white, not transparent black
        assert (outside[10:, :] == 255).all() and (outside[:, 10:] == 255).all()


def test_vendor_extension_goes_to_openslide(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "pages.tif"
    write_pyramid(path, noise_image, levels=2, pyramid="pages")
    vendor = tmp_path / "slide.svs"
    shutil.copy(path, vendor)
    with open_slide(vendor) as slide:
        assert isinstance(slide, OpenSlideSlide)
        assert slide.dimensions == (700, 500)


def test_openslide_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "notes.ndpi"
    path.write_text("not a slide")
    from cds.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as caught:
        open_slide(path)
    assert caught.value.code == "not_a_slide"
