"""Bad input through the whole slide pipeline: refused with a reason code, the model never asked, nothing left
running."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from cds.errors import InvalidInputError
from cds.pipelines.pathology import pipeline as pipeline_module
from cds.pipelines.pathology.pipeline import SlideOptions, SlidePipeline
from cds.pipelines.pathology.stream import BoundedPrefetch
from tests.pipelines.pathology.fakes import DarknessBackend, macenko_preprocessing, patch_spec
from tests.pipelines.pathology.slides import write_pyramid
from training.data.he_slide import GeneratedSlide


@pytest.fixture()
def backend(tmp_path: Path) -> DarknessBackend:
    return DarknessBackend(patch_spec(tmp_path / "model", size=112, preprocessing=macenko_preprocessing(112, 0.5)))


def refused(backend: DarknessBackend, path: Path, **options: object) -> str:
    with pytest.raises(InvalidInputError) as caught:
        SlidePipeline(backend, options=SlideOptions(**options))(path)  # type: ignore[arg-type]
    assert backend.batches == []  # refused before the model was asked anything
    return caught.value.code


def test_truncated_and_corrupt_tiffs(backend: DarknessBackend, tumour_slide: GeneratedSlide, tmp_path: Path) -> None:
    data = tumour_slide.path.read_bytes()
    (tmp_path / "truncated.tif").write_bytes(data[: len(data) // 3])
    assert refused(backend, tmp_path / "truncated.tif") == "truncated_file"
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00" + bytes(np.random.default_rng(2).integers(0, 256, 5000,
                                                                                                dtype=np.uint8)))
    assert refused(backend, tmp_path / "corrupt.tif") in {"corrupt_file", "truncated_file"}
    (tmp_path / "notes.tif").write_text("not a slide at all")
    assert refused(backend, tmp_path / "notes.tif") == "not_a_slide"


def test_a_tile_that_does_not_decode_fails_the_slide_from_the_reader_thread(
        backend: DarknessBackend, tumour_slide: GeneratedSlide, tmp_path: Path) -> None:
    path = tmp_path / "damaged.tif"
    shutil.copyfile(tumour_slide.path, path)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]  # level 0, where 0.5 µm/px patches are read; the thumbnail comes from a smaller level
        columns = -(-int(page.imagewidth) // int(page.tilewidth))
        index = 4 * columns + 4  # inside the tissue
        offset, count = int(page.dataoffsets[index]), int(page.databytecounts[index])
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(bytes(np.random.default_rng(5).integers(0, 256, count, dtype=np.uint8)))
    before = threading.active_count()
    with pytest.raises(InvalidInputError) as caught:
        SlidePipeline(backend, options=SlideOptions(batch_size=4))(path)
    assert caught.value.code == "tile_decode_failed"
    assert threading.active_count() == before  # the reader thread was joined


@pytest.mark.parametrize("kind", ["grey_png", "grey_tiff", "rgb16_tiff"])
def test_non_rgb_images_are_refused(backend: DarknessBackend, tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(4)
    if kind == "grey_png":
        path = tmp_path / "grey.png"
        Image.fromarray(rng.integers(0, 256, (224, 224), dtype=np.uint8)).save(path)
    elif kind == "grey_tiff":
        path = tmp_path / "grey.tif"
        tifffile.imwrite(path, rng.integers(0, 256, (512, 512), dtype=np.uint8), tile=(128, 128))
    else:
        path = tmp_path / "rgb16.tif"
        tifffile.imwrite(path, rng.integers(0, 65535, (512, 512, 3), dtype=np.uint16), tile=(128, 128),
                         photometric="rgb")
    assert refused(backend, path) == "not_rgb"


def test_slides_over_the_cap_are_refused(backend: DarknessBackend, tumour_slide: GeneratedSlide,
                                         tmp_path: Path) -> None:
    assert refused(backend, tumour_slide.path, max_pixels=3072 * 2048 - 1) == "slide_too_large"
    Image.new("RGB", (2000, 1500), (200, 120, 180)).save(tmp_path / "big.png")
    assert refused(backend, tmp_path / "big.png", max_image_pixels=1_000_000) == "slide_too_large"


def test_a_slide_of_unknown_resolution_needs_one_given(backend: DarknessBackend, tmp_path: Path) -> None:
    from training.data.he_tiles import he_tile

    image = np.full((1100, 1400, 3), 246, np.uint8)  # glass around a block of tissue
    image[200:872, 250:1146] = np.concatenate([np.concatenate([he_tile(1, seed=9, index=4 * r + c)
                                                               for c in range(4)], axis=1) for r in range(3)])
    write_pyramid(tmp_path / "nompp.tif", image, levels=2, mpp=None)
    assert refused(backend, tmp_path / "nompp.tif") == "unknown_resolution"
    result = SlidePipeline(backend, options=SlideOptions(slide_mpp=0.5))(tmp_path / "nompp.tif").result
    assert result.tiles is not None and result.tiles.scored > 0 and result.source.mpp == 0.5
    assert any("0.5 µm/px was assumed" in w for w in result.warnings)


def test_the_pipeline_reads_through_its_bounded_prefetch(backend: DarknessBackend, tumour_slide: GeneratedSlide,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[BoundedPrefetch[object]] = []

    class Recording(BoundedPrefetch[object]):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    monkeypatch.setattr(pipeline_module, "BoundedPrefetch", Recording)
    result = SlidePipeline(backend, options=SlideOptions(batch_size=4, prefetch=3))(tumour_slide.path).result
    assert result.tiles is not None
    (prefetch,) = made
    assert prefetch.depth == 3 and 1 <= prefetch.peak <= 3
    assert prefetch.produced == -(-result.tiles.scored // 4) == len(backend.batches)
