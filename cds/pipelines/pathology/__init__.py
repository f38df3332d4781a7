"""Digital pathology: slides read lazily, tissue found at low magnification, patches tiled in µm/px, stains normalised.

* :mod:`~cds.pipelines.pathology.slide`: the :class:`Slide` interface and :func:`open_slide` (TIFF, OpenSlide
  vendor formats, DICOM WSI, PNG/JPEG tiles), with size caps checked from headers before decoding.
* :mod:`~cds.pipelines.pathology.tissue`: Otsu on HSV saturation of a thumbnail → :class:`TissueMask`.
* :mod:`~cds.pipelines.pathology.tiling`: the patch grid at a target mpp and batched patch reads.
* :mod:`~cds.pipelines.pathology.stain`: Macenko and Reinhard stain normalisation.
* :mod:`~cds.pipelines.pathology.preprocess`: the patch preprocessing shared by training and serving
  (:class:`TilePreprocessor`; what it does is :class:`cds.models.tile_preprocessing.TilePreprocessing`, shipped as
  ``preprocessing.json`` beside a model).
* :mod:`~cds.pipelines.pathology.pipeline`: :class:`SlidePipeline`, slide → tumour probabilities → slide answer,
  decoding overlapped with inference through :class:`~cds.pipelines.pathology.stream.BoundedPrefetch`.
* :mod:`~cds.pipelines.pathology.aggregate`, :mod:`~cds.pipelines.pathology.heatmap`: slide-level aggregation and
  the heatmap. The typed result (:class:`cds.results.slide.SlideResult`) and its writers
  (:mod:`cds.interop.outputs.slide`) live with the other results and writers.
"""

from cds.pipelines.pathology.aggregate import aggregate
from cds.pipelines.pathology.pipeline import SlideOptions, SlidePipeline
from cds.pipelines.pathology.preprocess import TilePreprocessor, fit_stain_target, stain_normalizer
from cds.pipelines.pathology.slide import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_PIXELS,
    Slide,
    SlideLevel,
    SlideReader,
    open_slide,
)
from cds.pipelines.pathology.stain import MacenkoNormalizer, ReinhardNormalizer, StainNormalizer
from cds.pipelines.pathology.stream import BoundedPrefetch
from cds.pipelines.pathology.tiling import TileCoord, TileGrid, TileSpec, iter_tiles, plan_grid, read_tiles
from cds.pipelines.pathology.tissue import TissueMask, TissueOptions, detect_tissue, tissue_mask

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "BoundedPrefetch",
    "MacenkoNormalizer",
    "ReinhardNormalizer",
    "Slide",
    "SlideLevel",
    "SlideOptions",
    "SlidePipeline",
    "SlideReader",
    "StainNormalizer",
    "TileCoord",
    "TileGrid",
    "TilePreprocessor",
    "TileSpec",
    "TissueMask",
    "TissueOptions",
    "aggregate",
    "detect_tissue",
    "fit_stain_target",
    "iter_tiles",
    "open_slide",
    "plan_grid",
    "read_tiles",
    "stain_normalizer",
    "tissue_mask",
]
