"""Digital pathology: slides read lazily, tissue found at low magnification, patches tiled in µm/px, stains normalised.

* :mod:`~cds.pipelines.pathology.slide`: the :class:`Slide` interface and :func:`open_slide` (TIFF, OpenSlide
  vendor formats, DICOM WSI, PNG/JPEG tiles), with size caps checked from headers before decoding.
* :mod:`~cds.pipelines.pathology.tissue`: Otsu on HSV saturation of a thumbnail → :class:`TissueMask`.
* :mod:`~cds.pipelines.pathology.tiling`: the patch grid at a target mpp and batched patch reads.
* :mod:`~cds.pipelines.pathology.stain`: Macenko and Reinhard stain normalisation.
* :mod:`~cds.pipelines.pathology.preprocess`: the patch preprocessing shared by training and serving
  (:class:`TilePreprocessing`, shipped as ``preprocessing.json`` beside a model; :class:`TilePreprocessor`).
* :mod:`~cds.pipelines.pathology.pipeline`: :class:`SlidePipeline`, slide → tumour probabilities → slide answer,
  decoding overlapped with inference through :class:`~cds.pipelines.pathology.stream.BoundedPrefetch`.
* :mod:`~cds.pipelines.pathology.aggregate`, :mod:`~cds.pipelines.pathology.heatmap`: slide-level aggregation and
  the heatmap; :mod:`~cds.pipelines.pathology.result`: the typed :class:`SlideResult`;
  :mod:`~cds.pipelines.pathology.outputs`: JSON, FHIR DiagnosticReport and PNG.
"""

from cds.pipelines.pathology.aggregate import ProbabilityGrid, SlideScore, aggregate
from cds.pipelines.pathology.pipeline import SlideOptions, SlidePipeline
from cds.pipelines.pathology.preprocess import (
    PREPROCESSING_FILE,
    StainMethod,
    StainTarget,
    TilePreprocessing,
    TilePreprocessor,
    load_preprocessing,
)
from cds.pipelines.pathology.result import SlideAnalysis, SlideResult, SlideSource, SlideStatus, TileSummary
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
    "PREPROCESSING_FILE",
    "BoundedPrefetch",
    "MacenkoNormalizer",
    "ProbabilityGrid",
    "ReinhardNormalizer",
    "Slide",
    "SlideAnalysis",
    "SlideLevel",
    "SlideOptions",
    "SlidePipeline",
    "SlideReader",
    "SlideResult",
    "SlideScore",
    "SlideSource",
    "SlideStatus",
    "StainMethod",
    "StainNormalizer",
    "StainTarget",
    "TileCoord",
    "TileGrid",
    "TilePreprocessing",
    "TilePreprocessor",
    "TileSpec",
    "TileSummary",
    "TissueMask",
    "TissueOptions",
    "aggregate",
    "detect_tissue",
    "iter_tiles",
    "load_preprocessing",
    "open_slide",
    "plan_grid",
    "read_tiles",
    "tissue_mask",
]
