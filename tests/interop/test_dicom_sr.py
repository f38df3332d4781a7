import copy
import math
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage

from cds import __version__
from cds.errors import InvalidInputError
from cds.interop.dicom_seg import build_segmentation
from cds.interop.dicom_sr import build_classification_sr, build_segmentation_sr, device_uid
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from cds.results.classification import ClassificationResult, Finding
from training.data.dicom_files import write_ct_series, write_radiograph

XR_MODEL = ModelRef(name="chest-xray-demo", version="1.0.0", sha256="ab" * 32, backend=BackendKind.ONNXRUNTIME)
CT_MODEL = ModelRef(name="ct-organs", version="2.1.0", sha256="ef" * 32, backend=BackendKind.TORCH)
RESULT = ClassificationResult(
    model=XR_MODEL,
    input_sha256="cd" * 32,
    findings=(
        Finding(label="Effusion", probability=0.91, threshold=0.4, positive=True),
        Finding(label="Nodule", probability=0.123456789012345, threshold=0.3, positive=False),
        Finding(label="Hernia", probability=0.2, threshold=None, positive=False),
    ),
    intended_use="demo",
    warnings=("not for diagnostic use", "out_of_distribution: the pixels do not look like a chest radiograph"),
    inference_ms=12.0,
)


def _radiograph(tmp_path: Path, name: str = "xr.dcm", **kwargs) -> pydicom.Dataset:
    pixels = np.random.default_rng(0).random((24, 20))
    return pydicom.dcmread(write_radiograph(tmp_path / name, pixels, **kwargs))


def _save_and_read(document: pydicom.Dataset, path: Path) -> hd.sr.Comprehensive3DSR:
    document.save_as(path)
    return hd.sr.srread(path)


def _text(group: hd.sr.MeasurementsAndQualitativeEvaluations, concept) -> list[str]:
    return [item.TextValue for item in hd.sr.utils.find_content_items(group[0], name=concept)]


def test_classification_sr_round_trips_findings_and_references(tmp_path: Path) -> None:
    source = _radiograph(tmp_path)
    sr = _save_and_read(build_classification_sr(RESULT, source), tmp_path / "sr.dcm")
    assert sr.SOPClassUID == Comprehensive3DSRStorage and sr.Modality == "SR"
    assert sr.StudyInstanceUID == source.StudyInstanceUID and sr.PatientID == source.PatientID
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID
    assert (sr.PreliminaryFlag, sr.VerificationFlag, sr.CompletionFlag) == ("PRELIMINARY", "UNVERIFIED", "COMPLETE")
    assert (sr.Manufacturer, sr.SoftwareVersions) == ("cds", __version__)
    assert sr.get_evidence() == [(source.StudyInstanceUID, source.SeriesInstanceUID, source.SOPInstanceUID,
                                  source.SOPClassUID)]
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    procedure = hd.sr.utils.find_content_items(sr, name=codes.DCM.ProcedureReported)[0]
    assert procedure.ConceptCodeSequence[0].CodeValue == "413815006"  # SCT chest imaging: the source is a chest film

    comments = hd.sr.utils.find_content_items(sr, name=codes.DCM.Comment)
    assert [c.TextValue for c in comments] == list(RESULT.warnings)  # caveats travel with the findings

    groups = sr.content.get_image_measurement_groups()
    # SNOMED CT where a checked code exists; the local scheme (declared in the SR) where none does
    assert [(g.finding_type.scheme_designator, g.finding_type.value) for g in groups] == [
        ("SCT", "60046008"), ("SCT", "27925004"), ("99CDS", "hernia")]
    assert "99CDS" in {item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence}
    assert [g.tracking_identifier for g in groups] == ["Effusion", "Nodule", "Hernia"]
    for group, finding in zip(groups, RESULT.findings, strict=True):
        (probability,) = group.get_measurements(name=codes.DCM.Probability)
        assert probability.value == finding.probability and probability.unit.value == "1"
        thresholds = group.get_measurements(name=codes.DCM.ThresholdValue)
        assert [t.value for t in thresholds] == ([finding.threshold] if finding.threshold is not None else [])
        calls = [e.value for e in group.get_qualitative_evaluations(name=group.finding_type)]
        expected = {True: [codes.SCT.Present], False: [codes.SCT.Absent]}[finding.positive]
        assert calls == (expected if finding.threshold is not None else [])
        assert [i.referenced_sop_instance_uid for i in group.source_images] == [source.SOPInstanceUID]
        assert _text(group, codes.DCM.AlgorithmName) == ["chest-xray-demo"]
        assert _text(group, codes.DCM.AlgorithmVersion) == ["1.0.0"]
        parameters = _text(group, codes.DCM.AlgorithmParameters)
        assert "model_sha256=" + "ab" * 32 in parameters and "input_sha256=" + "cd" * 32 in parameters
        family = hd.sr.utils.find_content_items(group[0], name=codes.DCM.AlgorithmFamily)[0]
        assert family.ConceptCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence


