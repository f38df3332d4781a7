"""AI results as DICOM Structured Reports: TID 1500 Measurement Reports in a Comprehensive 3D SR document.

Both reports are PRELIMINARY, UNVERIFIED and COMPLETE: an AI pre-read awaiting a reader. The observer context is a
device (TID 1004): its UID is derived from the model's name, version and sha256 (the same model gives the same
device UID), its name is the model name, its model name "<name> <version>" and its serial number the artifact
sha256. Every measurement group carries an Algorithm Identification (TID 4019: model name, version, family
"Artificial Intelligence" from CID 7162) whose parameters record ``model_sha256``, ``input_sha256`` (when known)
and ``backend``, so a reader can trace the output to the exact artifact and input.

* :func:`build_classification_sr`: one measurement group (TID 1501) per finding: the finding's SNOMED CT code
  where it has a checked one, else a local code (scheme ``99CDS``; :mod:`cds.interop.finding_codes`), its
  probability (DCM "Probability", UCUM ``1``), the operating threshold (DCM "Threshold Value", UCUM ``1``) and a
  qualitative evaluation "<finding>: Present / Absent" (SNOMED CT) meaning at or above / below that threshold. A
  finding without a threshold has neither. Each group names the source image(s). The result's warnings follow
  the groups as Comments (DCM 121106).
* :func:`build_segmentation_sr`: one volumetric ROI group (TID 1411) per structure: its volume (SNOMED CT
  "Volume", UCUM ``ml``), the segment's category and type (and laterality as a finding site) and a Referenced
  Segment that points to the segment in the SEG and to the source series.

The image library (TID 1600) is left out: highdicom builds its projection-radiography entries from Patient
Orientation and Imager Pixel Spacing, which many CR images lack; the source images are referenced per group and
in the Current Requested Procedure Evidence Sequence instead.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import highdicom as hd
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import SegmentationStorage

from cds import __version__
from cds.errors import InvalidInputError
from cds.interop.dicom_seg import MANUFACTURER, local_scheme, source_header, stable_uid
from cds.interop.finding_codes import finding_code
from cds.models.backend import ModelRef
from cds.results.classification import ClassificationResult

MILLILITER = Code("ml", "UCUM", "milliliter")
_PROCEDURES: dict[str, Code] = {"CR": codes.cid100.XRUnspecifiedBodyRegion, "DX": codes.cid100.XRUnspecifiedBodyRegion,
                                "CT": codes.cid100.CTUnspecifiedBodyRegion}
CHEST_IMAGING: Code = codes.SCT.ChestImaging  # SCT 413815006, as the DICOM standard's code tables give it
IMAGING_PROCEDURE: Code = codes.cid100.ImagingProcedure
QUALITATIVE_EVALUATIONS = Code("C0034375", "UMLS", "Qualitative Evaluations")  # TID 1500 row 12
IMPRESSION = Code("121073", "DCM", "Impression")


def device_uid(model: ModelRef) -> str:
    """A UID for the model as a device, stable across runs: a 2.25 UUID (v5) of its name, version and sha256."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, f'cds-model:{model.name}:{model.version}:{model.sha256}').int}"


def _observation_context(model: ModelRef) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(model), name=model.name, manufacturer_name=MANUFACTURER,
        model_name=f"{model.name} {model.version}", serial_number=model.sha256)
    return hd.sr.ObservationContext(observer_device_context=hd.sr.ObserverContext(
        observer_type=codes.DCM.Device, observer_identifying_attributes=device))


def _algorithm(model: ModelRef, input_sha256: str | None) -> hd.sr.AlgorithmIdentification:
    parameters = [f"model_sha256={model.sha256}", f"backend={model.backend.value}"]
    if input_sha256:
        parameters.insert(1, f"input_sha256={input_sha256}")
    return hd.sr.AlgorithmIdentification(name=model.name, version=model.version, parameters=parameters,
                                         family=codes.cid7162.ArtificialIntelligence, manufacturer=MANUFACTURER)


