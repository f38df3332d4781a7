from pathlib import Path

import numpy as np
import pydicom
import pytest

from cds.errors import InvalidInputError
from cds.models.spec import ImagingContract, Modality
from cds.pipelines.imaging.dicom_contract import check_instance, check_series
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
