"""A single PNG or JPEG tile as a one-level slide.

These formats cannot be read a region at a time, so the image is decoded whole, once, at open: its size is checked
against a (small) cap from the header first, and a truncated file is refused there rather than on a later read.
TIFF tiles go through :class:`~cds.pipelines.pathology.tiff_slide.TiffSlide`, which reads them lazily.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from cds.pipelines.pathology.slide import Slide, SlideLevel, check_pixels, refuse

_RGB_MODES = ("RGB", "RGBA")


class ImageTile(Slide):
    """One decoded RGB image with a single level and no known resolution.

    Args:
        path: A PNG or JPEG file (any format Pillow opens).
        max_pixels: Cap on the image's pixels, checked from the header before decoding.
        mpp: Microns per pixel when the caller knows it (image files rarely say).

    Raises:
        InvalidInputError: ``not_a_slide``, ``slide_too_large``, ``not_rgb`` or ``truncated_file``.
    """

    def __init__(self, path: str | Path, *, max_pixels: int, mpp: float | None = None) -> None:
        from PIL import Image, UnidentifiedImageError

        path = Path(path)
        self.source = path.name
        self._mpp = mpp
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise refuse(self.source, "slide_too_large", f"the header declares too many pixels ({exc})") from exc
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise refuse(self.source, "not_a_slide", f"not an image Pillow reads ({exc})") from exc
        with image:
            width, height = image.size
            check_pixels(self.source, width, height, max_pixels)
            if image.mode not in _RGB_MODES:
                raise refuse(self.source, "not_rgb", f"expected an RGB image, got mode {image.mode!r}")
            try:
                image.load()
            except (OSError, SyntaxError, ValueError, EOFError) as exc:
                raise refuse(self.source, "truncated_file", f"the image data end early or are damaged ({exc})"
                             ) from exc
            self._pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        self._levels = (SlideLevel(width, height, 1.0),)

    @property
    def single_image(self) -> bool:
        """A tile is one image, decoded whole."""
        return True

    @property
    def levels(self) -> tuple[SlideLevel, ...]:
        """The single level."""
        return self._levels

    @property
    def mpp(self) -> float | None:
        """Microns per pixel as given at open (None by default)."""
        return self._mpp

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        return self._pixels[y:y + height, x:x + width].copy()

    def close(self) -> None:
        """Drop the decoded pixels."""
        self._pixels = np.zeros((0, 0, 3), dtype=np.uint8)