@dataclass(frozen=True)
class ReaderSignature:
    """The specialist who verified a report.

    Attributes:
        name: Their name as a DICOM person name (``Wang^Lixin``, or ``王立新``).
        login: Their account (the token's subject).
        organization: The site they read for.
        verdicts: Their verdict on each AI finding, by label: ``accepted`` or ``rejected``.
        impression: What they concluded, in their words.
        previous: The report this one amends (its Predecessor Documents), if any.
    """

    name: str
    login: str
    organization: str
    verdicts: dict[str, str]
    impression: str
    previous: Dataset | None = None


def _document(evidence: Sequence[Dataset], report: hd.sr.MeasurementReport, model: ModelRef, series_number: int,
              description: str, signature: ReaderSignature | None = None) -> hd.sr.Comprehensive3DSR:
    try:
        document = hd.sr.Comprehensive3DSR(
            evidence=evidence, content=report, series_instance_uid=hd.UID(), series_number=series_number,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
            is_final=signature is not None, is_verified=signature is not None,
            verifying_observer_name=signature.name if signature else None,
            verifying_organization=signature.organization if signature else None,
            previous_versions=[signature.previous] if signature and signature.previous is not None else None,
            series_description=description[:64], software_versions=__version__,
            manufacturer_model_name=model.name, coding_schemes=[local_scheme()])
    except ValueError as exc:
        raise InvalidInputError(f"DICOM refused a value: {exc}", code="invalid_dicom_value") from exc
    if signature is not None and not (signature.name + signature.impression + signature.organization).isascii():
        document.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: a Chinese name or impression
    return document


