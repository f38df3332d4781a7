"""Generated whole-slide images: pyramidal tiled TIFFs of H&E-like tissue, written in bounded memory.

:func:`write_slide` lays out a few tissue pieces with tumour areas on white glass (:func:`make_layout`), renders
level 0 one row of tiles at a time (:func:`training.data.he_tiles.concentrations`) and hands each tile to tifffile
as it is made. Reduced levels (downsample ``factor`` each) are built on the way: each finished row of tiles is
averaged into the next level's rows, which are spooled to a temporary file and written after level 0 (tifffile
writes SubIFDs in order). Peak memory is one row of level-0 tiles plus one per reduced level, so a
50,000 × 50,000 slide needs tens of MB, not 7.5 GB.

The result carries the ground truth at low resolution: tissue and tumour masks on the layout grid.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from scipy import ndimage

from training.data.he_tiles import HE_STAINS, Layout, compose, concentrations

GLASS = 255  # padding value outside the image when averaging edges


@dataclass(frozen=True)
class GeneratedSlide:
    """A written slide and its ground truth.

    Attributes:
        path: The TIFF file.
        width: Level-0 width in pixels.
        height: Level-0 height in pixels.
        mpp: Microns per pixel at level 0 (written to the resolution tags).
        level_sizes: ``(width, height)`` of each level, level 0 first.
        tissue_mask: bool [rows, columns], True where tissue was generated.
        tumour_mask: bool [rows, columns], True where tumour was generated (within tissue).
        mask_scale: Level-0 pixels per mask pixel.
    """

    path: Path
    width: int
    height: int
    mpp: float
    level_sizes: tuple[tuple[int, int], ...]
    tissue_mask: np.ndarray
    tumour_mask: np.ndarray
    mask_scale: float


def make_layout(width: int, height: int, *, seed: int, pieces: int = 3, tumours: int = 2, blank: bool = False,
                max_side: int = 512) -> Layout:
    """Tissue pieces (smooth blobs with irregular edges) and tumour areas inside them, on a grid of at most
    ``max_side`` cells; ``blank`` gives glass only."""
    cell = max(width, height) / max_side if max(width, height) > max_side else 1.0
    rows, columns = math.ceil(height / cell), math.ceil(width / cell)
    tissue = np.zeros((rows, columns), np.float32)
    tumour = np.zeros((rows, columns), np.float32)
    if blank:
        return Layout(tissue, tumour, cell)
    rng = np.random.default_rng([seed, 1])
    yy, xx = np.mgrid[0:rows, 0:columns].astype(np.float32)
    for _ in range(pieces):
        cy, cx = rng.uniform(0.25, 0.75) * rows, rng.uniform(0.2, 0.8) * columns
        sy, sx = rng.uniform(0.1, 0.2) * rows, rng.uniform(0.08, 0.16) * columns
        tissue = np.maximum(tissue, np.exp(-(((yy - cy) / sy) ** 2 + ((xx - cx) / sx) ** 2) / 2))
    roughness = ndimage.gaussian_filter(rng.standard_normal((rows, columns)).astype(np.float32), max(rows, 8) / 40)
    tissue = np.clip(tissue + 0.25 * roughness / (np.abs(roughness).max() + 1e-6), 0, 1)
    inside = np.argwhere(tissue > 0.75)
    for _ in range(tumours if len(inside) else 0):
        cy, cx = inside[rng.integers(len(inside))]
        sigma = rng.uniform(0.04, 0.08) * min(rows, columns)
        tumour = np.maximum(tumour, 1.4 * np.exp(-(((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))))
    invasion = ndimage.gaussian_filter(rng.standard_normal((rows, columns)).astype(np.float32), max(rows, 8) / 80)
    tumour = np.clip(tumour + 0.5 * invasion / (np.abs(invasion).max() + 1e-6), 0, None) * (tumour > 0.05)
    return Layout(tissue.astype(np.float32), (tumour * (tissue > 0.5)).astype(np.float32), cell)


def _reduce(rows: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor`` × ``factor`` blocks (edges padded with glass), uint8, without a float copy of ``rows``."""
    pad_y, pad_x = -rows.shape[0] % factor, -rows.shape[1] % factor
    if pad_y or pad_x:
        rows = np.pad(rows, ((0, pad_y), (0, pad_x), (0, 0)), constant_values=GLASS)
    height, width = rows.shape[0] // factor, rows.shape[1] // factor
    sums = rows.reshape(height, factor, width, factor, 3).sum(axis=(1, 3), dtype=np.uint32)
    result: np.ndarray = ((sums + factor * factor // 2) // (factor * factor)).astype(np.uint8)
    return result


class _Spool:
    """A reduced level being built: rows arrive from the level above, whole tile rows go to a temporary file."""

    def __init__(self, width: int, height: int, tile: int, factor: int, handle: BinaryIO) -> None:
        self.width, self.height, self.tile, self.factor, self.handle = width, height, tile, factor, handle
        self.pending = np.zeros((0, width, 3), np.uint8)
        self.written = 0
        self.below: _Spool | None = None

    def push(self, rows_above: np.ndarray) -> None:
        """Add rows of the level above (a multiple of ``factor`` of them, except the last call)."""
        rows = _reduce(rows_above, self.factor)[:, :self.width]
        rows = rows[:max(0, self.height - self.written - len(self.pending))]
        self.pending = np.concatenate([self.pending, rows]) if len(self.pending) else rows
        while len(self.pending) >= self.tile:
            self._emit(self.pending[:self.tile])
            self.pending = self.pending[self.tile:]

    def finish(self) -> None:
        """Write what is left (the last, partial tile row) and finish the levels below."""
        if len(self.pending):
            self._emit(self.pending)
            self.pending = self.pending[:0]
        if self.below is not None:
            self.below.finish()

    def _emit(self, rows: np.ndarray) -> None:
        self.handle.write(np.ascontiguousarray(rows).tobytes())
        self.written += len(rows)
        if self.below is not None:
            self.below.push(rows)

    def tiles(self) -> Iterator[np.ndarray]:
        """The level's tiles in row-major order, read back one tile row at a time."""
        self.handle.seek(0)
        for top in range(0, self.height, self.tile):
            count = min(self.tile, self.height - top)
            strip = np.frombuffer(self.handle.read(count * self.width * 3), np.uint8).reshape(count, self.width, 3)
            for left in range(0, self.width, self.tile):
                yield strip[:, left:left + self.tile]


def _level_zero_tiles(layout: Layout, width: int, height: int, tile: int, mpp: float, seed: int,
                      first: _Spool | None) -> Iterator[np.ndarray]:
    """Level-0 tiles in row-major order; each finished row of tiles is pushed to the first reduced level."""
    glass = compose(np.zeros((tile, tile, 2), np.float32), HE_STAINS, rng=np.random.default_rng([seed, 4]))
    for top in range(0, height, tile):
        rows = min(tile, height - top)
        strip = np.empty((rows, width, 3), np.uint8)
        for left in range(0, width, tile):
            columns = min(tile, width - left)
            conc = concentrations(left, top, columns, rows, layout=layout, mpp=mpp, key=(seed,))
            if conc.any():
                noise = np.random.default_rng([seed, 3, top, left])
                strip[:, left:left + columns] = compose(conc, HE_STAINS, rng=noise)
            else:  # bare glass: one pre-rendered tile
                strip[:, left:left + columns] = glass[:rows, :columns]
        if first is not None:
            first.push(strip)
            if top + tile >= height:
                first.finish()
        for left in range(0, width, tile):
            yield strip[:, left:left + tile]


def _level_sizes(width: int, height: int, tile: int, factor: int, levels: int | None) -> list[tuple[int, int]]:
    """Sizes of the pyramid's levels: ``levels`` of them, or while a reduced level is at least one tile wide."""
    sizes = [(width, height)]
    while True:
        reduced = (math.ceil(sizes[-1][0] / factor), math.ceil(sizes[-1][1] / factor))
        if (levels is not None and len(sizes) >= levels) or (levels is None and max(reduced) < tile):
            return sizes
        sizes.append(reduced)


def write_slide(path: str | Path, width: int, height: int, *, seed: int = 0, mpp: float = 0.5, tile: int = 256,
                factor: int = 4, levels: int | None = None, compression: Literal["jpeg", "deflate"] = "deflate",
                quality: int = 90, pyramid: Literal["subifds", "pages"] = "subifds", blank: bool = False,
                layout: Layout | None = None, buffer_bytes: int = 32 * 2**20) -> GeneratedSlide:
    """Write a generated pyramidal tiled TIFF slide, tile by tile, and return it with its ground truth.

    Args:
        path: Output file.
        width: Level-0 width in pixels.
        height: Level-0 height in pixels.
        seed: Fixes the layout and every pixel.
        mpp: Level-0 microns per pixel (written as resolution tags in pixels per centimetre).
        tile: Tile side in pixels (a multiple of 16).
        factor: Downsample between consecutive levels.
        levels: Number of levels; by default, reduced levels are added while they are at least one tile wide.
        compression: ``deflate`` (lossless, needs nothing more) or ``jpeg`` (needs imagecodecs).
        quality: JPEG quality.
        pyramid: Reduced levels as SubIFDs of level 0, or as further top-level pages (what OpenSlide's generic
            TIFF reader sees).
        blank: Glass only, no tissue.
        layout: Use this layout instead of :func:`make_layout`'s.
        buffer_bytes: Raw tiles tifffile may queue for its encoder threads (it would otherwise queue 512 MB).
    """
    import tifffile

    if tile % 16 or tile % factor:
        raise ValueError(f"tile {tile} must be a multiple of 16 and of the level factor {factor}")
    path = Path(path)
    layout = layout or make_layout(width, height, seed=seed, blank=blank)
    sizes = _level_sizes(width, height, tile, factor, levels)
    options: dict[str, Any] = {
        "tile": (tile, tile), "photometric": "rgb", "resolutionunit": "CENTIMETER", "buffersize": buffer_bytes,
        "compression": "jpeg" if compression == "jpeg" else "zlib",
        "compressionargs": {"level": quality} if compression == "jpeg" else {"level": 1},
    }
    with tempfile.TemporaryDirectory(prefix="he_slide_") as folder, ExitStack() as files:
        tiff = files.enter_context(tifffile.TiffWriter(path, bigtiff=True))
        spools = [_Spool(w, h, tile, factor, files.enter_context(open(Path(folder) / f"level{k}.raw", "w+b")))
                  for k, (w, h) in enumerate(sizes[1:], start=1)]
        for upper, lower in zip(spools, spools[1:], strict=False):
            upper.below = lower
        tiff.write(_level_zero_tiles(layout, width, height, tile, mpp, seed, spools[0] if spools else None),
                   shape=(height, width, 3), dtype=np.uint8, resolution=(1e4 / mpp, 1e4 / mpp),
                   subifds=len(spools) if pyramid == "subifds" else None, **options)
        for k, spool in enumerate(spools, start=1):
            level_mpp = mpp * factor**k
            tiff.write(spool.tiles(), shape=(spool.height, spool.width, 3), dtype=np.uint8, subfiletype=1,
                       resolution=(1e4 / level_mpp, 1e4 / level_mpp), **options)
    tissue, tumour = layout.masks()
    return GeneratedSlide(path=path, width=width, height=height, mpp=mpp, level_sizes=tuple(sizes),
                          tissue_mask=tissue, tumour_mask=tumour, mask_scale=layout.cell)
