from pathlib import Path

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.pipelines.imaging.radiograph import MODEL_RANGE, read_radiograph, to_model_input
from training.data.chest_xray import DERIVED, LABELS, PRIMARY, generate, render
from training.data.dicom_files import write_radiograph
from training.data.folder import read_labels_csv, write_generated_chest_xrays


def test_generator_is_deterministic_per_index_and_uses_the_18_torchxrayvision_labels() -> None:
    assert len(LABELS) == 18 and "Enlarged Cardiomediastinum" in LABELS and "Pleural_Thickening" in LABELS
    a, b = generate(6, seed=3, size=96), generate(6, seed=3, size=96)
    np.testing.assert_array_equal(a.images, b.images)
    tail = generate(2, seed=3, size=96, start=4)  # any index regenerates alone
    np.testing.assert_array_equal(tail.images, a.images[4:])
    assert a.images.shape == (6, 1, 96, 96) and a.images.dtype == np.float32
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0
    assert not np.array_equal(generate(6, seed=4, size=96).images, a.images)


def test_labels_follow_the_hierarchy_and_the_prevalence() -> None:
    data = generate(300, seed=1, size=64, prevalence=0.2)
    column = {name: data.labels[:, i].astype(bool) for i, name in enumerate(LABELS)}
    for parent, children in DERIVED.items():
        np.testing.assert_array_equal(column[parent], np.any([column[c] for c in children], axis=0))
    primary = np.array([column[name].mean() for name in PRIMARY])
    assert abs(primary.mean() - 0.2) < 0.03, primary
    assert set(data.sex) == {"F", "M"}


def _region_mean(image: np.ndarray, rows: slice, cols: slice) -> float:
    return float(image[rows, cols].mean())


@pytest.mark.parametrize(
    ("finding", "rows", "cols", "brighter"),
    [
        ("Cardiomegaly", slice(130, 170), slice(60, 90), True),      # heart reaches into the right lower zone
        ("Effusion", slice(135, 160), slice(40, 190), True),         # fluid fills the lung bases
        ("Emphysema", slice(60, 130), slice(50, 90), False),         # hyperlucent lungs
        ("Enlarged Cardiomediastinum", slice(40, 90), slice(95, 102), True),
    ],
)
def test_findings_change_the_image_where_the_anatomy_says(finding: str, rows: slice, cols: slice, brighter: bool) -> None:
    differences = []
    for index in range(12):
        normal, labels, _ = render(224, 9, index, findings=set())
        abnormal, abnormal_labels, _ = render(224, 9, index, findings={finding})
        assert labels.sum() == 0 and abnormal_labels[LABELS.index(finding)] == 1
        differences.append(_region_mean(abnormal, rows, cols) - _region_mean(normal, rows, cols))
    mean = float(np.mean(differences))
    assert (mean > 0.02) if brighter else (mean < -0.02), (finding, mean)


def test_unknown_or_derived_findings_are_refused() -> None:
    with pytest.raises(ValueError, match="Lung Opacity"):
        render(64, 0, 0, findings={"Lung Opacity"})


@pytest.mark.parametrize("image_format", ["dicom", "png"])
def test_written_dataset_reads_back_with_its_labels(tmp_path: Path, image_format: str) -> None:
    write_generated_chest_xrays(tmp_path, 4, seed=2, size=128, image_format=image_format, prevalence=0.5)
    files = read_labels_csv(tmp_path, LABELS)
    expected = generate(4, seed=2, size=128, prevalence=0.5)
    np.testing.assert_array_equal(files.labels, expected.labels)
    assert list(files.subgroups) == ["sex"] and list(files.subgroups["sex"]) == list(expected.sex)
    step = 1 / 4095 if image_format == "dicom" else 1 / 65535
    for path, original in zip(files.paths, expected.images, strict=True):
        pixels = read_radiograph(path)
        # the reader rescales to the file's own range; compare after the same normalisation of the original
        o = original[0]
        np.testing.assert_allclose(pixels, (o - o.min()) / (o.max() - o.min()) if image_format == "dicom" else o,
                                   atol=3 * step + 1e-6)


def test_monochrome1_is_inverted_so_bright_means_dense(tmp_path: Path) -> None:
    pixels = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    plain = read_radiograph(write_radiograph(tmp_path / "m2.dcm", pixels))
    inverted = read_radiograph(write_radiograph(tmp_path / "m1.dcm", pixels, monochrome1=True))
    np.testing.assert_allclose(plain, inverted, atol=1e-6)
    assert plain[-1, -1] == pytest.approx(1.0) and plain[0, 0] == pytest.approx(0.0)


def test_model_input_is_resized_and_scaled_to_the_torchxrayvision_range() -> None:
    pixels = np.zeros((448, 448), dtype=np.float32)
    pixels[:, 224:] = 1.0
    x = to_model_input(pixels, 224)
    assert x.shape == (1, 224, 224) and x.dtype == np.float32
    assert x[0, 0, 0] == MODEL_RANGE[0] and x[0, 0, -1] == MODEL_RANGE[1]
    assert to_model_input(np.full((100, 80), 0.5, np.float32), 224).shape == (1, 224, 224)


def test_bad_files_are_refused_with_a_reason(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom file at all")
    with pytest.raises(InvalidInputError) as err:
        read_radiograph(junk)
    assert err.value.code == "not_dicom"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InvalidInputError) as err:
        read_radiograph(tmp_path / "rgb.png")
    assert err.value.code == "not_greyscale"


def test_labels_csv_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        read_labels_csv(tmp_path, LABELS)
    write_generated_chest_xrays(tmp_path, 2, seed=0, size=64, image_format="png")
    table = tmp_path / "labels.csv"
    lines = table.read_text().splitlines()
    table.write_text("\n".join([lines[0], lines[1].replace(",0,", ",maybe,", 1), lines[2]]) + "\n")
    with pytest.raises(ValueError, match="expected 0 or 1"):
        read_labels_csv(tmp_path, LABELS)
    with pytest.raises(ValueError, match="lacks columns"):
        read_labels_csv(tmp_path, [*LABELS, "Support Devices"])
    (tmp_path / lines[2].split(",")[0]).unlink()
    table.write_text("\n".join([lines[0], lines[2]]) + "\n")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_labels_csv(tmp_path, LABELS)
