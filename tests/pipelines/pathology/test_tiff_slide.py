"""TiffSlide: levels, resolution and regions of pyramidal TIFFs, compared with the arrays that were written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cds.errors import InvalidInputError
from cds.pipelines.pathology import SlideReader, open_slide
from cds.pipelines.pathology.image_tile import ImageTile
from cds.pipelines.pathology.tiff_slide import TiffSlide
from tests.pipelines.pathology.slides import block_mean, write_pyramid
from training.data.he_slide import GeneratedSlide


@pytest.mark.parametrize("pyramid", ["subifds", "pages"])
def test_levels_mpp_and_exact_regions(tmp_path: Path, noise_image: np.ndarray, pyramid: str) -> None:
    path = tmp_path / "pyramid.tif"
    arrays = write_pyramid(path, noise_image, tile=128, levels=3, mpp=0.5, pyramid=pyramid)  # type: ignore[arg-type]
    with open_slide(path) as slide:
        assert isinstance(slide, TiffSlide)
        assert slide.dimensions == (700, 500)
        assert [level.size for level in slide.levels] == [(700, 500), (350, 250), (175, 125)]
        assert [level.downsample for level in slide.levels] == pytest.approx([1.0, 2.0, 4.0])
        assert slide.mpp == pytest.approx(0.5)
        assert slide.level_mpp(2) == pytest.approx(2.0)
        # inside one tile, across four tiles, and the ragged bottom-right edge tile
        for level, (x, y, w, h) in [(0, (3, 5, 40, 30)), (0, (100, 90, 200, 180)), (0, (650, 460, 50, 40)),
                                    (1, (120, 60, 100, 150)), (2, (0, 0, 175, 125))]:
            region = slide.read_region(level, x, y, w, h)
            assert region.dtype == np.uint8 and region.shape == (h, w, 3)
            np.testing.assert_array_equal(region, arrays[level][y:y + h, x:x + w])


def test_region_outside_the_level_is_padded_with_white(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "pyramid.tif"
    arrays = write_pyramid(path, noise_image, levels=1)
    with open_slide(path) as slide:
        region = slide.read_region(0, 680, -10, 40, 30)
    np.testing.assert_array_equal(region[10:, :20], arrays[0][0:20, 680:700])
    assert (region[:10] == 255).all() and (region[:, 20:] == 255).all()


def test_a_region_decodes_only_the_tiles_it_touches(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "pyramid.tif"
    write_pyramid(path, noise_image, tile=128, levels=1)
    with open_slide(path) as slide:
        assert isinstance(slide, TiffSlide)
        slide.read_region(0, 130, 10, 20, 20)  # inside tile (row 0, column 1)
        assert list(slide._cache) == [(0, 1)]
        slide.read_region(0, 120, 120, 16, 16)  # touches four tiles
        assert sorted(slide._cache) == [(0, 0), (0, 1), (0, 6), (0, 7)]


def test_invalid_regions_are_refused(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "pyramid.tif"
    write_pyramid(path, noise_image, levels=2)
    with open_slide(path) as slide:
        for args in [(2, 0, 0, 10, 10), (0, 0, 0, 0, 10), (0, 0, 0, 10, -1), (0, 0, 0, 10**5, 10**5)]:
            with pytest.raises(InvalidInputError) as caught:
                slide.read_region(*args)
            assert caught.value.code == "invalid_region"


def test_thumbnail_is_the_whole_slide_downsampled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "gradient.tif"
    ys, xs = np.mgrid[0:500, 0:700]
    gradient = np.stack([xs * 255 / 699, ys * 255 / 499, (xs + ys) * 255 / 1198], axis=-1).round().astype(np.uint8)
    write_pyramid(path, gradient, levels=3)
    with open_slide(path) as slide:
        thumb = slide.thumbnail(70)
        assert thumb.shape == (50, 70, 3)
        assert np.abs(thumb.astype(float) - block_mean(gradient, 10)).max() <= 3
        monkeypatch.setattr("cds.pipelines.pathology.slide.MAX_REGION_PIXELS", 4 * 700 * 9)  # bands of ~9 rows
        banded = slide.thumbnail(350)  # from level 0 (700 wide) in many bands
        whole = np.asarray(Image.fromarray(gradient).resize((350, 250), Image.Resampling.BILINEAR))
    assert np.abs(banded.astype(int) - whole).max() <= 2  # no seams between bands


def test_generated_slide_levels_are_its_downsampled_level_zero(tissue_slide: GeneratedSlide) -> None:
    with open_slide(tissue_slide.path) as slide:
        assert [level.size for level in slide.levels] == list(tissue_slide.level_sizes)
        assert slide.mpp == pytest.approx(0.25)
        full = slide.read_region(0, 512, 256, 512, 512)
        half = slide.read_region(1, 256, 128, 256, 256)
        quarter = slide.read_region(2, 128, 64, 128, 128)
    assert np.abs(half.astype(float) - block_mean(full, 2)).max() <= 1.0
    assert np.abs(quarter.astype(float) - block_mean(full, 4)).max() <= 1.5
    assert full.std() > 20  # tissue, not glass


def test_jpeg_tiles_read_within_jpeg_tolerance(tmp_path: Path) -> None:
    pytest.importorskip("imagecodecs")
    from training.data.he_slide import write_slide

    lossless = write_slide(tmp_path / "deflate.tif", 512, 512, seed=2, tile=128, factor=2, layout=None)
    lossy = write_slide(tmp_path / "jpeg.tif", 512, 512, seed=2, tile=128, factor=2, compression="jpeg", quality=95)
    with open_slide(lossless.path) as a, open_slide(lossy.path) as b:
        exact, approx = a.read_region(0, 0, 0, 512, 512), b.read_region(0, 0, 0, 512, 512)
    assert np.abs(exact.astype(float) - approx).mean() < 3


def test_png_and_jpeg_tiles_open_as_one_level_slides(tmp_path: Path, noise_image: np.ndarray) -> None:
    Image.fromarray(noise_image).save(tmp_path / "tile.png")
    Image.fromarray(noise_image).save(tmp_path / "tile.jpg", quality=95)
    with open_slide(tmp_path / "tile.png") as png, open_slide(tmp_path / "tile.jpg") as jpeg:
        assert isinstance(png, ImageTile) and isinstance(jpeg, ImageTile)
        assert png.levels == jpeg.levels and png.dimensions == (700, 500)
        assert png.mpp is None
        np.testing.assert_array_equal(png.read_region(0, 10, 20, 30, 40), noise_image[20:60, 10:40])
        assert jpeg.read_region(0, 0, 0, 700, 500).shape == (500, 700, 3)


def test_rgba_png_drops_alpha(tmp_path: Path, noise_image: np.ndarray) -> None:
    rgba = np.dstack([noise_image, np.full(noise_image.shape[:2], 200, np.uint8)])
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "tile.png")
    with open_slide(tmp_path / "tile.png") as tile:
        np.testing.assert_array_equal(tile.read_region(0, 0, 0, 700, 500), noise_image)


def test_forced_reader_overrides_detection(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "tile.png"
    Image.fromarray(noise_image).save(path)
    with pytest.raises(InvalidInputError) as caught:
        open_slide(path, reader=SlideReader.TIFF)
    assert caught.value.code == "corrupt_file"
