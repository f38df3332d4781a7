"""Pyramidal TIFF slides read through tifffile, one tile (or strip) at a time.

Levels are what tifffile reports for the first image series: reduced-resolution SubIFDs, or further pages of the
same image (generic pyramidal TIFF, Aperio SVS). A region is read by decoding only the segments (tiles or strips)
it overlaps, straight from their byte offsets with :meth:`tifffile.TiffPage.decode`; a small byte-bounded cache keeps
recently decoded segments, because neighbouring patches share tiles. Nothing reads a whole level.

Checks made at open, before any pixel is decoded: the header's size against the cap, 8-bit RGB (or YCbCr-coded RGB)
samples, and that every level's segments lie inside the file (a truncated file is refused, not half-read).
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.pathology.slide import BACKGROUND, Slide, SlideLevel, check_pixels, refuse

MAX_SEGMENT_BYTES = 256 * 1024 * 1024  # one decoded tile or strip; larger ones cannot be read lazily
CACHE_BYTES = 64 * 1024 * 1024  # decoded segments kept for neighbouring reads
_RGB_PHOTOMETRIC = (2, 6)  # TIFF Photometric RGB, YCbCr (decoded to RGB by the codec)
_SVS_MPP = re.compile(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)")


def _resolution_mpp(page: Any) -> float | None:
    """Microns per pixel from a page's XResolution and ResolutionUnit (None when absent or unitless)."""
    tags = page.tags
    if "XResolution" not in tags:
        return None
    numerator, denominator = tags["XResolution"].value
    unit = int(tags["ResolutionUnit"].value) if "ResolutionUnit" in tags else 2
    microns_per_unit = {2: 25_400.0, 3: 10_000.0}.get(unit)
    if not numerator or not denominator or microns_per_unit is None:
        return None
    per_unit = numerator / denominator
    mpp = microns_per_unit / per_unit
    return mpp if 0.01 <= mpp <= 1000.0 else None  # 72 dpi defaults and the like are not slide resolutions


class _Level:
    """Where a level's segments are and how they tile it."""

    def __init__(self, page: Any, source: str, file_size: int) -> None:
        self.page = page
        self.height, self.width = int(page.imagelength), int(page.imagewidth)
        if page.is_tiled:
            self.seg_h, self.seg_w = int(page.tilelength), int(page.tilewidth)
        else:
            self.seg_h, self.seg_w = int(page.rowsperstrip or self.height), self.width
        self.seg_h, self.seg_w = min(self.seg_h, self.height), min(self.seg_w, self.width)
        self.columns = math.ceil(self.width / self.seg_w)
        self.rows = math.ceil(self.height / self.seg_h)
        if int(page.imagedepth) != 1 or int(page.planarconfig) != 1:
            raise refuse(source, "unsupported_layout", "only 2-D images with interleaved samples can be read lazily")
        if self.seg_h * self.seg_w * 3 > MAX_SEGMENT_BYTES:
            raise refuse(source, "unsupported_layout", f"segments of {self.seg_w} × {self.seg_h} pixels are too large "
                         "to read one region at a time; re-save the slide tiled")
        offsets, counts = page.dataoffsets, page.databytecounts
        if len(offsets) < self.columns * self.rows or len(counts) < len(offsets):
            raise refuse(source, "truncated_file", f"a {self.width} × {self.height} level lists {len(offsets)} of its "
                         f"{self.columns * self.rows} segments")
        ends = np.asarray(offsets, np.int64) + np.asarray(counts[:len(offsets)], np.int64)
        end = int(ends.max(initial=0))
        if end > file_size:
            raise refuse(source, "truncated_file", f"image data run to byte {end:,} of a {file_size:,}-byte file")


