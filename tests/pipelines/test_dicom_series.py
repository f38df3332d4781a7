from pathlib import Path

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.dicom_series import build_volume, group_series
from training.data.dicom_files import write_ct_series, write_radiograph


def _volume(slices: int = 6) -> np.ndarray:
    z, y, x = np.meshgrid(np.arange(slices), np.arange(20), np.arange(24), indexing="ij")
    return (z * 100 + y * 3 + x - 1000).astype(np.float32)  # distinct HU per voxel, from -1000 upwards


def test_ct_series_is_ordered_by_position_not_instance_number(tmp_path: Path) -> None:
    hu = _volume()
    paths = write_ct_series(tmp_path / "ct", hu, spacing_mm=(2.5, 0.8, 0.7), shuffle_seed=3)
    instances = [read_instance(p) for p in reversed(paths)]  # file order reversed, InstanceNumber shuffled
    numbers = [int(i.dataset.InstanceNumber) for i in instances]
    assert numbers != sorted(numbers) and numbers != sorted(numbers, reverse=True)
    volume = build_volume(instances)
    np.testing.assert_array_equal(volume.voxels, hu)  # rescale slope/intercept applied: exact HU back
    assert volume.spacing == (2.5, 0.8, 0.7) and volume.modality == "CT"
    # voxel (2, 3, 4) lies 2 slices up, 3 rows down and 4 columns across from the first voxel
    point = volume.affine @ np.array([2, 3, 4, 1])
    np.testing.assert_allclose(point[:3], [-100 + 4 * 0.7, -200 + 3 * 0.8, -200 + 2 * 2.5])


def test_series_grouping_and_geometry_refusals(tmp_path: Path) -> None:
    hu = _volume()
    ct = [read_instance(p) for p in write_ct_series(tmp_path / "ct", hu)]
    other = [read_instance(p) for p in write_ct_series(tmp_path / "ct2", hu[:3])]
    cr = read_instance(write_radiograph(tmp_path / "cr.dcm", np.zeros((8, 8), np.float32)))
    groups = group_series([*ct, cr, *other])
    assert sorted(len(v) for v in groups.values()) == [1, 3, 6]

    missing = ct[:2] + ct[3:]
    with pytest.raises(InvalidInputError) as err:
        build_volume(missing)
    assert err.value.code == "missing_slices" and "after slice 2 of 5" in err.value.message
    with pytest.raises(InvalidInputError) as err:
        build_volume([ct[0], ct[0]])
    assert err.value.code == "duplicate_slices"
    with pytest.raises(InvalidInputError) as err:
        build_volume([cr])
    assert err.value.code == "invalid_geometry"
    with pytest.raises(InvalidInputError) as err:
        build_volume(ct, max_pixel_bytes=1000)
    assert err.value.code == "image_too_large"
    for instance in ct:
        instance.dataset.PixelSpacing = [0, 0]  # as many systems write "unknown"
    with pytest.raises(InvalidInputError) as err:
        build_volume(ct)
    assert err.value.code == "spacing_unknown"
    for instance in ct:
        instance.dataset.ImagerPixelSpacing = [0.7, 0.7]  # the detector's spacing stands in
    assert build_volume(ct).spacing[1:] == (0.7, 0.7)
