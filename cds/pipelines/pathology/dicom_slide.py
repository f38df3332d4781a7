"""DICOM whole-slide images (VL Whole Slide Microscopy Image Storage) through wsidicom.

A slide is a folder of instances (one per pyramid level, plus label and overview images) or a single instance file.
wsidicom reads frames (tiles) on demand, so regions are decoded lazily. wsidicom numbers levels by their scale
(level ``n`` is a downsample of ``2**n``) and may skip numbers; this adapter numbers the levels it has 0, 1, 2, ...
like every :class:`Slide`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import MissingDependencyError
from cds.pipelines.pathology.slide import Slide, SlideLevel, as_rgb, check_pixels, refuse


def _wsidicom() -> Any:
    try:
        import wsidicom  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError(f"reading DICOM whole-slide images needs wsidicom: pip install wsidicom ({exc})"
                                     ) from exc
    return wsidicom


class DicomSlide(Slide):
    """A DICOM WSI opened by wsidicom.

    Args:
        path: A folder of DICOM WSI instances, or one instance file.
        max_pixels: Cap on level-0 pixels, checked from the header before decoding.

    Raises:
        MissingDependencyError: wsidicom is not installed.
        InvalidInputError: ``not_a_slide`` (no WSI pyramid among the files), ``corrupt_file``, ``not_rgb`` or
            ``slide_too_large``.
    """

    def __init__(self, path: str | Path, *, max_pixels: int) -> None:
        wsidicom = _wsidicom()
        from wsidicom.errors import (  # type: ignore[import-untyped]
            WsiDicomError,
            WsiDicomFileError,
            WsiDicomNotFoundError,
        )

        path = Path(path)
        self.source = path.name
        try:
            self._wsi = wsidicom.WsiDicom.open(path)
        except WsiDicomNotFoundError as exc:
            raise refuse(self.source, "not_a_slide", "no DICOM whole-slide image pyramid found") from exc
        except (WsiDicomError, WsiDicomFileError, OSError, ValueError, KeyError, AttributeError) as exc:
            raise refuse(self.source, "corrupt_file", f"unreadable DICOM WSI ({type(exc).__name__}: {exc})") from exc
        try:
            self._levels, self._indices, self._mpp = self._inspect(max_pixels)
        except BaseException:
            self._wsi.close()
            raise

    def _inspect(self, max_pixels: int) -> tuple[tuple[SlideLevel, ...], tuple[int, ...], float | None]:
        from wsidicom.errors import WsiDicomNoResolutionError, WsiDicomNotFoundError

        try:
            pyramid = self._wsi.pyramid
        except WsiDicomNotFoundError as exc:
            raise refuse(self.source, "not_a_slide", "no DICOM whole-slide image pyramid found") from exc
        levels = list(pyramid.levels)
        if not levels:
            raise refuse(self.source, "not_a_slide", "the DICOM files hold no pyramid level")
        base = levels[0]
        check_pixels(self.source, int(base.size.width), int(base.size.height), max_pixels)
        image_data = base.default_instance.image_data
        if int(image_data.samples_per_pixel) != 3 or int(image_data.bits) != 8:
            raise refuse(self.source, "not_rgb", f"expected 8-bit RGB, got {image_data.samples_per_pixel} sample(s) "
                         f"of {image_data.bits} bits ({image_data.photometric_interpretation})")
        width0 = float(base.size.width)
        slide_levels = tuple(SlideLevel(int(level.size.width), int(level.size.height), width0 / level.size.width)
                             for level in levels)
        try:
            mpp: float | None = float(base.mpp.width)
        except WsiDicomNoResolutionError:
            mpp = None
        return slide_levels, tuple(int(level.level) for level in levels), mpp

    @property
    def levels(self) -> tuple[SlideLevel, ...]:
        """The pyramid's levels, numbered from 0 without gaps."""
        return self._levels

    @property
    def mpp(self) -> float | None:
        """Microns per pixel at level 0, from the Pixel Spacing of the base level (None when absent)."""
        return self._mpp

    def _read(self, level: int, x: int, y: int, width: int, height: int) -> np.ndarray:
        try:
            region = self._wsi.read_region((x, y), self._indices[level], (width, height), as_array=True)
        except Exception as exc:  # noqa: BLE001 - decoders and wsidicom raise many kinds for a damaged frame
            raise refuse(self.source, "tile_decode_failed", f"wsidicom failed reading a region ({exc})") from exc
        return as_rgb(np.asarray(region), self.source)

    def close(self) -> None:
        """Close the DICOM files."""
        self._wsi.close()
