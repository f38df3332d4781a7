"""A CT label volume as a DICOM Segmentation (SEG, BINARY) that references its source series.

Label value ``i`` (1-based) is segment number ``i`` named ``segment_names[i - 1]``; 0 is background and is never
named. Every segment is AUTOMATIC and carries an AlgorithmIdentificationSequence (model name, version, family
"Artificial Intelligence" from CID 7162, the artifact sha256 and backend as parameters); the instance's Device
Serial Number is the model's sha256.

Segmented property codes: a name that matches a concept of CID 7192 (Anatomical Structure Segmentation Property
Types, from pydicom's copy of the standard: "liver", "spleen", "kidney"...) is category Anatomical Structure with
that SNOMED CT type, a leading "left"/"right" becoming a laterality modifier; any other name is category Tissue
with a local code (scheme ``99CDS``, meaning = the name), declared in the Coding Scheme Identification Sequence.

Empty segments: a label with no voxel is still described (so a reader sees it was looked for) and has no frames.
A volume with no foreground at all is a valid result too: every segment is encoded with empty frames rather than
refused. The helpers :func:`source_header`, :func:`local_code` and :func:`local_scheme` are shared with
:mod:`cds.interop.dicom_sr`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from highdicom.coding_schemes import CodingSchemeIdentificationItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from cds import __version__
from cds.errors import InvalidInputError
from cds.models.backend import ModelRef

MANUFACTURER = "cds"
LOCAL_SCHEME = "99CDS"
LOCAL_SCHEME_ITEM_NAME = "cds local codes (labels named by the model registry)"
TYPE2_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyID",
                  "StudyDate", "StudyTime", "ReferringPhysicianName")
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_SIDES = {"Left": codes.SCT.Left, "Right": codes.SCT.Right}


def source_header(dataset: Dataset) -> Dataset:
    """A copy of a source instance's header (no pixel data) with absent type 2 Patient/Study attributes set empty.

    highdicom copies these attributes by name and fails on an image that omits them; DICOM allows them empty.
    """
    header = Dataset()
    for element in dataset:
        if element.keyword not in _PIXEL_KEYWORDS:
            header.add(element)
    if hasattr(dataset, "file_meta"):
        header.file_meta = dataset.file_meta
    for keyword in TYPE2_KEYWORDS:
        if keyword not in header:
            setattr(header, keyword, "")
    return header


def local_code(label: str) -> Code:
    """A code for ``label`` in the local scheme :data:`LOCAL_SCHEME`: value = slug, meaning = the label."""
    slug = "-".join(re.findall(r"[a-z0-9]+", label.lower())) or "unnamed"
    return Code(slug, LOCAL_SCHEME, label)


TRACKING_NAMESPACE = uuid.UUID("0b5d6f0e-8f61-4c55-9a3a-2f7f5b1c9e42")


def stable_uid(*parts: str) -> str:
    """A UID (``2.25.``, from a hash of ``parts``) that is the same whenever the same parts are given.

    Tracking UIDs come from it, so that the same finding of the same model on the same image keeps its UID across
    re-runs, and a reader's system can match them.
    """
    return f"2.25.{uuid.uuid5(TRACKING_NAMESPACE, '|'.join(parts)).int}"  # a UUID-derived UID (PS3.5 B.2)


def local_scheme() -> CodingSchemeIdentificationItem:
    """The Coding Scheme Identification item that declares :data:`LOCAL_SCHEME`."""
    return CodingSchemeIdentificationItem(designator=LOCAL_SCHEME, name=LOCAL_SCHEME_ITEM_NAME,
                                          responsible_organization=MANUFACTURER)


def algorithm_identification(model: ModelRef) -> hd.AlgorithmIdentificationSequence:
    """Algorithm Identification Sequence naming the model (family Artificial Intelligence, CID 7162)."""
    return hd.AlgorithmIdentificationSequence(
        name=model.name, family=codes.cid7162.ArtificialIntelligence, version=model.version, source=MANUFACTURER,
        parameters={"model_sha256": model.sha256, "backend": model.backend.value})


def segment_property_codes(name: str) -> tuple[Code, Code, Code | None]:
    """(category, type, laterality modifier) for a segment name.

    SNOMED CT anatomy from CID 7192 when the name (less a leading "left"/"right", which becomes the modifier) is
    known there; otherwise category Tissue with a local code and no modifier.
    """
    words = [w.capitalize() for w in re.findall(r"[A-Za-z0-9]+", name)]
    side = _SIDES.get(words[0]) if len(words) > 1 else None
    try:
        anatomy: Code = getattr(codes.cid7192, "".join(words[1:] if side else words))
    except AttributeError:
        return codes.SCT.Tissue, local_code(name), None
    return codes.SCT.AnatomicalStructure, anatomy, side


def _check_names(segment_names: Sequence[str]) -> None:
    if not segment_names:
        raise InvalidInputError("no segment names: label value i needs segment_names[i - 1]", code="no_segments")
    cleaned = [n.strip() for n in segment_names]
    if any(not n for n in cleaned) or len({n.lower() for n in cleaned}) != len(cleaned):
        raise InvalidInputError(f"segment names must be non-empty and unique, got {list(segment_names)}",
                                code="invalid_segment_names")
    if cleaned[0].lower() == "background":
        raise InvalidInputError("label 0 is background and is not named; segment_names[0] names label 1",
                                code="invalid_segment_names")


def _check_sources(sources: Sequence[Dataset], shape: tuple[int, ...]) -> None:
    if len(sources) != shape[0]:
        raise InvalidInputError(f"labels have {shape[0]} slices, {len(sources)} source images were given",
                                code="slice_count_mismatch")
    for index, source in enumerate(sources):
        if not all(k in source for k in ("SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Rows", "Columns")):
            raise InvalidInputError(f"source image {index} lacks its Series/SOP Instance UID, SOP Class UID or size",
                                    code="invalid_header")
    if len({(str(s.get("StudyInstanceUID")), str(s.SeriesInstanceUID)) for s in sources}) != 1:
        raise InvalidInputError("source images come from more than one series", code="mixed_series")
    for index, source in enumerate(sources):
        if (int(source.Rows), int(source.Columns)) != shape[1:]:
            raise InvalidInputError(f"source image {index} is {source.Rows}x{source.Columns}, labels are "
                                    f"{shape[1]}x{shape[2]}", code="shape_mismatch")


def _check(labels: np.ndarray, sources: Sequence[Dataset], segment_names: Sequence[str]) -> None:
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8:
        raise InvalidInputError(f"labels must be a uint8 numpy array, got {getattr(labels, 'dtype', type(labels))}",
                                code="wrong_dtype")
    if labels.ndim != 3:
        raise InvalidInputError(f"labels must be [slices, rows, columns], got shape {labels.shape}",
                                code="wrong_shape")
    _check_names(segment_names)
    _check_sources(sources, labels.shape)
    top = int(labels.max())
    if top > len(segment_names):
        raise InvalidInputError(f"label value {top} found, only {len(segment_names)} segment names given",
                                code="unknown_label")


def build_segmentation(
    labels: np.ndarray,
    sources: Sequence[Dataset],
    segment_names: Sequence[str],
    model: ModelRef,
    *,
    series_number: int = 900,
    series_description: str | None = None,
) -> hd.seg.Segmentation:
    """A BINARY DICOM Segmentation of ``labels`` over the CT series ``sources``.

    Args:
        labels: uint8 [slices, rows, columns]; ``labels[k]`` lies on ``sources[k]`` (same slice order).
        sources: The source CT instances, one per slice, all of one series (pixel data not needed).
        segment_names: ``segment_names[i - 1]`` names label value ``i``; background (0) is not named.
        model: The model that produced the labels.
        series_number: Series Number of the new SEG series.
        series_description: Defaults to ``"AI segmentation: <model> <version>"``.

    Returns:
        The segmentation, in the source study, in a new series; the caller saves it.

    Raises:
        InvalidInputError: ``wrong_dtype``, ``wrong_shape``, ``no_segments``, ``invalid_segment_names``,
            ``slice_count_mismatch``, ``mixed_series``, ``invalid_header``, ``shape_mismatch``, ``unknown_label``, or
            ``invalid_dicom_value`` (a value DICOM refuses, e.g. a model name over 64 characters).
    """
    _check(labels, sources, segment_names)
    algorithm = algorithm_identification(model)
    descriptions, local = [], False
    for number, name in enumerate(segment_names, start=1):
        category, kind, side = segment_property_codes(name.strip())
        local = local or kind.scheme_designator == LOCAL_SCHEME
        description = hd.seg.SegmentDescription(
            segment_number=number, segment_label=name.strip(), segmented_property_category=category,
            segmented_property_type=kind, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm, tracking_id=name.strip(),
            tracking_uid=stable_uid(str(sources[0].get("SeriesInstanceUID", "")), model.key, name.strip()))
        if side is not None:
            description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [
                hd.sr.CodedConcept.from_code(side)]
        descriptions.append(description)
    try:
        return hd.seg.Segmentation(
            source_images=[source_header(s) for s in sources],
            pixel_array=labels,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name=model.name,
            software_versions=__version__,
            device_serial_number=model.sha256[:64],
            content_label="CDS_SEG",
            content_description=f"{model.name} {model.version}"[:64],
            series_description=series_description or f"AI segmentation: {model.name} {model.version}"[:64],
            omit_empty_frames=bool(labels.any()),  # nothing found: keep every (empty) frame, highdicom's fallback
            coding_schemes=[local_scheme()] if local else None,
        )
    except ValueError as exc:
        raise InvalidInputError(f"DICOM refused a value: {exc}", code="invalid_dicom_value") from exc
