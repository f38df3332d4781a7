"""Defensive DICOM reading: pydicom's own test files, compressed syntaxes, and hostile inputs."""

import io
import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian

from cds.errors import InvalidInputError
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.pixel_values import DISPLAY, MODALITY_FLOAT32
from tests.support.poison import deflate_bomb, rle_bomb
from training.data.dicom_files import write_radiograph

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"  # bundled files only: nothing is downloaded
REASONS = {"empty_file", "not_dicom", "invalid_header", "no_pixel_data", "image_too_large", "pixel_data_short",
           "unsupported_transfer_syntax", "pixel_data_corrupt", "corrupt_deflate", "inflated_too_large", "truncated_file"}


def test_every_bundled_pydicom_file_is_read_or_refused_with_a_reason() -> None:
    files = sorted(p for p in PYDICOM_FILES.rglob("*") if p.is_file())
    assert len(files) > 100
    outcome: Counter[str] = Counter()
    for path in files:
        try:
            pixels = read_instance(path).pixels()
            assert pixels.size > 0
            outcome["read"] += 1
        except InvalidInputError as exc:  # anything else escaping is a crash and fails the test
            assert exc.code in REASONS, (path.name, exc.code)
            assert path.name in exc.message
            outcome[exc.code] += 1
    assert outcome["read"] >= 80 and outcome["no_pixel_data"] >= 30, outcome
    assert read_instance(PYDICOM_FILES / "MR_truncated.dcm").dataset is not None
    with pytest.raises(InvalidInputError) as err:
        read_instance(PYDICOM_FILES / "MR_truncated.dcm").pixels()
    assert err.value.code == "pixel_data_short"


@pytest.mark.parametrize(
    "compressed",
    ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_expb.dcm",
     "MR_small_implicit.dcm", "MR_small_bigendian.dcm"],
)
def test_lossless_encodings_decode_to_the_same_pixels(compressed: str) -> None:
    reference = read_instance(PYDICOM_FILES / "MR_small.dcm").pixels()
    np.testing.assert_array_equal(read_instance(PYDICOM_FILES / compressed).pixels(), reference)


def test_lossy_jpeg_and_jpeg_ls_decode() -> None:
    for name, shape in (("SC_rgb_jpeg_dcmtk.dcm", (100, 100, 3)), ("JPEGLSNearLossless_16.dcm", None),
                        ("JPEG2000.dcm", None), ("JPGExtended.dcm", None)):
        pixels = read_instance(PYDICOM_FILES / name).pixels()
        assert pixels.ndim >= 2 and (shape is None or pixels.shape == shape)


def test_in_memory_bytes_and_hostile_inputs(tmp_path: Path) -> None:
    path = write_radiograph(tmp_path / "cr.dcm", np.full((32, 32), 0.5, np.float32))
    assert read_instance(path.read_bytes(), name="upload-1").pixels().shape == (32, 32)
    cases = {
        b"": "empty_file",
        b"hello, this is not DICOM" * 10: "not_dicom",
        path.read_bytes()[:100]: "not_dicom",  # cut inside the meta header
    }
    for data, code in cases.items():
        with pytest.raises(InvalidInputError) as err:
            read_instance(data, name="upload").pixels()
        assert err.value.code == code


@pytest.mark.parametrize("implicit", [True, False])
def test_a_bare_dataset_without_part_10_header_is_read_like_the_file(tmp_path: Path, implicit: bool) -> None:
    # older systems and some vendors send the dataset alone: no preamble, no DICM, no file meta
    path = write_radiograph(tmp_path / "cr.dcm", np.random.default_rng(0).random((24, 20)), monochrome1=True)
    original = read_instance(path)
    bare = DicomBytesIO()
    bare.is_little_endian, bare.is_implicit_VR = True, implicit
    pydicom.filewriter.write_dataset(bare, pydicom.dcmread(path))  # the dataset alone, file meta left out
    assert bare.getvalue()[128:132] != b"DICM"
    instance = read_instance(bare.getvalue(), name="bare")
    assert instance.dataset.SOPInstanceUID == original.dataset.SOPInstanceUID
    assert instance.dataset.file_meta.TransferSyntaxUID == ("1.2.840.10008.1.2" if implicit else ExplicitVRLittleEndian)
    np.testing.assert_array_equal(instance.pixels(conversion=DISPLAY), original.pixels(conversion=DISPLAY))
    # group 0008 first but no SOP Class or Instance: still not DICOM
    for junk in (b"\x08\x00\x16\x00" + b"\x00" * 60, b"\x08\x00" + bytes(range(200))):
        with pytest.raises(InvalidInputError) as err:
            read_instance(junk, name="junk")
        assert err.value.code == "not_dicom"


