from pathlib import Path

import numpy as np
import pydicom
import pytest

from cds.errors import InvalidInputError
from cds.models.spec import ImagingContract, Modality
from cds.pipelines.imaging.dicom_contract import check_instance, check_series, pixel_spacing
from cds.pipelines.imaging.dicom_reader import read_instance
from training.data.dicom_files import write_ct_series, write_radiograph

CXR = ImagingContract(modalities=(Modality.CR, Modality.DX), body_parts=("CHEST",), views=("PA", "AP"),
                      min_rows=224, min_columns=224, pixel_spacing_mm=(0.1, 1.0))
PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


def test_a_chest_radiograph_fits_and_other_studies_are_refused_with_reasons(tmp_path: Path) -> None:
    check_instance(read_instance(write_radiograph(tmp_path / "ok.dcm", np.zeros((256, 256), np.float32))), CXR)
    mr = read_instance(PYDICOM_FILES / "MR_small.dcm")
    with pytest.raises(InvalidInputError) as err:
        check_instance(mr, CXR)
    assert err.value.code == "wrong_modality" and "model expects modality CR/DX, got MR" in err.value.message
    small = read_instance(write_radiograph(tmp_path / "small.dcm", np.zeros((100, 300), np.float32)))
    with pytest.raises(InvalidInputError) as err:
        check_instance(small, CXR)
    assert err.value.code == "image_too_small"
    coarse = read_instance(write_radiograph(tmp_path / "coarse.dcm", np.zeros((256, 256), np.float32),
                                            pixel_spacing_mm=2.5))
    with pytest.raises(InvalidInputError) as err:
        check_instance(coarse, CXR)
    assert err.value.code == "spacing_out_of_range"
    lateral = read_instance(write_radiograph(tmp_path / "lat.dcm", np.zeros((256, 256), np.float32)))
    lateral.dataset.ViewPosition = "LL"
    with pytest.raises(InvalidInputError) as err:
        check_instance(lateral, CXR)
    assert err.value.code == "wrong_view"
    del lateral.dataset.ViewPosition  # absent tags are not held against the study
    check_instance(lateral, CXR)


def test_series_slice_count(tmp_path: Path) -> None:
    contract = ImagingContract(modalities=(Modality.CT,), min_slices=8, max_slices=64)
    ct = [read_instance(p) for p in write_ct_series(tmp_path, np.zeros((4, 16, 16), np.float32))]
    with pytest.raises(InvalidInputError) as err:
        check_series(ct, contract)
    assert err.value.code == "wrong_slice_count" and "got 4" in err.value.message
    check_series(ct, contract.model_copy(update={"min_slices": 4}))


@pytest.mark.parametrize(("pixel", "imager", "spacing"), [
    ("0\\0", None, None), ("0\\0", "0.15\\0.15", (0.15, 0.15)), ("-0.1\\-0.1", None, None), (None, None, None),
    ("0.2\\0.3", "0.15\\0.15", (0.2, 0.3)), ("0.2", None, None),
])  # fmt: skip
def test_zero_negative_or_absent_spacing_is_unknown_and_refused_only_by_a_model_that_needs_it(
        tmp_path: Path, pixel: str | None, imager: str | None, spacing: tuple[float, float] | None) -> None:
    instance = read_instance(write_radiograph(tmp_path / "cr.dcm", np.zeros((256, 256), np.float32)))
    del instance.dataset.PixelSpacing
    if pixel is not None:  # as the file would carry it: DS text, values separated by a backslash
        instance.dataset.add_new(0x00280030, "DS", pixel)
    if imager is not None:
        instance.dataset.add_new(0x00181164, "DS", imager)
    assert pixel_spacing(instance.dataset) == spacing
    check_instance(instance, CXR)  # a chest model reads pixels: unknown spacing is not held against the film
    if spacing is None:
        with pytest.raises(InvalidInputError) as err:
            check_instance(instance, CXR.model_copy(update={"spacing_required": True}))
        assert err.value.code == "spacing_unknown"