class TiffSlide(Slide):
    """A tiled (or stripped) RGB TIFF, pyramidal or not, read lazily.

    Args:
        path: The TIFF file (generic pyramidal TIFF, OME-TIFF, Aperio SVS, ...).
        max_pixels: Cap on level-0 pixels, checked from the header before decoding.

    Raises:
        InvalidInputError: ``corrupt_file``, ``not_a_slide``, ``truncated_file``, ``not_rgb``,
            ``slide_too_large`` or ``unsupported_layout``.
    """

    def __init__(self, path: str | Path, *, max_pixels: int) -> None:
        import tifffile

        path = Path(path)
        self.source = path.name
        self._cache: OrderedDict[tuple[int, int], np.ndarray | None] = OrderedDict()
        self._cache_bytes = 0
        try:
            self._tif = tifffile.TiffFile(path)
        except Exception as exc:  # noqa: BLE001 - tifffile parses the untrusted structure and raises many kinds
            raise refuse(self.source, "corrupt_file",
                         f"unreadable TIFF structure ({type(exc).__name__}: {exc})") from exc
        try:
            self._levels, self._mpp = self._inspect(max_pixels, path.stat().st_size)
        except InvalidInputError:
            self._tif.close()
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed tag (a tuple where a number belongs, ...) in tifffile
            self._tif.close()
            raise refuse(self.source, "corrupt_file",
                         f"unreadable TIFF structure ({type(exc).__name__}: {exc})") from exc
        except BaseException:
            self._tif.close()
            raise

    def _inspect(self, max_pixels: int, file_size: int) -> tuple[list[_Level], float | None]:
        series = self._tif.series
        pages = [level.keyframe for level in series[0].levels] if series else []
        if not pages or pages[0] is None:
            raise refuse(self.source, "truncated_file", "the TIFF holds no readable image (cut short or damaged)")
        base = pages[0]
        subifds = np.atleast_1d(base.tags["SubIFDs"].value) if "SubIFDs" in base.tags else np.zeros(0)
        if np.any(subifds >= file_size):
            raise refuse(self.source, "truncated_file", "reduced-resolution levels lie past the end of the file")
        check_pixels(self.source, int(base.imagewidth), int(base.imagelength), max_pixels)
        for page in pages:
            samples = int(page.samplesperpixel)
            if page.dtype != np.uint8 or int(page.photometric) not in _RGB_PHOTOMETRIC or samples not in (3, 4):
                raise refuse(self.source, "not_rgb", f"expected 8-bit RGB, got photometric {int(page.photometric)}, "
                             f"{samples} sample(s) of {page.dtype}")
        levels = [_Level(page, self.source, file_size) for page in pages]
        mpp = _resolution_mpp(base)
        if self._tif.is_svs:
            found = _SVS_MPP.search(str(base.description))
            mpp = float(found.group(1)) if found else mpp
        return levels, mpp

    @property
    def levels(self) -> tuple[SlideLevel, ...]:
        """Level sizes and their downsample factors relative to level 0."""
        base = self._levels[0]
        return tuple(SlideLevel(level.width, level.height,
                                (base.width / level.width + base.height / level.height) / 2)
                     for level in self._levels)

    @property
    def mpp(self) -> float | None:
        """Microns per pixel at level 0, from the resolution tags (or an SVS description's ``MPP``)."""
        return self._mpp

    def _segment(self, level: int, index: int) -> np.ndarray | None:
        """Decoded segment ``index`` of ``level`` (None when the file leaves it empty), through the cache."""
        key = (level, index)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        page = self._levels[level].page
        offset, count = int(page.dataoffsets[index]), int(page.databytecounts[index])
        data = None
        if count:
            handle = self._tif.filehandle
            handle.seek(offset)
            data = handle.read(count)
        try:
            decoded, _, _ = page.decode(data, index, jpegtables=page.jpegtables)
        except MemoryError:
            raise  # the decoder's memory budget, not a damaged tile (``decoder_memory`` when isolated)
        except Exception as exc:  # noqa: BLE001 - codecs raise anything; all of it means a damaged tile
            raise refuse(self.source, "tile_decode_failed", f"segment {index} of level {level} does not decode "
                         f"({type(exc).__name__}: {exc})") from exc
        segment = None if decoded is None else np.asarray(decoded)[0]
        self._cache[key] = segment
        self._cache_bytes += 0 if segment is None else segment.nbytes
        while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
            _, old = self._cache.popitem(last=False)
            self._cache_bytes -= 0 if old is None else old.nbytes
        return segment

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        info = self._levels[level]
        out = np.full((height, width, 3), BACKGROUND, dtype=np.uint8)
        for row in range(y // info.seg_h, (y + height - 1) // info.seg_h + 1):
            for column in range(x // info.seg_w, (x + width - 1) // info.seg_w + 1):
                segment = self._segment(level, row * info.columns + column)
                if segment is None:
                    continue
                top, left = row * info.seg_h, column * info.seg_w
                y0, y1 = max(y, top), min(y + height, top + segment.shape[0])
                x0, x1 = max(x, left), min(x + width, left + segment.shape[1])
                if y1 > y0 and x1 > x0:
                    out[y0 - y:y1 - y, x0 - x:x1 - x] = segment[y0 - top:y1 - top, x0 - left:x1 - left, :3]
        return out

    def close(self) -> None:
        """Close the file and drop cached tiles."""
        self._cache.clear()
        self._cache_bytes = 0
        self._tif.close()

