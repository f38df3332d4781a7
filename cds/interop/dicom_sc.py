"""An AI overlay (RGB: a heatmap or segmentation blended on the image) as a DICOM Secondary Capture in the source study.

The SC image joins the source study (same Study Instance UID, Patient and Study modules copied from the source) in
a new series. It names the finding and the model in Series Description and Derivation Description, points back to
the source image in Source Image Sequence, and carries the "not for diagnostic use" caveat in Image Comments when
asked. No Pixel Spacing is written: the overlay is at the model's input size, not the detector's, so a calibrated
spacing would be a claim the pixels do not support.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cds import __version__
from cds.errors import InvalidInputError
from cds.interop.dicom_seg import MANUFACTURER
from cds.models.backend import ModelRef

NOT_FOR_DIAGNOSTIC_USE = "NOT FOR DIAGNOSTIC USE: AI overlay for review support only"
FRONTAL_CHEST = ("L", "F")  # conventional display: patient's left towards the image's right, feet down
_ORIENTATION_LETTERS = {v.value for v in hd.PatientOrientationValuesBiped}


def _orientation(source: Dataset, given: tuple[str, str] | None) -> tuple[str, str]:
    if given is not None:
        return given
    values = [str(v) for v in (source.get("PatientOrientation") or [])]
    if len(values) == 2 and all(v in _ORIENTATION_LETTERS for v in values):
        return values[0], values[1]
    return FRONTAL_CHEST


FILED_BY = ("BodyPartExamined", "StudyDescription", "Laterality")


def build_overlay_sc(
    overlay: np.ndarray,
    source: Dataset,
    *,
    finding: str,
    model: ModelRef,
    not_for_diagnostic_use: bool = True,
    series_number: int = 903,
    patient_orientation: tuple[str, str] | None = None,
    scale: str | None = None,
) -> hd.sc.SCImage:
    """A Secondary Capture of an RGB overlay, in the source image's study, in a new series.

    Args:
        overlay: uint8 [rows, columns, 3] RGB, e.g. from :func:`cds.interop.outputs.radiograph.overlay`.
        source: The image the overlay was computed from (pixel data not needed).
        finding: The finding the heatmap explains.
        model: The model whose output the heatmap explains.
        not_for_diagnostic_use: Write :data:`NOT_FOR_DIAGNOSTIC_USE` to Image Comments and Derivation Description.
        series_number: Series Number of the new series.
        patient_orientation: Row and column directions; defaults to the source's Patient Orientation when it has
            two single-letter values, else ``("L", "F")`` (a frontal chest radiograph as conventionally displayed).
        scale: What the overlay's colours mean, added to Derivation Description (e.g. the heatmap's scale).

    Returns:
        The SC image (a pydicom Dataset); the caller saves it.

    Raises:
        InvalidInputError: ``wrong_dtype``, ``wrong_shape``, ``invalid_finding``, ``invalid_header`` or
            ``invalid_dicom_value``.
    """
    if not isinstance(overlay, np.ndarray) or overlay.dtype != np.uint8:
        raise InvalidInputError(f"overlay must be a uint8 numpy array, got {getattr(overlay, 'dtype', type(overlay))}",
                                code="wrong_dtype")
    if overlay.ndim != 3 or overlay.shape[2] != 3 or min(overlay.shape[:2]) < 1:
        raise InvalidInputError(f"overlay must be RGB [rows, columns, 3], got shape {overlay.shape}",
                                code="wrong_shape")
    if not finding.strip():
        raise InvalidInputError("the finding the heatmap explains must be named", code="invalid_finding")
    if not all(k in source for k in ("StudyInstanceUID", "SOPInstanceUID", "SOPClassUID")):
        raise InvalidInputError("the source lacks its Study or SOP Instance UID or SOP Class UID",
                                code="invalid_header")
    identity = f"{model.name} {model.version}"
    try:
        image = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source, pixel_array=np.ascontiguousarray(overlay), photometric_interpretation="RGB",
            bits_allocated=8, coordinate_system=hd.CoordinateSystemNames.PATIENT, series_instance_uid=hd.UID(),
            series_number=series_number, sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER,
            patient_orientation=_orientation(source, patient_orientation),
            transfer_syntax_uid=ExplicitVRLittleEndian,
            series_description=f"AI overlay: {finding.strip()} ({identity})"[:64],
            manufacturer_model_name=model.name, software_versions=__version__)
    except ValueError as exc:
        raise InvalidInputError(f"DICOM refused a value: {exc}", code="invalid_dicom_value") from exc
    derivation = (f"Heatmap of finding '{finding.strip()}' from model {identity} (sha256 {model.sha256}, backend "
                  f"{model.backend.value}) blended on the source image, resized to the model input.")
    if scale:
        derivation = f"{derivation} {scale}"
    if not_for_diagnostic_use:
        derivation = f"{NOT_FOR_DIAGNOSTIC_USE}. {derivation}"
        image.ImageComments = NOT_FOR_DIAGNOSTIC_USE
    image.DerivationDescription = derivation[:1024]
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    image.SourceImageSequence = [reference]
    image.BurnedInAnnotation = "NO"
    file_like_source(image, source)
    return image


def file_like_source(output: Dataset, source: Dataset) -> None:
    """Copy onto ``output`` what hanging protocols sort by, as the source has them (:data:`FILED_BY`)."""
    for keyword in FILED_BY:
        value = source.get(keyword)
        if value:
            setattr(output, keyword, value)
