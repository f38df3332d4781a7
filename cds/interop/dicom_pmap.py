"""A finding's heatmap as a DICOM Parametric Map, so that viewers (OHIF and others) can overlay it on the source.

The map is resampled from the model's input grid back onto the source image's rows and columns (the model input is
the whole image resized, so this is the exact inverse of that resize, up to interpolation), stored as 16-bit
integers with a Real World Value Mapping to the unitless relevance in [0, 1], in a new series of the source study.
It names the finding (its SNOMED CT code where it has one) and the model, and carries the source's Body Part
Examined, Study Description and Laterality, as the secondary capture does. A projection radiograph has no Frame of
Reference, which the IOD requires: see :func:`_geometry`.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from cds import __version__
from cds.errors import InvalidInputError
from cds.interop.dicom_sc import NOT_FOR_DIAGNOSTIC_USE, file_like_source
from cds.interop.dicom_seg import MANUFACTURER, source_header, stable_uid
from cds.interop.finding_codes import finding_code
from cds.models.backend import ModelRef
from cds.pipelines.imaging.dicom_contract import pixel_spacing
from cds.pipelines.imaging.radiograph import resize

LEVELS = 65535  # stored values 0..LEVELS map to relevance 0..1


def _geometry(source: Dataset) -> Dataset:
    """The source's header with the geometry a Parametric Map needs.

    The Parametric Map IOD requires a Frame of Reference and plane position and orientation; a projection
    radiograph has none. The map then establishes its own: a Frame of Reference UID derived from the source image's
    UID (the same for every map of that image), its origin at the first pixel, rows and columns along x and y, and
    the source's pixel spacing (1 mm where unknown). The map matches the source pixel for pixel and names it as its
    derivation source; these coordinates say nothing about the patient's position.
    """
    header = source_header(source)
    if "FrameOfReferenceUID" not in header or "ImagePositionPatient" not in header:
        spacing = pixel_spacing(header) or (1.0, 1.0)
        header.FrameOfReferenceUID = stable_uid(str(source.SOPInstanceUID), "frame-of-reference")
        header.PositionReferenceIndicator = ""
        header.ImagePositionPatient = [0.0, 0.0, 0.0]
        header.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        header.PixelSpacing = [float(spacing[0]), float(spacing[1])]
        header.SliceThickness = 1.0
    return header


def build_heatmap_pmap(
    heatmap: np.ndarray,
    source: Dataset,
    *,
    finding: str,
    model: ModelRef,
    not_for_diagnostic_use: bool = True,
    series_number: int = 904,
) -> hd.pm.ParametricMap:
    """A Parametric Map of ``heatmap`` (float [H, W] in [0, 1]) on the grid of ``source`` (its header suffices).

    The values are on the pre-read's probability scale: the normalised relevance map times the finding's probability
    (so the map's maximum is that probability), mapped as real-world values 0-1.

    Raises:
        InvalidInputError: ``wrong_shape``, ``invalid_finding``, ``invalid_header`` or ``invalid_dicom_value``.
    """
    if not isinstance(heatmap, np.ndarray) or heatmap.ndim != 2 or min(heatmap.shape) < 1:
        raise InvalidInputError(f"heatmap must be a 2-D array, got {getattr(heatmap, 'shape', type(heatmap))}",
                                code="wrong_shape")
    if not finding.strip():
        raise InvalidInputError("the finding the heatmap explains must be named", code="invalid_finding")
    needed = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Rows", "Columns")
    if not all(k in source for k in needed):
        raise InvalidInputError("the source lacks its UIDs, SOP Class or Rows/Columns", code="invalid_header")
    grid = resize(heatmap, (int(source.Rows), int(source.Columns)))
    values = np.round(np.clip(grid, 0.0, 1.0) * LEVELS).astype(np.uint16)
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="RELEVANCE", lut_explanation=f"{finding.strip()} probability x relevance"[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(0, LEVELS), slope=1.0 / LEVELS, intercept=0.0, quantity_definition=finding_code(finding))
    identity = f"{model.name} {model.version}"
    try:
        pmap = hd.pm.ParametricMap(
            source_images=[_geometry(source)], pixel_array=values, series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=stable_uid(str(source.SOPInstanceUID), model.key, finding, "pmap"), instance_number=1,
            manufacturer=MANUFACTURER, manufacturer_model_name=model.name, software_versions=__version__,
            device_serial_number=model.sha256[:64], contains_recognizable_visual_features=False,
            real_world_value_mappings=[mapping],
            voi_lut_transformations=[hd.VOILUTTransformation(window_center=LEVELS / 2, window_width=LEVELS)],
            content_description=f"{finding.strip()} heatmap"[:64], content_label="HEATMAP",
            image_flavor=hd.pm.ImageFlavorValues.WHOLE_BODY,
            derived_pixel_contrast=hd.pm.DerivedPixelContrastValues.NONE)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"DICOM refused a value: {exc}", code="invalid_dicom_value") from exc
    pmap.SeriesDescription = f"AI heatmap: {finding.strip()} ({identity})"[:64]
    description = f"Relevance of image regions to finding '{finding.strip()}' from model {identity} (sha256 " \
                  f"{model.sha256}, backend {model.backend.value}), resampled from the model input grid; " \
                  "on a fixed probability scale: the normalised map times the finding's probability (0-1)."
    if not_for_diagnostic_use:
        description = f"{NOT_FOR_DIAGNOSTIC_USE}. {description}"
        pmap.ImageComments = NOT_FOR_DIAGNOSTIC_USE
    pmap.DerivationDescription = description[:1024]
    file_like_source(pmap, source)
    return pmap
