"""A slide read in a decoder process of its own, so that a crafted slide costs only its own job.

Slide readers parse vendor containers and decode JPEG, JPEG 2000, LZW and deflate tiles in native code (tifffile's
codecs, OpenSlide, wsidicom's decoders) fed by whoever uploaded the file. :func:`open_isolated_slide` opens the
slide in a :class:`~cds.pipelines.isolation.DedicatedChild` (address-space and time limits of the decoding pool)
and answers a :class:`Slide` whose regions are read there: a reader that panics, loops or asks for gigabytes is
refused as ``decoder_crashed``, ``decoder_timeout`` or ``decoder_memory`` and the worker goes on. The first bytes of
the file are looked at in this process (nothing native parses them), and a missing reader package is reported as
:class:`~cds.errors.MissingDependencyError` as it is in-process. Where isolation is off (``workers=0``, or a
daemonic process) the slide is opened in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cds.pipelines.isolation import DedicatedChild, isolation
from cds.pipelines.pathology.slide import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_PIXELS,
    Slide,
    SlideLevel,
    SlideReader,
    open_slide,
    slide_kind,
)

_OPEN: list[Slide] = []  # in the child: the slide it serves (one per dedicated child)


@dataclass(frozen=True)
class _Opened:
    """What the parent keeps of a slide opened in the child."""

    source: str
    levels: tuple[SlideLevel, ...]
    mpp: float | None
    reader: str
    single_image: bool


def _open(path: str, max_pixels: int, max_image_pixels: int, reader: str) -> _Opened:
    """Open the slide in the child (runs there) and describe it."""
    while _OPEN:
        _OPEN.pop().close()
    slide = open_slide(path, max_pixels=max_pixels, max_image_pixels=max_image_pixels, reader=reader)
    _OPEN.append(slide)
    return _Opened(slide.source, slide.levels, slide.mpp, slide.reader, slide.single_image)


def _read(level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
    """A region of the child's slide (runs there)."""
    return _OPEN[0].read_region(level, x, y, width, height)


class IsolatedSlide(Slide):
    """A :class:`Slide` whose pixels are read by its own decoder process (see the module docstring)."""

    def __init__(self, path: Path, child: DedicatedChild, *, max_pixels: int, max_image_pixels: int,
                 reader: SlideReader) -> None:  # fmt: skip
        self.source = path.name
        self._child = child
        self._opened = child.run(_open, str(path), max_pixels, max_image_pixels, reader.value, source=path.name)

    @property
    def levels(self) -> tuple[SlideLevel, ...]:
        """The pyramid, as the reader in the child sees it."""
        return self._opened.levels

    @property
    def mpp(self) -> float | None:
        """Microns per pixel at level 0, as the reader in the child sees it."""
        return self._opened.mpp

    @property
    def reader(self) -> str:
        """The reader that opened the slide in the child."""
        return self._opened.reader

    @property
    def single_image(self) -> bool:
        """Whether the child's reader holds one image decoded whole."""
        return self._opened.single_image

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        return self._child.run(_read, level, x, y, width, height, source=self.source)

    def close(self) -> None:
        """Stop the decoder process (idempotent)."""
        self._child.close()


# What a spare slide child imports ahead (Isolation.keep_spare): this module (the child's functions), the readers
# of the formats slides come in, and the decoders their tiles need; those not installed are skipped.
SLIDE_MODULES = ("cds.pipelines.pathology.isolated_slide", "cds.pipelines.pathology.tiff_slide",
                 "cds.pipelines.pathology.openslide_slide", "cds.pipelines.pathology.dicom_slide",
                 "cds.pipelines.pathology.image_tile", "tifffile", "imagecodecs", "openslide",
                 "PIL.Image")  # fmt: skip


def keep_spare_slide_child() -> None:
    """Keep a slide decoder process started ahead (a service's start-up)."""
    isolation().keep_spare(SLIDE_MODULES)


def open_isolated_slide(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
                        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                        reader: SlideReader | str = SlideReader.AUTO) -> Slide:  # fmt: skip
    """:func:`~cds.pipelines.pathology.slide.open_slide`, with the reader in a decoder process of its own.

    Raises:
        InvalidInputError: Any reason of :func:`open_slide`, or ``decoder_crashed``, ``decoder_timeout``,
            ``decoder_memory``.
        MissingDependencyError: The reader's package is not installed.
    """
    pool = isolation()
    if pool.in_process:
        return open_slide(path, max_pixels=max_pixels, max_image_pixels=max_image_pixels, reader=reader)
    path = Path(path)
    kind = slide_kind(path, SlideReader(reader))
    child = pool.dedicated()
    try:
        return IsolatedSlide(path, child, max_pixels=max_pixels, max_image_pixels=max_image_pixels, reader=kind)
    except BaseException:
        child.close()
        raise
