from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.uid import SegmentationStorage

from cds import __version__
from cds.errors import InvalidInputError
from cds.interop.dicom_seg import LOCAL_SCHEME, build_segmentation
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from training.data.dicom_files import write_ct_series

MODEL = ModelRef(name="ct-organs", version="2.1.0", sha256="ab" * 32, backend=BackendKind.ONNXRUNTIME)
NAMES = ["liver", "left kidney", "lesion-x"]
SHAPE = (5, 12, 14)


@pytest.fixture
def ct_sources(tmp_path: Path) -> list[pydicom.Dataset]:
    """Five CT slices whose InstanceNumbers are shuffled against position; returned in file (position) order."""
    paths = write_ct_series(tmp_path / "ct", np.zeros(SHAPE), shuffle_seed=3)
    return [pydicom.dcmread(p) for p in paths]


def _labels() -> np.ndarray:
    labels = np.zeros(SHAPE, np.uint8)
    labels[1, 2:6, 3:8] = 1  # liver on slice 1
    labels[2, 4:9, 2:5] = 1  # liver on slice 2
    labels[3, 1:3, 10:13] = 3  # lesion on slice 3; label 2 (left kidney) absent everywhere
    return labels


def _roundtrip(seg: hd.seg.Segmentation, tmp_path: Path) -> hd.seg.Segmentation:
    path = tmp_path / "seg.dcm"
    seg.save_as(path)
    return hd.seg.segread(path)


def _pixels(seg: hd.seg.Segmentation, sources: list[pydicom.Dataset]) -> np.ndarray:
    uids = [str(s.SOPInstanceUID) for s in sources]
    return np.asarray(seg.get_pixels_by_source_instance(uids, combine_segments=True))


