"""Generated CT volumes: deterministic, in realistic HU ranges, with exact ground truth, and readable as DICOM."""

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.dicom_series import build_volume
from training.data.ct_volumes import KIDNEY_LEFT, KIDNEY_RIGHT, LABELS, LIVER, SPLEEN, CtCase, generate_case

# (plain, contrast-enhanced) ranges of each structure's median HU: the generator's ranges, 6 HU wider for its smooth
# organ texture
MEDIAN_HU = {LIVER: ((49, 71), (89, 121)), SPLEEN: ((39, 56), (99, 131)),
             KIDNEY_LEFT: ((22, 41), (144, 206)), KIDNEY_RIGHT: ((22, 41), (144, 206))}


@pytest.fixture(scope="module")
def cases() -> list[CtCase]:
    return [generate_case(11, i) for i in range(6)]


def test_same_seed_and_index_give_the_same_case_and_others_differ() -> None:
    first, again, other = generate_case(3, 1), generate_case(3, 1), generate_case(3, 2)
    np.testing.assert_array_equal(first.hounsfield, again.hounsfield)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert first.spacing_mm == again.spacing_mm and first.origin_mm == again.origin_mm
    assert first.hounsfield.shape != other.hounsfield.shape or not np.array_equal(first.hounsfield, other.hounsfield)
    assert generate_case(4, 1).spacing_mm != first.spacing_mm  # another stream


def test_geometry_stays_in_the_documented_ranges(cases: list[CtCase]) -> None:
    for case in cases:
        slices, rows, columns = case.hounsfield.shape
        dz, dy, dx = case.spacing_mm
        assert 24 <= slices <= 64 and 96 <= rows == columns <= 160
        assert 1.5 <= dz <= 5.0 and 0.6 <= dy == dx <= 1.0
        assert case.hounsfield.dtype == np.float32 and case.labels.dtype == np.uint8
        assert case.labels.shape == case.hounsfield.shape
        assert set(np.unique(case.labels).tolist()) <= set(range(len(LABELS)))
        np.testing.assert_array_equal(case.hounsfield, np.round(case.hounsfield))  # whole HU, as DICOM stores them


def test_structures_have_realistic_hounsfield_units_and_noise(cases: list[CtCase]) -> None:
    assert {case.contrast for case in cases} == {True, False}  # both phases occur
    for case in cases:
        hu, labels = case.hounsfield, case.labels
        corner = hu[:, :8, :8]
        assert abs(float(np.median(corner)) + 1000) < 15  # air outside the body
        assert hu.max() > 600  # cortical bone
        assert 10 <= case.noise_hu <= 25
        for label, ranges in MEDIAN_HU.items():
            mask = binary_erosion(labels == label)  # away from partial-volume edges
            if mask.sum() < 200:
                continue
            low, high = ranges[int(case.contrast)]
            assert low <= float(np.median(hu[mask])) <= high, (LABELS[label], case.contrast)
        interior = binary_erosion(labels == LIVER, iterations=2)
        spread = float(hu[interior].std())
        assert 0.8 * case.noise_hu <= spread <= 1.35 * case.noise_hu  # noise plus a little organ texture


def test_anatomy_is_on_the_right_side(cases: list[CtCase]) -> None:
    for case in cases:
        columns = {label: float(np.nonzero(case.labels == label)[2].mean())
                   for label in (LIVER, SPLEEN, KIDNEY_LEFT, KIDNEY_RIGHT) if (case.labels == label).any()}
        centre = (case.labels.shape[2] - 1) / 2
        assert columns[LIVER] < centre  # patient's right is at low column indices (LPS)
        if SPLEEN in columns:
            assert columns[SPLEEN] > centre
        if KIDNEY_LEFT in columns and KIDNEY_RIGHT in columns:
            assert columns[KIDNEY_RIGHT] < centre < columns[KIDNEY_LEFT]


def test_true_volumes_are_voxel_counts_times_voxel_volume(cases: list[CtCase]) -> None:
    case = cases[0]
    volumes = case.volumes_ml()
    assert list(volumes) == list(LABELS[1:])
    voxel_ml = float(np.prod(case.spacing_mm)) / 1000
    assert volumes["liver"] == pytest.approx(float((case.labels == LIVER).sum()) * voxel_ml)
    assert volumes["liver"] > volumes["spleen"] > 0


def test_dicom_series_reads_back_as_the_same_volume(cases: list[CtCase], tmp_path: Path) -> None:
    case = cases[1]
    paths = case.write_dicom(tmp_path / "series", shuffle_seed=1)
    volume = build_volume([read_instance(p) for p in paths])
    expected = case.volume()
    np.testing.assert_array_equal(volume.voxels, case.hounsfield)
    np.testing.assert_allclose(volume.affine, expected.affine, atol=1e-6)
    np.testing.assert_allclose(volume.spacing, expected.spacing, atol=1e-6)
    assert volume.modality == expected.modality == "CT"
