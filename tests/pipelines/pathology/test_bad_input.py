"""Bad input is refused at open with a reason, before anything is decoded: never a crash, never a score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from cds.errors import InvalidInputError, MissingDependencyError
from cds.pipelines.pathology import TissueOptions, detect_tissue, open_slide
from cds.pipelines.pathology.tiff_slide import TiffSlide
from cds.pipelines.pathology.tiling import TileSpec, iter_tiles, plan_grid
from tests.pipelines.pathology.slides import write_pyramid
from training.data.he_slide import GeneratedSlide


def refusal(path: Path, **kwargs: object) -> str:
    with pytest.raises(InvalidInputError) as caught:
        open_slide(path, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_truncated_tiff_is_refused(tmp_path: Path, noise_image: np.ndarray) -> None:
    source = tmp_path / "whole.tif"
    write_pyramid(source, noise_image, levels=3)
    data = source.read_bytes()
    half = tmp_path / "half.tif"
    half.write_bytes(data[: len(data) // 2])  # level-0 tiles run past the end
    assert refusal(half) == "truncated_file"
    tail = tmp_path / "tail.tif"
    tail.write_bytes(data[:-200])  # the last level's data cut
    assert refusal(tail) == "truncated_file"
    header = tmp_path / "header.tif"
    header.write_bytes(data[:100])  # cut inside the first directory
    assert refusal(header) in {"truncated_file", "corrupt_file"}


def test_random_bytes_are_not_a_slide(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    for name in ("noise.tif", "noise.bin", "noise.png"):
        path = tmp_path / name
        path.write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
        assert refusal(path) == "not_a_slide"
    tiff_header = tmp_path / "garbage.tif"
    tiff_header.write_bytes(b"II*\x00" + rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    assert refusal(tiff_header) in {"corrupt_file", "truncated_file"}


def test_empty_file_missing_file_and_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty.tif").write_bytes(b"")
    assert refusal(tmp_path / "empty.tif") == "empty_file"
    assert refusal(tmp_path / "absent.svs") == "not_found"
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "notes.txt").write_text("not DICOM")
    try:
        code = refusal(tmp_path / "folder")
    except MissingDependencyError:
        pytest.skip("wsidicom is not installed")
    assert code == "not_a_slide"


@pytest.mark.parametrize("kind", ["gray_tiff", "rgb16_tiff", "gray_png", "palette_png"])
def test_non_rgb_images_are_refused(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (256, 256), dtype=np.uint8)
    if kind == "gray_tiff":
        path = tmp_path / "gray.tif"
        tifffile.imwrite(path, gray, tile=(128, 128))
    elif kind == "rgb16_tiff":
        path = tmp_path / "rgb16.tif"
        tifffile.imwrite(path, rng.integers(0, 65535, (256, 256, 3), dtype=np.uint16), tile=(128, 128),
                         photometric="rgb")
    elif kind == "gray_png":
        path = tmp_path / "gray.png"
        Image.fromarray(gray).save(path)
    else:
        path = tmp_path / "palette.png"
        Image.fromarray(gray).convert("P").save(path)
    assert refusal(path) == "not_rgb"


def test_slide_over_the_cap_is_refused_from_its_header(tmp_path: Path, noise_image: np.ndarray,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "huge.tif"
    write_pyramid(path, noise_image, levels=1)
    with tifffile.TiffFile(path, mode="r+b") as tif:  # declare 200,000 × 200,000 pixels; the data stay tiny
        tif.pages[0].tags["ImageWidth"].overwrite(200_000)
        tif.pages[0].tags["ImageLength"].overwrite(200_000)

    def no_decoding(*args: object) -> None:
        raise AssertionError("a tile was decoded")

    monkeypatch.setattr(TiffSlide, "_segment", no_decoding)
    assert refusal(path) == "slide_too_large"
    small = tmp_path / "small.tif"
    write_pyramid(small, noise_image, levels=2)
    assert refusal(small, max_pixels=100_000) == "slide_too_large"  # 700 × 500 = 350,000 pixels


def test_image_over_the_cap_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (3000, 2000), (200, 100, 150)).save(path)
    assert refusal(path, max_image_pixels=1_000_000) == "slide_too_large"


def test_truncated_png_is_refused(tmp_path: Path, noise_image: np.ndarray) -> None:
    path = tmp_path / "tile.png"
    Image.fromarray(noise_image).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert refusal(path) == "truncated_file"


def test_openslide_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def without_openslide(name: str, *args: object, **kwargs: object) -> object:
        if name == "openslide" or name.startswith("openslide."):
            raise ImportError("No module named 'openslide'")
        return real_import(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "__import__", without_openslide)
    path = tmp_path / "slide.mrxs"
    path.write_text("[GENERAL]\n")
    with pytest.raises(MissingDependencyError) as caught:
        open_slide(path)
    assert "openslide" in str(caught.value)


def test_blank_slide_gives_an_empty_tissue_mask_and_no_tiles(blank_slide: GeneratedSlide) -> None:
    with open_slide(blank_slide.path) as slide:
        tissue = detect_tissue(slide, TissueOptions(thumbnail_side=512))
        grid = plan_grid(slide, TileSpec(mpp=0.5, size=128))
        assert tissue.empty and tissue.fraction == 0.0
        assert list(iter_tiles(grid, tissue, tissue_threshold=0.5)) == []