def _rewrite(path: Path, **changes: object) -> bytes:
    ds = pydicom.dcmread(path)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = io.BytesIO()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_absurd_dimensions_are_refused_before_decoding(tmp_path: Path) -> None:
    path = write_radiograph(tmp_path / "cr.dcm", np.zeros((16, 16), np.float32))
    huge = _rewrite(path, Rows=65535, Columns=65535, NumberOfFrames=500)
    with pytest.raises(InvalidInputError) as err:
        read_instance(huge, name="bomb").pixels()
    assert err.value.code == "image_too_large" and "before decoding" in err.value.message
    short = _rewrite(path, Rows=64, Columns=64)  # 16x16 pixels behind a 64x64 header
    with pytest.raises(InvalidInputError) as err:
        read_instance(short, name="short").pixels()
    assert err.value.code == "pixel_data_short"
    zero = _rewrite(path, Rows=0)
    with pytest.raises(InvalidInputError) as err:
        read_instance(zero, name="zero").pixels()
    assert err.value.code == "invalid_header"
    empty = _rewrite(path, PixelData=b"")  # an element of length 0 (found by the fuzzer): refused, not a crash
    with pytest.raises(InvalidInputError) as err:
        read_instance(empty, name="empty").pixels()
    assert err.value.code == "pixel_data_short" and "empty" in err.value.message


def test_structured_report_has_no_pixels() -> None:
    with pytest.raises(InvalidInputError) as err:
        read_instance(PYDICOM_FILES / "test-SR.dcm").pixels()
    assert err.value.code == "no_pixel_data"


def test_a_deflated_file_reads_as_pydicom_reads_it() -> None:
    path = PYDICOM_FILES / "image_dfl.dcm"
    ours, theirs = read_instance(path), pydicom.dcmread(path)
    assert ours.dataset.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian
    assert [e.tag for e in ours.dataset] == [e.tag for e in theirs]
    assert ours.dataset.PatientName == theirs.PatientName
    assert np.array_equal(ours.pixels(), theirs.pixel_array)


def test_a_deflate_bomb_is_refused_within_its_budget(tmp_path: Path) -> None:
    bomb = deflate_bomb(tmp_path / "bomb.dcm", inflated=512 << 20)
    assert bomb.stat().st_size < 1 << 20  # ~0.5 MiB that would inflate to 512 MiB
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError) as err:
            read_instance(bomb, max_inflated_bytes=16 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.code == "inflated_too_large"
    assert peak < 48 << 20, f"{peak / 2**20:.0f} MiB"  # the file, the cap and one chunk; pydicom alone takes 512
    raw = bomb.read_bytes()
    with pytest.raises(InvalidInputError) as err:
        read_instance(raw[: len(raw) // 2], max_inflated_bytes=1 << 30)  # cut in the middle of the stream
    assert err.value.code == "corrupt_deflate"


def test_the_pixel_budget_counts_conversions(tmp_path: Path) -> None:
    path = write_radiograph(tmp_path / "cr.dcm", np.random.default_rng(0).random((1024, 1024)))
    instance = read_instance(path)  # 1024 x 1024 16-bit: 2 MiB stored
    assert instance.pixels(10 << 20).dtype == np.uint16
    for conversion in (MODALITY_FLOAT32, DISPLAY):
        with pytest.raises(InvalidInputError) as err:
            instance.pixels(10 << 20, conversion)  # 2 MiB + 12 or 20 bytes per sample
        assert err.value.code == "image_too_large" and "with their conversions" in err.value.message
    display = instance.pixels(24 << 20, DISPLAY)
    assert display.dtype == np.float32 and float(display.min()) == 0.0 and float(display.max()) == 1.0
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError) as err:  # 512 MiB stored passes a 1 GiB cap; as float it does not
            read_instance(rle_bomb(tmp_path / "rle.dcm")).pixels(1 << 30, DISPLAY)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.code == "image_too_large" and peak < 64 << 20


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "JPGExtended.dcm", "MR_small_jpeg_ls_lossless.dcm",
                                  "MR_small_jp2klossless.dcm", "MR_small_RLE.dcm"])  # JPEG, JPEG-LS, J2K, RLE
def test_compressed_pixel_data_cut_short_is_a_truncated_file(name: str) -> None:
    raw = (PYDICOM_FILES / name).read_bytes()
    end = raw.rfind(b"\xfe\xff\xdd\xe0")  # the sequence delimiter after the last fragment
    assert end > 0
    for cut in (raw[: end - 10], raw[: len(raw) // 2]):  # the last bytes of the last frame missing; half the file
        with pytest.raises(InvalidInputError) as err:
            read_instance(cut, name=name).pixels()
        assert err.value.code == "truncated_file", (name, err.value.code, err.value.message)
