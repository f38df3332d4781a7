import copy
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import SecondaryCaptureImageStorage

from cds import __version__
from cds.errors import InvalidInputError
from cds.interop.dicom_sc import NOT_FOR_DIAGNOSTIC_USE, build_overlay_sc
from cds.interop.outputs.radiograph import overlay
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from training.data.dicom_files import write_radiograph

MODEL = ModelRef(name="chest-xray-demo", version="1.0.0", sha256="ab" * 32, backend=BackendKind.ONNXRUNTIME)


@pytest.fixture
def source(tmp_path: Path) -> pydicom.Dataset:
    pixels = np.random.default_rng(1).random((40, 36))
    return pydicom.dcmread(write_radiograph(tmp_path / "xr.dcm", pixels, patient_id="SYNTH-7", sex="F"))


def _overlay() -> np.ndarray:
    rng = np.random.default_rng(2)
    image = rng.random((32, 32)).astype(np.float32)
    heatmap = np.zeros((32, 32), np.float32)
    heatmap[8:20, 10:24] = 0.9
    return overlay(image, heatmap)


def _save_and_read(image: pydicom.Dataset, path: Path) -> pydicom.Dataset:
    image.save_as(path)
    return pydicom.dcmread(path)


def test_overlay_round_trips_in_the_source_study(source, tmp_path: Path) -> None:
    pixels = _overlay()
    sc = _save_and_read(build_overlay_sc(pixels, source, finding="Effusion", model=MODEL), tmp_path / "sc.dcm")
    assert sc.SOPClassUID == SecondaryCaptureImageStorage and sc.Modality == "OT"
    assert np.array_equal(sc.pixel_array, pixels)
    assert (sc.PhotometricInterpretation, sc.SamplesPerPixel, sc.BitsAllocated) == ("RGB", 3, 8)
    assert sc.StudyInstanceUID == source.StudyInstanceUID
    assert sc.SeriesInstanceUID != source.SeriesInstanceUID and sc.SOPInstanceUID != source.SOPInstanceUID
    assert (sc.PatientID, str(sc.PatientName), sc.PatientSex) == ("SYNTH-7", "SYNTHETIC^IMAGE", "F")
    assert sc.StudyDate == source.StudyDate
    assert "Effusion" in sc.SeriesDescription and "1.0.0" in sc.SeriesDescription
    assert (sc.Manufacturer, sc.ManufacturerModelName, sc.SoftwareVersions) == ("cds", "chest-xray-demo", __version__)
    assert sc.ImageComments == NOT_FOR_DIAGNOSTIC_USE
    assert sc.DerivationDescription.startswith(NOT_FOR_DIAGNOSTIC_USE) and "ab" * 32 in sc.DerivationDescription
    (reference,) = sc.SourceImageSequence
    assert (reference.ReferencedSOPClassUID, reference.ReferencedSOPInstanceUID) == (source.SOPClassUID,
                                                                                      source.SOPInstanceUID)
    assert list(sc.PatientOrientation) == ["L", "F"] and "PixelSpacing" not in sc


def test_caveat_only_when_asked_and_source_orientation_kept(source, tmp_path: Path) -> None:
    oriented = copy.deepcopy(source)
    oriented.PatientOrientation = ["R", "F"]
    image = build_overlay_sc(_overlay(), oriented, finding="Nodule", model=MODEL, not_for_diagnostic_use=False)
    sc = _save_and_read(image, tmp_path / "sc.dcm")
    assert "ImageComments" not in sc and "NOT FOR DIAGNOSTIC USE" not in sc.DerivationDescription
    assert "Nodule" in sc.DerivationDescription and list(sc.PatientOrientation) == ["R", "F"]


def test_bad_input_is_refused_with_its_code(source) -> None:
    pixels = _overlay()
    headless = copy.deepcopy(source)
    del headless.StudyInstanceUID
    cases = [
        (pixels.astype(np.float32), source, "Effusion", "wrong_dtype"),
        (pixels[..., 0], source, "Effusion", "wrong_shape"),
        (np.concatenate([pixels, pixels[..., :1]], axis=2), source, "Effusion", "wrong_shape"),
        (pixels, source, "  ", "invalid_finding"),
        (pixels, headless, "Effusion", "invalid_header"),
    ]
    for array, dataset, finding, code in cases:
        with pytest.raises(InvalidInputError) as caught:
            build_overlay_sc(array, dataset, finding=finding, model=MODEL)
        assert caught.value.code == code
