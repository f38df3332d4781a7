"""A finished slide read's uploaded slide as Deep Zoom (DZI) tiles, read from the slide's own pyramid.

Deep Zoom numbers its levels from 0 (one pixel) up to ``max_level = ceil(log2(longer side))`` (the slide at full
resolution); each level halves the one above, rounding up. A level is cut into ``TILE_SIZE`` squares, each with
``OVERLAP`` pixels of its neighbours on the sides that have one. A tile is read at the coarsest level of the slide's
pyramid that still has a source pixel for every tile pixel (the slide reader's levels and downsamples), only the
part of that level it covers, and resized to the tile; at the top level it is the slide's own pixels. Levels so
coarse that a tile would need more than :data:`MAX_SOURCE_PIXELS` of the slide (a slide without a reduced level)
are not served (``tile_level_unavailable``): the viewer starts at :attr:`DeepZoom.min_level`.

A viewer asks for dozens of tiles a second; opening the slide for each (a decoder process started, the container
parsed) would cost more than the tiles. :data:`OPEN_SLIDES` keeps the few slides being viewed open in this process
(each still in its own decoder process) and closes one once it is idle or crowded out.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from cds.errors import NotFoundError
from cds.pipelines.pathology.isolated_slide import open_isolated_slide
from cds.pipelines.pathology.slide import Slide, SlideLevel, resize_rgb
from cds.results.jobs import JobRecord, PathologyPayload

TILE_SIZE = 254  # with the overlap, tiles of at most 256 pixels
OVERLAP = 1
MAX_SOURCE_PIXELS = 4096 * 4096  # of the slide read for one tile
JPEG_QUALITY = 90


class TileFormat(StrEnum):
    """How a tile is encoded: JPEG (the viewer's default) or lossless PNG."""

    JPEG = "jpeg"
    PNG = "png"


class TileNotFoundError(NotFoundError):
    """A Deep Zoom level or tile the slide does not have."""

    default_code = "tile_not_found"


@dataclass(frozen=True)
class DeepZoom:
    """The Deep Zoom geometry of a slide: its level-0 size, pyramid and resolution.

    Attributes:
        width: Level-0 width in pixels.
        height: Level-0 height in pixels.
        levels: The slide's own pyramid (sizes and downsamples).
        mpp: Level-0 microns per pixel, when the slide says.
    """

    width: int
    height: int
    levels: tuple[SlideLevel, ...]
    mpp: float | None

    @property
    def max_level(self) -> int:
        """The Deep Zoom level of full resolution."""
        return max(0, math.ceil(math.log2(max(self.width, self.height))))

    @property
    def min_level(self) -> int:
        """The coarsest Deep Zoom level served (a tile there reads at most :data:`MAX_SOURCE_PIXELS`)."""
        return next(level for level in range(self.max_level + 1) if self._source_side(level) ** 2 <= MAX_SOURCE_PIXELS)

    def scale(self, level: int) -> int:
        """Level-0 pixels per pixel of Deep Zoom level ``level``."""
        return int(2 ** (self.max_level - level))

    def size(self, level: int) -> tuple[int, int]:
        """Width and height of Deep Zoom level ``level``."""
        scale = self.scale(level)
        return math.ceil(self.width / scale), math.ceil(self.height / scale)

    def grid(self, level: int) -> tuple[int, int]:
        """Columns and rows of tiles at ``level``."""
        width, height = self.size(level)
        return math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)

    def pyramid_level(self, level: int) -> int:
        """The coarsest pyramid level with at least one source pixel per pixel of Deep Zoom level ``level``."""
        scale = self.scale(level)
        fitting = [index for index, info in enumerate(self.levels) if info.downsample <= scale]
        return max(fitting) if fitting else 0

    def _source_side(self, level: int) -> float:
        return (TILE_SIZE + 2 * OVERLAP) * self.scale(level) / self.levels[self.pyramid_level(level)].downsample

    def tile_box(self, level: int, column: int, row: int) -> tuple[int, int, int, int]:
        """The tile's box (left, top, width, height) in pixels of Deep Zoom level ``level``.

        Raises:
            TileNotFoundError: ``tile_level_unavailable`` (no such level, or coarser than :attr:`min_level`),
                ``tile_out_of_range`` (no such column or row at that level).
        """
        if not self.min_level <= level <= self.max_level:
            raise TileNotFoundError(f"Deep Zoom level {level} requested; this slide serves levels "
                                    f"{self.min_level}..{self.max_level}", code="tile_level_unavailable")  # fmt: skip
        columns, rows = self.grid(level)
        if not (0 <= column < columns and 0 <= row < rows):
            raise TileNotFoundError(f"tile {column}_{row} requested at level {level}, which has columns "
                                    f"0..{columns - 1} and rows 0..{rows - 1}", code="tile_out_of_range")  # fmt: skip
        width, height = self.size(level)
        left = column * TILE_SIZE - (OVERLAP if column else 0)
        top = row * TILE_SIZE - (OVERLAP if row else 0)
        right = min(width, (column + 1) * TILE_SIZE + OVERLAP)
        bottom = min(height, (row + 1) * TILE_SIZE + OVERLAP)
        return left, top, right - left, bottom - top

    def descriptor(self, tile_format: TileFormat = TileFormat.JPEG) -> str:
        """The ``.dzi`` XML descriptor (``Image`` with ``TileSize``, ``Overlap``, ``Format`` and ``Size``).

        Two attributes in a namespace of cds's own say what Deep Zoom does not: ``cds:Mpp`` (level-0 microns per
        pixel, absent when unknown) and ``cds:MinLevel`` (the coarsest level served).
        """
        mpp = f' cds:Mpp="{self.mpp:g}"' if self.mpp else ""
        return ('<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Image xmlns="http://schemas.microsoft.com/deepzoom/2008" xmlns:cds="urn:cds:deepzoom" '
                f'TileSize="{TILE_SIZE}" Overlap="{OVERLAP}" Format="{tile_format.value}"{mpp} '
                f'cds:MinLevel="{self.min_level}">'
                f'<Size Width="{self.width}" Height="{self.height}"/></Image>\n')  # fmt: skip


