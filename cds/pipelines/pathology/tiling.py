"""The patch grid of a slide at a physical resolution, and patches read from it in batches.

A model is trained at a resolution in microns per pixel, not at a pyramid level: the same level index is 0.25 µm/px
on one scanner and 0.5 on another. :func:`plan_grid` picks the coarsest level that is still at least as fine as the
target (within ``mpp_tolerance``), reads ``read_size`` pixels there per patch and resizes to ``size``. Upsampling
a slide scanned coarser than the target is refused (it would invent detail the model never saw).

:func:`iter_tiles` walks the grid lazily and keeps patches whose tissue fraction (from a
:class:`~cds.pipelines.pathology.tissue.TissueMask`) reaches a threshold; :func:`read_tiles` reads them in batches.
Neither materialises the grid, so a 50,000 × 50,000 slide costs one batch of pixels at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.pathology.slide import Slide, resize_rgb
from cds.pipelines.pathology.tissue import TissueMask


@dataclass(frozen=True)
class TileSpec:
    """What patches a model takes and which are worth reading.

    Attributes:
        mpp: Target resolution, microns per pixel.
        size: Patch side in pixels at the target resolution.
        tissue_threshold: Least tissue fraction (0-1) for a patch to be kept.
        mpp_tolerance: Relative slack when matching a level's resolution to the target (0.1 = 10 %).
    """

    mpp: float = 0.5
    size: int = 224
    tissue_threshold: float = 0.5
    mpp_tolerance: float = 0.1

    def __post_init__(self) -> None:
        if self.mpp <= 0 or self.size <= 0 or not 0 <= self.tissue_threshold <= 1 or self.mpp_tolerance < 0:
            raise InvalidInputError(f"invalid tile spec {self}: mpp and size must be positive, tissue_threshold in "
                                    "[0, 1], mpp_tolerance non-negative", code="invalid_tile_spec")


@dataclass(frozen=True)
class TileGrid:
    """Where patches are read: one level, a fixed read size, a grid of whole patches.

    Attributes:
        level: Pyramid level the patches are read from.
        level_mpp: Microns per pixel of that level.
        downsample: Level-0 pixels per pixel of that level.
        read_size: Patch side in pixels of ``level`` (resized to ``size`` after reading).
        size: Patch side in pixels at the target resolution.
        columns: Whole patches across the level.
        rows: Whole patches down the level.
    """

    level: int
    level_mpp: float
    downsample: float
    read_size: int
    size: int
    columns: int
    rows: int

    @property
    def extent0(self) -> float:
        """Patch side in level-0 pixels."""
        return self.read_size * self.downsample


@dataclass(frozen=True)
class TileCoord:
    """One patch of a :class:`TileGrid`.

    Attributes:
        column: Grid column.
        row: Grid row.
        level: Level it is read from.
        x: Left edge in pixels of ``level``.
        y: Top edge in pixels of ``level``.
        read_size: Side read at ``level``.
        x0: Left edge in level-0 pixels.
        y0: Top edge in level-0 pixels.
        tissue_fraction: Share of the patch that the tissue mask covers (0-1).
    """

    column: int
    row: int
    level: int
    x: int
    y: int
    read_size: int
    x0: int
    y0: int
    tissue_fraction: float


def plan_grid(slide: Slide, spec: TileSpec, *, slide_mpp: float | None = None) -> TileGrid:
    """The level, read size and grid for patches of ``spec.size`` pixels at ``spec.mpp``.

    Args:
        slide: The slide.
        spec: Target resolution and patch size.
        slide_mpp: Level-0 microns per pixel to use when the file does not say (e.g. a bare PNG tile).

    Raises:
        InvalidInputError: ``unknown_resolution`` (no mpp in the file nor given), ``resolution_too_low`` (every level
            is coarser than the target) or ``slide_too_small`` (not one whole patch fits).
    """
    base_mpp = slide.mpp if slide.mpp is not None else slide_mpp
    if base_mpp is None or base_mpp <= 0:
        raise InvalidInputError(f"{slide.source}: the slide does not state its resolution (microns per pixel); "
                                "pass slide_mpp", code="unknown_resolution")
    limit = spec.mpp * (1 + spec.mpp_tolerance)
    candidates = [(base_mpp * info.downsample, index) for index, info in enumerate(slide.levels)
                  if base_mpp * info.downsample <= limit]
    if not candidates:
        raise InvalidInputError(f"{slide.source}: the finest level is {base_mpp:.3g} µm/px, coarser than the target "
                                f"{spec.mpp:.3g} µm/px (tolerance {spec.mpp_tolerance:.0%})", code="resolution_too_low")
    level_mpp, level = max(candidates)
    info = slide.levels[level]
    ratio = spec.mpp / level_mpp
    read_size = spec.size if abs(ratio - 1) <= spec.mpp_tolerance else max(1, round(spec.size * ratio))
    columns, rows = info.width // read_size, info.height // read_size
    if columns == 0 or rows == 0:
        raise InvalidInputError(f"{slide.source}: level {level} ({info.width} × {info.height} px) holds no whole "
                                f"patch of {read_size} px", code="slide_too_small")
    return TileGrid(level=level, level_mpp=level_mpp, downsample=info.downsample, read_size=read_size,
                    size=spec.size, columns=columns, rows=rows)


def iter_tiles(grid: TileGrid, tissue: TissueMask | None, *, tissue_threshold: float = 0.5) -> Iterator[TileCoord]:
    """Patches of ``grid`` whose tissue fraction is at least ``tissue_threshold``, row by row, lazily.

    With ``tissue=None`` every patch is yielded (fraction 1.0).
    """
    table = tissue.integral() if tissue is not None else None
    extent0 = grid.extent0
    for row in range(grid.rows):
        for column in range(grid.columns):
            x, y = column * grid.read_size, row * grid.read_size
            x0, y0 = round(x * grid.downsample), round(y * grid.downsample)
            fraction = 1.0
            if tissue is not None and table is not None:
                fraction = tissue.box_fraction(table, x0, y0, extent0, extent0)
            if fraction >= tissue_threshold:
                yield TileCoord(column=column, row=row, level=grid.level, x=x, y=y, read_size=grid.read_size,
                                x0=x0, y0=y0, tissue_fraction=fraction)


def read_tiles(slide: Slide, coords: Iterable[TileCoord], *, size: int, batch_size: int = 32,
               ) -> Iterator[tuple[list[TileCoord], np.ndarray]]:
    """Patches read in batches: ``(coords, pixels)`` with pixels uint8 [N, size, size, 3], N ≤ ``batch_size``.

    Only one batch of pixels is held at a time; ``coords`` may be a lazy iterator such as :func:`iter_tiles`.
    """
    if batch_size <= 0:
        raise InvalidInputError(f"batch_size {batch_size}; allowed: a positive integer", code="invalid_batch_size")
    iterator = iter(coords)
    while batch := list(islice(iterator, batch_size)):
        pixels = np.empty((len(batch), size, size, 3), dtype=np.uint8)
        for index, coord in enumerate(batch):
            region = slide.read_region(coord.level, coord.x, coord.y, coord.read_size, coord.read_size)
            pixels[index] = resize_rgb(region, size, size)
        yield batch, pixels
        del pixels  # not kept alive while the next batch is read
