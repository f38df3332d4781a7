"""Digital pathology: slides read lazily, tissue found at low magnification, patches tiled in µm/px, stains normalised.

* :mod:`~cds.pipelines.pathology.slide`: the :class:`Slide` interface and :func:`open_slide` (TIFF, OpenSlide
  vendor formats, DICOM WSI, PNG/JPEG tiles), with size caps checked from headers before decoding.
* :mod:`~cds.pipelines.pathology.tissue`: Otsu on HSV saturation of a thumbnail → :class:`TissueMask`.
* :mod:`~cds.pipelines.pathology.tiling`: the patch grid at a target mpp and batched patch reads.
* :mod:`~cds.pipelines.pathology.stain`: Macenko and Reinhard stain normalisation.
"""

from cds.pipelines.pathology.slide import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_PIXELS,
    Slide,
    SlideLevel,
    SlideReader,
    open_slide,
)
from cds.pipelines.pathology.stain import MacenkoNormalizer, ReinhardNormalizer, StainNormalizer
from cds.pipelines.pathology.tiling import TileCoord, TileGrid, TileSpec, iter_tiles, plan_grid, read_tiles
from cds.pipelines.pathology.tissue import TissueMask, TissueOptions, detect_tissue, tissue_mask

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "MacenkoNormalizer",
    "ReinhardNormalizer",
    "Slide",
    "SlideLevel",
    "SlideReader",
    "StainNormalizer",
    "TileCoord",
    "TileGrid",
    "TileSpec",
    "TissueMask",
    "TissueOptions",
    "detect_tissue",
    "iter_tiles",
    "open_slide",
    "plan_grid",
    "read_tiles",
    "tissue_mask",
]