class OpenSlides:
    """The slides being viewed, kept open between tile requests: at most ``size``, each closed after ``idle_s``.

    Reads of one slide take turns (its decoder process serves one call at a time); a slide whose read failed for
    any reason but a tile it does not have is closed, so the next request opens it afresh.
    """

    def __init__(self, size: int = 4, idle_s: float = 120.0) -> None:
        self.size = size
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._open: OrderedDict[str, tuple[Slide, threading.Lock, float]] = OrderedDict()

    @contextmanager
    def reading(self, path: str) -> Iterator[Slide]:
        """The slide at ``path``, open, for this thread alone while the block runs."""
        now = time.monotonic()
        closing: list[Slide] = []
        with self._lock:
            for key, (_, _, used) in list(self._open.items()):
                if now - used > self.idle_s:
                    closing.append(self._open.pop(key)[0])
            entry = self._open.pop(path, None)
            if entry is None:
                entry = (open_isolated_slide(path), threading.Lock(), now)
            slide, lock = entry[0], entry[1]
            self._open[path] = (slide, lock, now)
            while len(self._open) > self.size:
                closing.append(self._open.popitem(last=False)[1][0])
        for stale in closing:
            stale.close()
        with lock:
            try:
                yield slide
            except TileNotFoundError:
                raise
            except Exception:
                self.discard(path)
                raise

    def discard(self, path: str) -> None:
        """Close the slide at ``path`` if it is open."""
        with self._lock:
            entry = self._open.pop(path, None)
        if entry is not None:
            entry[0].close()

    def close(self) -> None:
        """Close every open slide."""
        with self._lock:
            slides = [entry[0] for entry in self._open.values()]
            self._open.clear()
        for slide in slides:
            slide.close()


OPEN_SLIDES = OpenSlides()  # process-wide, like the decoder pool it draws on


def _slide_path(job: JobRecord) -> str:
    return str(job.payload_as(PathologyPayload).file)


def deep_zoom(job: JobRecord) -> DeepZoom:
    """The Deep Zoom geometry of the job's uploaded slide (its header only is read).

    Raises:
        InvalidInputError: The slide reader's reason.
    """
    with OPEN_SLIDES.reading(_slide_path(job)) as slide:
        width, height = slide.dimensions
        return DeepZoom(width, height, slide.levels, slide.mpp)


def read_tile(job: JobRecord, level: int, column: int, row: int) -> np.ndarray:
    """The pixels (uint8 H×W×3) of one Deep Zoom tile of the job's slide.

    Raises:
        TileNotFoundError: ``tile_level_unavailable``, ``tile_out_of_range``.
        InvalidInputError: The slide reader's reason.
    """
    with OPEN_SLIDES.reading(_slide_path(job)) as slide:
        width, height = slide.dimensions
        zoom = DeepZoom(width, height, slide.levels, slide.mpp)
        left, top, tile_width, tile_height = zoom.tile_box(level, column, row)
        index = zoom.pyramid_level(level)
        factor = zoom.scale(level) / slide.levels[index].downsample  # source pixels per tile pixel
        x0, y0 = left * factor, top * factor
        x1, y1 = (left + tile_width) * factor, (top + tile_height) * factor
        sx, sy = math.floor(x0), math.floor(y0)
        pixels = slide.read_region(index, sx, sy, max(1, math.ceil(x1) - sx), max(1, math.ceil(y1) - sy))
    if pixels.shape[:2] == (tile_height, tile_width):  # the slide's own pixels (top level, or a level that matches)
        return pixels
    return resize_rgb(pixels, tile_width, tile_height, box=(x0 - sx, y0 - sy, x1 - sx, y1 - sy))


def encode_tile(pixels: np.ndarray, tile_format: TileFormat) -> bytes:
    """The tile's bytes as JPEG (quality :data:`JPEG_QUALITY`) or PNG."""
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(pixels, dtype=np.uint8), mode="RGB")
    if tile_format is TileFormat.JPEG:
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()