def _tracking_uids(document: pydicom.Dataset, path: Path) -> dict[str, str]:
    groups = _save_and_read(document, path).content.get_image_measurement_groups()
    return {g.tracking_identifier: g.tracking_uid for g in groups}


def test_tracking_uids_are_stable_and_the_procedure_comes_from_the_study(tmp_path: Path) -> None:
    source = _radiograph(tmp_path)
    first = _tracking_uids(build_classification_sr(RESULT, source), tmp_path / "a.dcm")
    again = _tracking_uids(build_classification_sr(RESULT, source), tmp_path / "b.dcm")
    assert first == again and len(set(first.values())) == 3  # the same per finding on a re-run; one per finding
    other = _radiograph(tmp_path, "other.dcm")
    assert set(_tracking_uids(build_classification_sr(RESULT, other), tmp_path / "c.dcm").values()).isdisjoint(
        first.values())  # another image: other findings
    ordered = pydicom.Dataset()
    ordered.CodeValue, ordered.CodingSchemeDesignator, ordered.CodeMeaning = "36643-5", "LN", "XR Chest 2V"
    source.ProcedureCodeSequence = [ordered]  # the code the study was ordered under wins
    sr = _save_and_read(build_classification_sr(RESULT, source), tmp_path / "d.dcm")
    procedure = hd.sr.utils.find_content_items(sr, name=codes.DCM.ProcedureReported)[0]
    assert (procedure.ConceptCodeSequence[0].CodeValue, procedure.ConceptCodeSequence[0].CodingSchemeDesignator) == (
        "36643-5", "LN")


def test_observer_is_the_model_as_a_device(tmp_path: Path) -> None:
    sr = _save_and_read(build_classification_sr(RESULT, _radiograph(tmp_path)), tmp_path / "sr.dcm")
    (observer,) = sr.content.get_observer_contexts(observer_type=codes.DCM.Device)
    device = observer.observer_identifying_attributes
    assert device.uid == device_uid(XR_MODEL) and device.name == "chest-xray-demo"
    assert device.model_name == "chest-xray-demo 1.0.0" and device.serial_number == "ab" * 32
    assert device_uid(XR_MODEL) != device_uid(XR_MODEL.model_copy(update={"sha256": "00" * 32}))


def test_several_sources_are_all_referenced(tmp_path: Path) -> None:
    first = _radiograph(tmp_path, "pa.dcm")
    second = _radiograph(tmp_path, "lat.dcm", study_uid=str(first.StudyInstanceUID))
    sr = _save_and_read(build_classification_sr(RESULT, [first, second]), tmp_path / "sr.dcm")
    assert {e[2] for e in sr.get_evidence()} == {first.SOPInstanceUID, second.SOPInstanceUID}
    group = sr.content.get_image_measurement_groups()[0]
    assert {i.referenced_sop_instance_uid for i in group.source_images} == {first.SOPInstanceUID,
                                                                           second.SOPInstanceUID}


def test_classification_sr_refuses_bad_input(tmp_path: Path) -> None:
    source = _radiograph(tmp_path)
    cases = [
        (RESULT.model_copy(update={"findings": ()}), source, "no_findings"),
        (RESULT, [], "no_sources"),
        (RESULT, [source, _radiograph(tmp_path, "other.dcm")], "mixed_studies"),
    ]
    broken = copy.deepcopy(source)
    del broken.SOPInstanceUID
    cases.append((RESULT, broken, "invalid_header"))
    for result, sources, code in cases:
        with pytest.raises(InvalidInputError) as caught:
            build_classification_sr(result, sources)
        assert caught.value.code == code