def test_segmentation_round_trips_labels_references_and_identity(ct_sources, tmp_path: Path) -> None:
    labels = _labels()
    seg = _roundtrip(build_segmentation(labels, ct_sources, NAMES, MODEL), tmp_path)
    raw = pydicom.dcmread(tmp_path / "seg.dcm")
    assert raw.SOPClassUID == SegmentationStorage and raw.SegmentationType == "BINARY"
    assert np.array_equal(_pixels(seg, ct_sources), labels)
    assert raw.NumberOfFrames == 3  # two liver frames + one lesion frame; empty frames omitted
    source = ct_sources[0]
    assert raw.StudyInstanceUID == source.StudyInstanceUID and raw.PatientID == source.PatientID
    assert raw.SeriesInstanceUID != source.SeriesInstanceUID
    assert raw.FrameOfReferenceUID == source.FrameOfReferenceUID
    assert [s.SeriesInstanceUID for s in raw.ReferencedSeriesSequence] == [source.SeriesInstanceUID]
    referenced = {i.ReferencedSOPInstanceUID for i in raw.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {s.SOPInstanceUID for s in ct_sources}
    assert (raw.Manufacturer, raw.SoftwareVersions, raw.DeviceSerialNumber) == ("cds", __version__, "ab" * 32)
    assert raw.ManufacturerModelName == "ct-organs" and "2.1.0" in raw.SeriesDescription
    assert [s.SegmentLabel for s in raw.SegmentSequence] == NAMES
    for segment in raw.SegmentSequence:
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("ct-organs", "2.1.0")
        assert algorithm.AlgorithmFamilyCodeSequence[0].CodeValue == "123110"  # Artificial Intelligence, CID 7162
        assert "model_sha256=" + "ab" * 32 in algorithm.AlgorithmParameters
        assert segment.TrackingID == segment.SegmentLabel and segment.TrackingUID


def test_property_codes_anatomy_laterality_and_local(ct_sources) -> None:
    seg = build_segmentation(_labels(), ct_sources, NAMES, MODEL)
    liver, kidney, lesion = seg.SegmentSequence
    category = liver.SegmentedPropertyCategoryCodeSequence[0]
    assert (category.CodeValue, category.CodingSchemeDesignator) == ("91723000", "SCT")  # Anatomical Structure
    assert liver.SegmentedPropertyTypeCodeSequence[0].CodeValue == "10200004"  # Liver
    kidney_type = kidney.SegmentedPropertyTypeCodeSequence[0]
    assert kidney_type.CodeValue == "64033007"  # Kidney, laterality as modifier
    assert kidney_type.SegmentedPropertyTypeModifierCodeSequence[0].CodeValue == "7771000"  # Left
    assert lesion.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "85756007"  # Tissue
    lesion_type = lesion.SegmentedPropertyTypeCodeSequence[0]
    assert (lesion_type.CodingSchemeDesignator, lesion_type.CodeMeaning) == (LOCAL_SCHEME, "lesion-x")
    assert LOCAL_SCHEME in {i.CodingSchemeDesignator for i in seg.CodingSchemeIdentificationSequence}


def test_slice_order_follows_the_sources_not_the_files(ct_sources, tmp_path: Path) -> None:
    labels = _labels()
    reversed_sources, reversed_labels = ct_sources[::-1], labels[::-1].copy()
    seg = _roundtrip(build_segmentation(reversed_labels, reversed_sources, NAMES, MODEL), tmp_path)
    assert np.array_equal(_pixels(seg, ct_sources), labels)  # each slice landed on its own source instance


def test_empty_volume_is_a_valid_segmentation_with_every_segment_described(ct_sources, tmp_path: Path) -> None:
    empty = np.zeros(SHAPE, np.uint8)
    seg = _roundtrip(build_segmentation(empty, ct_sources, NAMES, MODEL), tmp_path)
    assert seg.NumberOfFrames == SHAPE[0] * len(NAMES)
    assert np.array_equal(_pixels(seg, ct_sources), empty)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == NAMES


def test_sources_are_not_modified(ct_sources) -> None:
    build_segmentation(_labels(), ct_sources, NAMES, MODEL)
    assert "PatientBirthDate" not in ct_sources[0] and "PixelData" in ct_sources[0]


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda labels, sources, names: (labels.astype(np.int64), sources, names), "wrong_dtype"),
        (lambda labels, sources, names: (labels[0], sources, names), "wrong_shape"),
        (lambda labels, sources, names: (labels, sources[:-1], names), "slice_count_mismatch"),
        (lambda labels, sources, names: (labels[:, :-1], sources, names), "shape_mismatch"),
        (lambda labels, sources, names: (labels, sources, []), "no_segments"),
        (lambda labels, sources, names: (labels, sources, ["liver", "Liver", "x"]), "invalid_segment_names"),
        (lambda labels, sources, names: (labels, sources, ["background", "liver", "x"]), "invalid_segment_names"),
        (lambda labels, sources, names: (labels, sources, names[:2]), "unknown_label"),
    ],
)
def test_bad_input_is_refused_with_its_code(ct_sources, change, code: str) -> None:
    labels, sources, names = change(_labels(), ct_sources, NAMES)
    with pytest.raises(InvalidInputError) as caught:
        build_segmentation(labels, sources, names, MODEL)
    assert caught.value.code == code


def test_source_without_uid_is_refused(ct_sources) -> None:
    del ct_sources[2].SOPInstanceUID
    with pytest.raises(InvalidInputError) as caught:
        build_segmentation(_labels(), ct_sources, NAMES, MODEL)
    assert caught.value.code == "invalid_header"


def test_sources_from_two_series_are_refused(ct_sources, tmp_path: Path) -> None:
    other = [pydicom.dcmread(p) for p in write_ct_series(tmp_path / "other", np.zeros(SHAPE))]
    with pytest.raises(InvalidInputError) as caught:
        build_segmentation(_labels(), [*ct_sources[:4], other[4]], NAMES, MODEL)
    assert caught.value.code == "mixed_series"
