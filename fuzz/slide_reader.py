"""Fuzz the slide readers: TIFF pyramids (tifffile), single PNG/JPEG tiles (Pillow) and DICOM whole-slide files.

Each input is written to a file and opened the way the pathology pipeline opens an upload, in this process (the
service reads slides in a decoder process of its own; here the readers' own Python code is what is measured):
levels, resolution, a region across tile edges at every level, and a thumbnail. A finding is any exception other
than an :class:`~cds.errors.InvalidInputError` with one of the readers' reason codes, or a hang. An input still
being read after ``TIME_LIMIT_S`` is stopped as the service's decoder process would be (``decoder_timeout``): a
crafted IFD chain keeps tifffile's page walk going for minutes on a file of 659 bytes (see ``regressions/``).
"""

from __future__ import annotations

import io
import logging
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

INSTRUMENT = ("cds", "tifffile", "PIL", "wsidicom")
REASONS = frozenset({
    "not_found", "empty_file", "not_a_slide", "corrupt_file", "truncated_file", "not_rgb", "slide_too_large",
    "unsupported_layout", "tile_decode_failed", "invalid_region",
})  # fmt: skip
MAX_PIXELS = 1 << 26  # level 0 of a fuzzed slide: 8192 x 8192
MAX_IMAGE_PIXELS = 1 << 22
TIME_LIMIT_S = 3.0
_folder = Path(tempfile.mkdtemp(prefix="cds-fuzz-slide-"))


class _Late(BaseException):  # noqa: N818 - not an error: the time limit; a BaseException, so no handler swallows it
    """The read ran past :data:`TIME_LIMIT_S`."""


def _stop(_signum: int, _frame: object) -> None:
    raise _Late


def prepare() -> None:
    """Import the readers and the libraries they use (instrumented, when atheris calls this).

    tifffile logs every malformed tag; a crafted file has millions, which only cost time here.
    """
    import wsidicom  # noqa: F401

    import cds.pipelines.pathology.dicom_slide
    import cds.pipelines.pathology.image_tile
    import cds.pipelines.pathology.slide
    import cds.pipelines.pathology.tiff_slide  # noqa: F401
    from cds.privacy import quiet_library_warnings

    quiet_library_warnings()
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)


def _suffix(data: bytes) -> str:
    if data[128:132] == b"DICM":
        return ".dcm"
    if data.startswith(b"\x89PNG"):
        return ".png"
    return ".jpg" if data.startswith(b"\xff\xd8") else ".tif"


def one_input(data: bytes) -> None:
    """Open ``data`` as an uploaded slide and read from every level."""
    from cds.errors import InvalidInputError
    from cds.pipelines.pathology.slide import open_slide

    path = _folder / f"input{_suffix(data)}"
    path.write_bytes(data)
    signal.signal(signal.SIGALRM, _stop)
    signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT_S, 0.25)  # and again every 0.25 s, should a handler swallow one
    try:
        with open_slide(path, max_pixels=MAX_PIXELS, max_image_pixels=MAX_IMAGE_PIXELS) as slide:
            _ = slide.mpp, slide.reader, slide.single_image
            for level, info in enumerate(slide.levels):
                slide.read_region(level, info.width // 2 - 40, info.height // 2 - 40, 80, 80)
            slide.thumbnail(64)
    except InvalidInputError as exc:
        if exc.code not in REASONS:
            raise
    except _Late:
        return  # decoder_timeout in the service
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def seeds() -> Iterator[tuple[str, bytes]]:
    """Small slides generated here.

    Tiled pyramids (SubIFDs and pages) in four compressions, a stripped TIFF, a PNG and a JPEG tile.
    """
    import numpy as np
    import tifffile
    from PIL import Image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
    for compression in ("zlib", "jpeg", "lzw", None):
        for pyramid in ("subifds", "pages"):
            buffer = io.BytesIO()
            with tifffile.TiffWriter(buffer) as tif:
                options = {"tile": (32, 32), "photometric": "rgb", "compression": compression}
                tif.write(image, subifds=1 if pyramid == "subifds" else 0, resolution=(40000.0, 40000.0),
                          resolutionunit="CENTIMETER", **options)  # type: ignore[arg-type]
                tif.write(image[::2, ::2].copy(), subfiletype=1, **options)  # type: ignore[arg-type]
            yield f"pyramid-{pyramid}-{compression}.tif", buffer.getvalue()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, image, photometric="rgb", rowsperstrip=16)
    yield "stripped.tif", buffer.getvalue()
    for kind in ("PNG", "JPEG"):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format=kind)
        yield f"tile.{kind.lower()}", buffer.getvalue()


if __name__ == "__main__":
    from fuzz.harness import main

    main("fuzz.slide_reader", INSTRUMENT)
