"""Vendor slide formats (SVS, NDPI, MRXS, SCN, ...) through OpenSlide, where it is installed.

OpenSlide is optional: ``openslide-python`` with the ``openslide-bin`` wheel (which ships the C library). Without
them this reader raises :class:`~cds.errors.MissingDependencyError` and says what to install. OpenSlide places
regions in level-0 coordinates and returns RGBA; this adapter takes level coordinates like every :class:`Slide` and
composites transparent pixels (outside the scanned area) onto white.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import MissingDependencyError
from cds.pipelines.pathology.slide import Slide, SlideLevel, check_pixels, refuse


def _openslide() -> Any:
    try:
        import openslide
    except (ImportError, OSError) as exc:
        raise MissingDependencyError("reading vendor slide formats needs OpenSlide: pip install openslide-python "
                                     f"openslide-bin ({exc})") from exc
    return openslide


class OpenSlideSlide(Slide):
    """A slide opened by OpenSlide.

    Args:
        path: The slide file (for MRXS, the index file beside its data folder).
        max_pixels: Cap on level-0 pixels, checked from the header before decoding.

    Raises:
        MissingDependencyError: OpenSlide is not installed.
        InvalidInputError: ``not_a_slide`` (a format OpenSlide does not know), ``corrupt_file`` or
            ``slide_too_large``.
    """

    def __init__(self, path: str | Path, *, max_pixels: int) -> None:
        openslide = _openslide()
        path = Path(path)
        self.source = path.name
        try:
            self._slide = openslide.OpenSlide(str(path))
        except openslide.OpenSlideUnsupportedFormatError as exc:
            raise refuse(self.source, "not_a_slide", "not a slide format OpenSlide reads") from exc
        except (openslide.OpenSlideError, OSError, ValueError) as exc:
            raise refuse(self.source, "corrupt_file", f"OpenSlide cannot read it ({exc})") from exc
        try:
            width, height = self._slide.dimensions
            check_pixels(self.source, int(width), int(height), max_pixels)
        except BaseException:
            self._slide.close()
            raise
        self._levels = tuple(SlideLevel(int(w), int(h), float(d)) for (w, h), d in
                             zip(self._slide.level_dimensions, self._slide.level_downsamples, strict=True))

    @property
    def levels(self) -> tuple[SlideLevel, ...]:
        """Levels as OpenSlide reports them."""
        return self._levels

    @property
    def mpp(self) -> float | None:
        """``openslide.mpp-x`` (microns per pixel at level 0), None when the file does not give it."""
        value = self._slide.properties.get("openslide.mpp-x")
        try:
            return float(value) if value else None
        except ValueError:
            return None

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        downsample = self._levels[level].downsample
        location = (round(x * downsample), round(y * downsample))
        try:
            rgba = np.asarray(self._slide.read_region(location, level, (width, height)))
        except Exception as exc:  # noqa: BLE001 - OpenSlide raises its own errors for damaged tiles
            raise refuse(self.source, "tile_decode_failed", f"OpenSlide failed reading a region ({exc})") from exc
        alpha = rgba[..., 3:4].astype(np.float32) / 255.0
        rgb = rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        composited: np.ndarray = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
        return composited

    def close(self) -> None:
        """Close the OpenSlide handle."""
        self._slide.close()
