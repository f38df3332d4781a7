"""One interface over every kind of slide the pathology pipeline reads, and the function that picks the reader.

A :class:`Slide` is a pyramid of RGB levels read lazily: :meth:`Slide.read_region` decodes only the tiles a region
touches, so a whole-slide image is never loaded into memory. Readers:

* :class:`~cds.pipelines.pathology.tiff_slide.TiffSlide`: tiled (or stripped) TIFF through tifffile, pyramid levels
  as SubIFDs or as further pages (generic pyramidal TIFF, Aperio SVS).
* :class:`~cds.pipelines.pathology.openslide_slide.OpenSlideSlide`: vendor formats (SVS, NDPI, MRXS, SCN, ...) through
  OpenSlide, where ``openslide-python`` and its library are installed.
* :class:`~cds.pipelines.pathology.dicom_slide.DicomSlide`: DICOM VL Whole Slide Microscopy (a folder or one file)
  through wsidicom.
* :class:`~cds.pipelines.pathology.image_tile.ImageTile`: one PNG or JPEG tile as a one-level slide.

:func:`open_slide` looks at the file's first bytes (and, for vendor formats, its extension) and checks the size the
header declares against a cap before anything is decoded. Refusals are :class:`~cds.errors.InvalidInputError` with
codes ``not_found``, ``empty_file``, ``not_a_slide``, ``corrupt_file``, ``truncated_file``, ``not_rgb``,
``slide_too_large``, ``unsupported_layout``; a reader whose package is missing raises
:class:`~cds.errors.MissingDependencyError`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

from cds.errors import InvalidInputError

DEFAULT_MAX_PIXELS = 10_000_000_000  # level-0 pixels of a pyramidal slide (100,000 × 100,000)
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000  # a single tile decoded whole (PNG/JPEG): about 150 MB of RGB
MAX_REGION_PIXELS = 64 * 1024 * 1024  # one read_region call: 192 MiB of RGB at most
BACKGROUND = 255  # value of pixels outside a level (white glass)
VENDOR_EXTENSIONS = frozenset({".svs", ".ndpi", ".mrxs", ".vms", ".vmu", ".scn", ".bif", ".svslide"})
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class SlideReader(StrEnum):
    """Which reader :func:`open_slide` uses; ``auto`` decides from the file's content and extension."""

    AUTO = "auto"
    TIFF = "tiff"
    OPENSLIDE = "openslide"
    DICOM = "dicom"
    IMAGE = "image"


@dataclass(frozen=True)
class SlideLevel:
    """One level of a slide's pyramid.

    Attributes:
        width: Width in pixels at this level.
        height: Height in pixels at this level.
        downsample: Level-0 pixels per pixel of this level (1.0 for level 0).
    """

    width: int
    height: int
    downsample: float

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return self.width, self.height


def refuse(source: str, code: str, message: str) -> InvalidInputError:
    """An :class:`InvalidInputError` naming the input it refuses."""
    return InvalidInputError(f"{source}: {message}", code=code)


def check_pixels(source: str, width: int, height: int, max_pixels: int) -> None:
    """Refuse a level-0 size over ``max_pixels`` (``slide_too_large``) or not positive (``corrupt_file``)."""
    if width <= 0 or height <= 0:
        raise refuse(source, "corrupt_file", f"the header declares a non-positive size {width} × {height}")
    if width * height > max_pixels:
        raise refuse(source, "slide_too_large",
                     f"the header declares {width} × {height} = {width * height:,} pixels, over the cap of "
                     f"{max_pixels:,}; refused before decoding")


def as_rgb(array: np.ndarray, source: str) -> np.ndarray:
    """``array`` as uint8 H×W×3: an alpha channel is dropped; anything but 8-bit RGB(A) is ``not_rgb``."""
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise refuse(source, "not_rgb", f"expected 8-bit RGB pixels, got {array.dtype} of shape {list(array.shape)}")
    return np.ascontiguousarray(array[..., :3])