@pytest.fixture
def ct_seg(tmp_path: Path) -> tuple[list[pydicom.Dataset], hd.seg.Segmentation, dict[str, float]]:
    spacing = (2.5, 0.8, 0.8)
    sources = [pydicom.dcmread(p) for p in write_ct_series(tmp_path / "ct", np.zeros((4, 10, 12)),
                                                            spacing_mm=spacing)]
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1:3, 2:6, 3:8] = 1
    labels[3, 0:2, 0:3] = 3  # label 2 (spleen) absent
    seg_path = tmp_path / "seg.dcm"
    build_segmentation(labels, sources, ["liver", "spleen", "lesion-x"], CT_MODEL).save_as(seg_path)
    voxel_ml = math.prod(spacing) / 1000
    volumes = {name: float((labels == i).sum()) * voxel_ml for i, name in enumerate(["liver", "spleen", "lesion-x"],
                                                                                  start=1)}
    return sources, hd.seg.segread(seg_path), volumes


def test_segmentation_sr_references_segments_and_round_trips_volumes(ct_seg, tmp_path: Path) -> None:
    sources, seg, volumes = ct_seg
    document = build_segmentation_sr(seg, list(volumes.items()), CT_MODEL, input_sha256="12" * 32)
    sr = _save_and_read(document, tmp_path / "sr.dcm")
    assert sr.StudyInstanceUID == sources[0].StudyInstanceUID
    assert sr.SeriesInstanceUID not in {seg.SeriesInstanceUID, sources[0].SeriesInstanceUID}
    assert sr.get_evidence() == [(seg.StudyInstanceUID, seg.SeriesInstanceUID, seg.SOPInstanceUID, seg.SOPClassUID)]
    groups = sr.content.get_volumetric_roi_measurement_groups()
    assert [g.tracking_identifier for g in groups] == ["liver", "spleen", "lesion-x"]
    assert [g.finding_type.value for g in groups] == ["10200004", "78961009", "lesion-x"]
    for number, (group, segment) in enumerate(zip(groups, seg.SegmentSequence, strict=True), start=1):
        assert group.reference_type == codes.DCM.ReferencedSegment
        assert group.tracking_uid == segment.TrackingUID
        reference = group.referenced_segment
        segment_item = reference[0].ReferencedSOPSequence[0]
        assert segment_item.ReferencedSOPInstanceUID == seg.SOPInstanceUID
        assert segment_item.ReferencedSegmentNumber == number
        assert reference[1].value == sources[0].SeriesInstanceUID  # source series for segmentation
        (volume,) = group.get_measurements(name=codes.SCT.Volume)
        assert volume.value == pytest.approx(volumes[segment.SegmentLabel], rel=1e-12)
        assert volume.unit.value == "ml"
        assert "input_sha256=" + "12" * 32 in _text(group, codes.DCM.AlgorithmParameters)
        assert _text(group, codes.DCM.AlgorithmVersion) == ["2.1.0"]
    assert volumes["liver"] == pytest.approx(40 * 1.6e-3) and volumes["spleen"] == 0.0


def test_segmentation_sr_refuses_bad_input(ct_seg) -> None:
    sources, seg, volumes = ct_seg
    cases = [
        (sources[0], [("liver", 1.0)], "not_segmentation"),
        (seg, [], "no_measurements"),
        (seg, [("kidney", 1.0)], "unknown_structure"),
        (seg, [("liver", 1.0), ("liver", 2.0)], "duplicate_structure"),
        (seg, [("liver", -1.0)], "invalid_volume"),
        (seg, [("liver", float("nan"))], "invalid_volume"),
    ]
    for dataset, structures, code in cases:
        with pytest.raises(InvalidInputError) as caught:
            build_segmentation_sr(dataset, structures, CT_MODEL)
        assert caught.value.code == code