def _sources(sources: Dataset | Sequence[Dataset]) -> list[Dataset]:
    items = [sources] if isinstance(sources, Dataset) else list(sources)
    if not items:
        raise InvalidInputError("no source image: the report must reference what was read", code="no_sources")
    for item in items:
        if not all(k in item for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")):
            raise InvalidInputError("a source image lacks its Study, Series or SOP Instance UID or SOP Class UID",
                                    code="invalid_header")
    if len({str(i.StudyInstanceUID) for i in items}) != 1:
        raise InvalidInputError("source images come from more than one study", code="mixed_studies")
    return [source_header(i) for i in items]


def build_classification_sr(
    result: ClassificationResult,
    sources: Dataset | Sequence[Dataset],
    *,
    series_number: int = 901,
    series_description: str | None = None,
    signature: ReaderSignature | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report of a classification pre-read, in the source study.

    Args:
        result: The findings and the model identity.
        sources: The DICOM image(s) the result was computed from (pixel data not needed), all of one study.
        series_number: Series Number of the new SR series.
        series_description: Defaults to ``"AI pre-read: <model> <version>"``.
        signature: The specialist who verified it: the report is then FINAL and VERIFIED with them as Verifying
            Observer, the person observer beside the model's device, and their verdict on each finding (Present /
            Absent, under Qualitative Evaluations) and impression (DCM 121073) follow the AI's measurement groups,
            which keep their algorithm identification, so the AI's findings stay told apart from the reader's.

    Returns:
        The SR document (a pydicom Dataset); the caller saves it.

    Raises:
        InvalidInputError: ``no_findings``, ``no_sources``, ``invalid_header``, ``mixed_studies`` or
            ``invalid_dicom_value``.
    """
    if not result.findings:
        raise InvalidInputError("the result has no finding to report", code="no_findings")
    headers = _sources(sources)
    algorithm = _algorithm(result.model, result.input_sha256)
    images = [hd.sr.SourceImageForMeasurementGroup.from_source_image(h) for h in headers]
    groups = []
    sop_uids = sorted(str(h.SOPInstanceUID) for h in headers)
    for finding in result.findings:
        code = finding_code(finding.label)
        measurements = [hd.sr.Measurement(name=codes.DCM.Probability, value=finding.probability,
                                          unit=codes.UCUM.NoUnits)]
        evaluations = []
        if finding.threshold is not None:
            measurements.append(hd.sr.Measurement(name=codes.DCM.ThresholdValue, value=finding.threshold,
                                                  unit=codes.UCUM.NoUnits))
            evaluations.append(hd.sr.QualitativeEvaluation(
                name=code, value=codes.SCT.Present if finding.positive else codes.SCT.Absent))
        groups.append(hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=hd.sr.TrackingIdentifier(uid=stable_uid(*sop_uids, result.model.key, finding.label),
                                                         identifier=finding.label),
            finding_type=code, algorithm_id=algorithm, measurements=measurements,
            qualitative_evaluations=evaluations or None, source_images=images))
    procedure = _procedure(headers[0])
    context = (_signed_context(result.model, signature) if signature is not None
               else _observation_context(result.model))  # fmt: skip
    report = hd.sr.MeasurementReport(observation_context=context, procedure_reported=procedure,
                                     imaging_measurements=groups)
    for warning in result.warnings:  # caveats (out of distribution, no localisation, ...) travel with the findings
        report[0].ContentSequence.append(hd.sr.TextContentItem(
            name=codes.DCM.Comment, value=warning[:1024], relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    if signature is not None:
        report[0].ContentSequence.append(_reader_evaluations(result, signature))
    model = result.model
    description = series_description or (f"Signed report: {model.name} {model.version}" if signature else
                                         f"AI pre-read: {model.name} {model.version}")  # fmt: skip
    return _document(headers, report, model, series_number + (1 if signature else 0), description, signature)


def _signed_context(model: ModelRef, signature: ReaderSignature) -> hd.sr.ObservationContext:
    """The reader (TID 1003) and the model (TID 1004) as observers of a verified report."""
    person = hd.sr.PersonObserverIdentifyingAttributes(name=signature.name, login_name=signature.login,
                                                       organization_name=signature.organization)  # fmt: skip
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=device_uid(model), name=model.name, manufacturer_name=MANUFACTURER,
        model_name=f"{model.name} {model.version}", serial_number=model.sha256)
    return hd.sr.ObservationContext(
        observer_person_context=hd.sr.ObserverContext(observer_type=codes.DCM.Person,
                                                      observer_identifying_attributes=person),
        observer_device_context=hd.sr.ObserverContext(observer_type=codes.DCM.Device,
                                                      observer_identifying_attributes=device))  # fmt: skip


def _reader_evaluations(result: ClassificationResult, signature: ReaderSignature) -> hd.sr.ContainerContentItem:
    """TID 1500's Qualitative Evaluations: the reader's Present / Absent per finding, and their impression."""
    container = hd.sr.ContainerContentItem(name=QUALITATIVE_EVALUATIONS,
                                           relationship_type=hd.sr.RelationshipTypeValues.CONTAINS)  # fmt: skip
    items: list[hd.sr.ContentItem] = []
    for finding in result.findings:
        verdict = signature.verdicts.get(finding.label)
        if verdict is None:
            continue
        present = finding.positive if verdict == "accepted" else not finding.positive
        items.append(hd.sr.CodeContentItem(name=finding_code(finding.label),
                                           value=codes.SCT.Present if present else codes.SCT.Absent,
                                           relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))  # fmt: skip
    items.append(hd.sr.TextContentItem(name=IMPRESSION, value=signature.impression[:1024],
                                       relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))  # fmt: skip
    container.ContentSequence = hd.sr.ContentSequence(items, is_root=False)
    return container


def _procedure(header: Dataset) -> hd.sr.CodedConcept | Code:
    """The procedure reported, from the source's header.

    The study's own Procedure Code when it carries one (the code the order was placed under), else chest imaging
    for a chest radiograph, else the modality's unspecified-region code.
    """
    for keyword in ("ProcedureCodeSequence", "RequestedProcedureCodeSequence"):
        items = header.get(keyword) or []
        if items and all(k in items[0] for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning")):
            return _concept(items[0])
    modality = str(header.get("Modality", "") or "").upper()
    if modality in ("CR", "DX") and str(header.get("BodyPartExamined", "") or "").upper() == "CHEST":
        return CHEST_IMAGING
    return _PROCEDURES.get(modality, IMAGING_PROCEDURE)


def _concept(item: Dataset) -> hd.sr.CodedConcept:
    """A plain coded concept from a code sequence item, leaving out any nested modifier."""
    code = hd.sr.CodedConcept.from_dataset(item)
    return hd.sr.CodedConcept(code.value, code.scheme_designator, code.meaning, code.scheme_version)


def _segments(segmentation: Dataset) -> dict[str, Dataset]:
    if str(segmentation.get("SOPClassUID", "")) != SegmentationStorage:
        raise InvalidInputError(f"not a DICOM Segmentation (SOP Class {segmentation.get('SOPClassUID')})",
                                code="not_segmentation")
    series = segmentation.get("ReferencedSeriesSequence") or []
    if len(series) != 1:
        raise InvalidInputError(f"the SEG references {len(series)} source series, one is needed",
                                code="invalid_header")
    return {str(s.SegmentLabel): s for s in segmentation.SegmentSequence}


def build_segmentation_sr(
    segmentation: Dataset,
    volumes: Sequence[tuple[str, float]],
    model: ModelRef,
    *,
    input_sha256: str | None = None,
    series_number: int = 902,
    series_description: str | None = None,
) -> hd.sr.Comprehensive3DSR:
    """A TID 1500 Measurement Report of structure volumes, each a TID 1411 group referencing its SEG segment.

    Args:
        segmentation: The DICOM Segmentation the volumes were measured on (e.g. from
            :func:`cds.interop.dicom_seg.build_segmentation`).
        volumes: ``(structure name, volume in ml)``; each name is a Segment Label of ``segmentation``.
            An absent structure (volume 0, no frames in the SEG) is reported like any other.
        model: The model that produced the segmentation.
        input_sha256: The hash of the model input, recorded with the algorithm when given.
        series_number: Series Number of the new SR series.
        series_description: Defaults to ``"AI volumes: <model> <version>"``.

    Returns:
        The SR document, in the segmentation's study; the caller saves it.

    Raises:
        InvalidInputError: ``not_segmentation``, ``invalid_header``, ``no_measurements``, ``unknown_structure``,
            ``duplicate_structure``, ``invalid_volume`` or ``invalid_dicom_value``.
    """
    segments = _segments(segmentation)
    if not volumes:
        raise InvalidInputError("no structure volume to report", code="no_measurements")
    volumes = [(name.strip(), volume) for name, volume in volumes]
    names = [name for name, _ in volumes]
    if len(set(names)) != len(names):
        raise InvalidInputError(f"a structure is listed twice: {names}", code="duplicate_structure")
    source_series = hd.sr.SourceSeriesForSegmentation(
        str(segmentation.ReferencedSeriesSequence[0].SeriesInstanceUID))
    algorithm = _algorithm(model, input_sha256)
    groups = []
    for name, volume in volumes:
        if name not in segments:
            raise InvalidInputError(f"structure {name!r} is not a segment of the SEG; segments: {sorted(segments)}",
                                    code="unknown_structure")
        if not math.isfinite(volume) or volume < 0:
            raise InvalidInputError(f"volume of {name!r} must be finite and >= 0 ml, got {volume}",
                                    code="invalid_volume")
        segment = segments[name]
        reference = hd.sr.ReferencedSegment(
            sop_class_uid=str(segmentation.SOPClassUID), sop_instance_uid=str(segmentation.SOPInstanceUID),
            segment_number=int(segment.SegmentNumber), source_series=source_series)
        tracking = hd.sr.TrackingIdentifier(uid=str(segment.get("TrackingUID") or hd.UID()), identifier=name)
        kind = segment.SegmentedPropertyTypeCodeSequence[0]
        sides = kind.get("SegmentedPropertyTypeModifierCodeSequence") or []
        sites = [hd.sr.FindingSite(anatomic_location=_concept(kind), laterality=_concept(sides[0]))] if sides else None
        groups.append(hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking, referenced_segment=reference,
            finding_category=_concept(segment.SegmentedPropertyCategoryCodeSequence[0]),
            finding_type=_concept(kind), finding_sites=sites, algorithm_id=algorithm,
            measurements=[hd.sr.Measurement(name=codes.SCT.Volume, value=float(volume), unit=MILLILITER)]))
    report = hd.sr.MeasurementReport(observation_context=_observation_context(model),
                                     procedure_reported=codes.cid100.CTUnspecifiedBodyRegion,
                                     imaging_measurements=groups)
    return _document([segmentation], report, model, series_number,
                     series_description or f"AI volumes: {model.name} {model.version}")