def resize_rgb(array: np.ndarray, width: int, height: int, box: tuple[float, float, float, float] | None = None,
               ) -> np.ndarray:
    """``array`` (uint8 H×W×3) resized to ``width`` × ``height`` with antialiased bilinear filtering.

    ``box`` (left, upper, right, lower; may be fractional) selects the source area to resize, which lets pieces of
    one image be resized separately without seams.
    """
    from PIL import Image

    if box is None and array.shape[1] == width and array.shape[0] == height:
        return array
    image = Image.fromarray(np.ascontiguousarray(array), mode="RGB")
    return np.asarray(image.resize((width, height), Image.Resampling.BILINEAR, box=box))


class Slide(ABC):
    """A whole-slide image (or a single tile) as a pyramid of lazily read RGB levels.

    Subclasses implement :attr:`levels`, :attr:`mpp`, :meth:`_read` and :meth:`close`; this base validates regions,
    pads what lies outside a level with white, and builds thumbnails in bounded memory. Use as a context manager.
    A slide is not thread-safe (readers share a file position and a tile cache): open one per worker.

    Attributes:
        source: Name of the input, for messages (never a patient identifier).
    """

    source: str

    @property
    @abstractmethod
    def levels(self) -> tuple[SlideLevel, ...]:
        """The pyramid, level 0 (full resolution) first."""

    @property
    @abstractmethod
    def mpp(self) -> float | None:
        """Microns per pixel at level 0, or None when the file does not say."""

    @abstractmethod
    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """Pixels of a region that lies wholly inside ``level``: uint8 ``height × width × 3``."""

    @abstractmethod
    def close(self) -> None:
        """Release the file handles (idempotent)."""

    @property
    def reader(self) -> str:
        """The reader's name (``TiffSlide``, ``OpenSlideSlide``, ``DicomSlide``, ``ImageTile``)."""
        return type(self).__name__

    @property
    def single_image(self) -> bool:
        """Whether this is one image decoded whole (a PNG or JPEG tile), not a pyramid read lazily."""
        return False

    @property
    def dimensions(self) -> tuple[int, int]:
        """``(width, height)`` of level 0."""
        return self.levels[0].size

    def level_mpp(self, level: int) -> float | None:
        """Microns per pixel at ``level``, or None when the slide's resolution is unknown."""
        mpp = self.mpp
        return None if mpp is None else mpp * self.levels[level].downsample

    def read_region(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        """Pixels of a region, uint8 ``height × width × 3`` RGB; only the tiles it touches are decoded.

        Args:
            level: Pyramid level index (0 = full resolution).
            x: Left edge, in pixels of ``level`` (not of level 0).
            y: Top edge, in pixels of ``level``.
            width: Region width in pixels of ``level``.
            height: Region height in pixels of ``level``.

        Raises:
            InvalidInputError: ``invalid_region`` for an unknown level, a non-positive size or a region over
                :data:`MAX_REGION_PIXELS`.
        """
        if not 0 <= level < len(self.levels):
            raise refuse(self.source, "invalid_region", f"level {level} requested, the slide has levels "
                         f"0..{len(self.levels) - 1}")
        if width <= 0 or height <= 0 or width * height > MAX_REGION_PIXELS:
            raise refuse(self.source, "invalid_region", f"region of {width} × {height} pixels; allowed: positive "
                         f"sizes up to {MAX_REGION_PIXELS:,} pixels")
        info = self.levels[level]
        left, top = max(x, 0), max(y, 0)
        right, bottom = min(x + width, info.width), min(y + height, info.height)
        if left == x and top == y and right - left == width and bottom - top == height:
            return self._read(level, x, y, width, height)
        out = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        if right > left and bottom > top:
            out[top - y:bottom - y, left - x:right - x] = self._read(level, left, top, right - left, bottom - top)
        return out

    def thumbnail(self, max_side: int) -> np.ndarray:
        """The whole slide with its longer side ``max_side`` pixels (uint8 RGB), read in bounded memory.

        The thumbnail comes from the smallest level at least as large as the result, read in bands of rows that
        are each resized on their own (exact source boxes, so no seams).
        """
        if max_side <= 0:
            raise refuse(self.source, "invalid_region", f"thumbnail size {max_side}; allowed: a positive size")
        width0, height0 = self.dimensions
        scale0 = max_side / max(width0, height0)
        out_w, out_h = max(1, round(width0 * scale0)), max(1, round(height0 * scale0))
        level = self._level_for_size(out_w, out_h)
        info = self.levels[level]
        sy = info.height / out_h  # source rows per output row
        band = max(1, (MAX_REGION_PIXELS // 4) // max(1, info.width) / sy)  # output rows per band
        rows = []
        start = 0
        while start < out_h:
            stop = min(out_h, int(start + max(1, band)))
            top, bottom = math.floor(start * sy), min(info.height, math.ceil(stop * sy))
            pixels = self._read(level, 0, top, info.width, bottom - top)
            rows.append(resize_rgb(pixels, out_w, stop - start, box=(0.0, start * sy - top, float(info.width),
                                                                     stop * sy - top)))
            start = stop
        return np.concatenate(rows, axis=0)

    def _level_for_size(self, width: int, height: int) -> int:
        """The smallest level that is still at least ``width`` × ``height`` (level 0 when none is smaller)."""
        best = 0
        for index, info in enumerate(self.levels):
            if info.width >= width and info.height >= height:
                best = index
        return best

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        width, height = self.dimensions
        return f"{type(self).__name__}({self.source!r}, {width}×{height}, levels={len(self.levels)}, mpp={self.mpp})"


def _sniff(path: Path) -> SlideReader:
    """The reader a file's first bytes and extension call for (``not_a_slide`` when none fits)."""
    source = path.name
    if path.is_dir():
        return SlideReader.DICOM
    with path.open("rb") as handle:
        head = handle.read(132)
    if not head:
        raise refuse(source, "empty_file", "the file is empty")
    suffix = path.suffix.lower()
    if head[:4] in _TIFF_MAGIC:
        if suffix in VENDOR_EXTENSIONS and _openslide_available():
            return SlideReader.OPENSLIDE
        return SlideReader.TIFF
    if head[128:132] == b"DICM":
        return SlideReader.DICOM
    if head.startswith(b"\x89PNG\r\n\x1a\n") or head.startswith(b"\xff\xd8\xff"):
        return SlideReader.IMAGE
    if suffix in VENDOR_EXTENSIONS:
        return SlideReader.OPENSLIDE
    raise refuse(source, "not_a_slide", "not a TIFF, DICOM, PNG or JPEG file, nor a vendor slide format "
                 f"({', '.join(sorted(VENDOR_EXTENSIONS))})")


def slide_kind(path: Path, reader: SlideReader = SlideReader.AUTO) -> SlideReader:
    """The reader for ``path``: ``reader`` itself, or for ``auto`` the one the file's first bytes call for.

    Raises:
        InvalidInputError: ``not_found``, ``empty_file`` or ``not_a_slide``.
    """
    if not path.exists():
        raise refuse(path.name, "not_found", "no such file or folder")
    return _sniff(path) if reader is SlideReader.AUTO else reader


def _openslide_available() -> bool:
    try:
        import openslide  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def open_slide(path: str | Path, *, max_pixels: int = DEFAULT_MAX_PIXELS,
               max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
               reader: SlideReader | str = SlideReader.AUTO) -> Slide:
    """Open a slide or tile with the reader its content calls for, refusing bad input before decoding pixels.

    Args:
        path: A slide file, a single tile, or a folder of DICOM WSI instances.
        max_pixels: Cap on level-0 pixels of a lazily read slide, checked from the header.
        max_image_pixels: Cap on pixels of an image that must be decoded whole (PNG, JPEG).
        reader: Force a reader instead of detecting one.

    Raises:
        InvalidInputError: see the module docstring for the codes.
        MissingDependencyError: the reader's package (openslide-python, wsidicom) is not installed.
    """
    path = Path(path)
    kind = slide_kind(path, SlideReader(reader))
    if kind is SlideReader.TIFF:
        from cds.pipelines.pathology.tiff_slide import TiffSlide

        return TiffSlide(path, max_pixels=max_pixels)
    if kind is SlideReader.OPENSLIDE:
        from cds.pipelines.pathology.openslide_slide import OpenSlideSlide

        return OpenSlideSlide(path, max_pixels=max_pixels)
    if kind is SlideReader.DICOM:
        from cds.pipelines.pathology.dicom_slide import DicomSlide

        return DicomSlide(path, max_pixels=max_pixels)
    from cds.pipelines.pathology.image_tile import ImageTile

    return ImageTile(path, max_pixels=max_image_pixels)
