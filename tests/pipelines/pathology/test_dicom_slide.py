"""DicomSlide on a real H&E region: the tile that wsidicom-data ships (from OpenSlide's CMU-1-Small-Region.svs),
wrapped into VL Whole Slide Microscopy instances with its bundled JPEG baseline and uncompressed encodings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cds.errors import InvalidInputError
from cds.pipelines.pathology import open_slide

pytest.importorskip("wsidicom")
test_data = pytest.importorskip("wsidicom_data.test_data")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import (  # noqa: E402
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    VLWholeSlideMicroscopyImageStorage,
    generate_uid,
)

from cds.pipelines.pathology.dicom_slide import DicomSlide  # noqa: E402

TILE = 240  # the bundled tile is 240 × 240
SPACING_MM = 0.0005  # 0.5 µm/px at level 0


def bundled_tile() -> np.ndarray:
    return np.asarray(Image.open(test_data.TestData.get_test_tile_path()).convert("RGB"))


def bundled_frame(name: str) -> bytes:
    """One of wsidicom-data's encodings of the tile, found by its file name."""
    encoded = Path(test_data.EncodedTestData.test_data_path)
    return (encoded / name).read_bytes()


def wsi_instance(path: Path, uids: tuple[str, str, str], *, frames: list[bytes], columns: int, rows: int,
                 spacing_mm: float, syntax: str, original: bool, samples: int = 3) -> None:
    """Write one TILED_FULL VL Whole Slide Microscopy instance of ``columns`` × ``rows`` frames."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = VLWholeSlideMicroscopyImageStorage
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = uids
    ds.Modality = "SM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if original else ["DERIVED", "PRIMARY", "VOLUME",
                                                                                "RESAMPLED"]
    ds.Rows = ds.Columns = TILE
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = TILE * columns, TILE * rows
    ds.NumberOfFrames = len(frames)
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.DimensionOrganizationType = "TILED_FULL"
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = TILE * columns * spacing_mm, TILE * rows * spacing_mm
    measures = Dataset()
    measures.PixelSpacing = [spacing_mm, spacing_mm]
    measures.SliceThickness = 0.001
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.TotalPixelMatrixFocalPlanes = ds.NumberOfOpticalPaths = 1
    optical_path = Dataset()
    optical_path.OpticalPathIdentifier = "0"
    ds.OpticalPathSequence = Sequence([optical_path])
    ds.PixelData = b"".join(frames) if syntax == ExplicitVRLittleEndian else encapsulate(frames)
    ds.save_as(path, enforce_file_format=True)


@pytest.fixture(scope="module")
def dicom_wsi(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A 480 × 480 JPEG-baseline level (the tile 2 × 2) and a 240 × 240 uncompressed level 1; returns the folder,
    the level-0 source and the exact level-1 pixels."""
    folder = tmp_path_factory.mktemp("dicom_wsi")
    tile = bundled_tile()
    source = np.tile(tile, (2, 2, 1))
    level1 = np.asarray(Image.fromarray(source).resize((TILE, TILE), Image.Resampling.BOX))
    uids = (generate_uid(), generate_uid(), generate_uid())
    jpeg = bundled_frame("JPEG_Baseline_(Process_1)-RGB-8.jpg")
    wsi_instance(folder / "level0.dcm", uids, frames=[jpeg] * 4, columns=2, rows=2, spacing_mm=SPACING_MM,
                 syntax=JPEGBaseline8Bit, original=True)
    wsi_instance(folder / "level1.dcm", uids, frames=[level1.tobytes()], columns=1, rows=1,
                 spacing_mm=2 * SPACING_MM, syntax=ExplicitVRLittleEndian, original=False)
    return folder, source, level1


def test_levels_mpp_and_regions_match_the_bundled_tile(dicom_wsi: tuple[Path, np.ndarray, np.ndarray]) -> None:
    folder, source, level1 = dicom_wsi
    with open_slide(folder) as slide:
        assert isinstance(slide, DicomSlide)
        assert slide.dimensions == (480, 480)
        assert [(level.size, level.downsample) for level in slide.levels] == [((480, 480), 1.0), ((240, 240), 2.0)]
        assert slide.mpp == pytest.approx(0.5)
        region = slide.read_region(0, 200, 220, 80, 40)  # across all four frames
        assert region.shape == (40, 80, 3) and region.dtype == np.uint8
        assert np.abs(region.astype(int) - source[220:260, 200:280]).mean() < 3  # JPEG quality 95
        np.testing.assert_array_equal(slide.read_region(1, 10, 20, 100, 50), level1[20:70, 10:110])
        assert slide.thumbnail(120).shape == (120, 120, 3)


def test_the_uncompressed_encoding_reads_exactly(tmp_path: Path) -> None:
    tile = bundled_tile()
    raw = bundled_frame("Explicit_VR_Little_Endian-RGB-8.raw")
    np.testing.assert_array_equal(np.frombuffer(raw, np.uint8).reshape(TILE, TILE, 3), tile)
    path = tmp_path / "single.dcm"
    wsi_instance(path, (generate_uid(), generate_uid(), generate_uid()), frames=[raw], columns=1, rows=1,
                 spacing_mm=SPACING_MM, syntax=ExplicitVRLittleEndian, original=True)
    with open_slide(path) as slide:  # one instance file, found by its DICM preamble
        assert isinstance(slide, DicomSlide)
        np.testing.assert_array_equal(slide.read_region(0, 0, 0, TILE, TILE), tile)


def test_grayscale_dicom_wsi_is_not_rgb(tmp_path: Path) -> None:
    raw = bundled_frame("Explicit_VR_Little_Endian-GRAYSCALE-8.raw")
    wsi_instance(tmp_path / "gray.dcm", (generate_uid(), generate_uid(), generate_uid()), frames=[raw], columns=1,
                 rows=1, spacing_mm=SPACING_MM, syntax=ExplicitVRLittleEndian, original=True, samples=1)
    with pytest.raises(InvalidInputError) as caught:
        open_slide(tmp_path)
    assert caught.value.code == "not_rgb"


def test_dicom_over_the_cap_is_refused(dicom_wsi: tuple[Path, np.ndarray, np.ndarray]) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_slide(dicom_wsi[0], max_pixels=200_000)
    assert caught.value.code == "slide_too_large"


def test_a_dicom_that_is_not_a_slide_is_refused(tmp_path: Path) -> None:
    from training.data.dicom_files import write_radiograph

    path = write_radiograph(tmp_path / "chest.dcm", np.full((64, 64), 0.5))
    with pytest.raises(InvalidInputError) as caught:
        open_slide(path)
    assert caught.value.code == "not_a_slide"
