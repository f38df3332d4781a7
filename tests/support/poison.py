"""Hostile DICOM files, built here: each makes a real decoder panic, loop forever or allocate without bound."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEG2000Lossless, RLELossless, generate_uid

CR = UID("1.2.840.10008.5.1.4.1.1.1")


def _cr(path: Path, syntax: UID, side: int, fragment: bytes, *, patient_id: str = "POISON-1") -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID, meta.TransferSyntaxUID = CR, generate_uid(), syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "CR"
    ds.PatientID, ds.BodyPartExamined, ds.ViewPosition = patient_id, "CHEST", "PA"
    ds.Rows = ds.Columns = side
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = encapsulate([fragment])
    ds["PixelData"].VR = "OB"
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    path.write_bytes(buffer.getvalue())
    return path


def _rle_frame(high: bytes, low: bytes) -> bytes:
    return struct.pack("<16I", 2, 64, 64 + len(high), *([0] * 13)) + high + low


def _literal_runs(data: bytes) -> bytes:
    return b"".join(bytes([len(data[i:i + 128]) - 1]) + data[i:i + 128] for i in range(0, len(data), 128))


def rle_panic(path: Path, side: int = 256) -> Path:
    """RLE Lossless whose first segment overruns by one replicate run: pylibjpeg-rle panics (a BaseException)."""
    zeros = bytes(side * side)
    return _cr(path, RLELossless, side, _rle_frame(_literal_runs(zeros) + bytes([0x81, 1]), _literal_runs(zeros)))


def j2k_endless(path: Path, side: int = 256) -> Path:
    """JPEG 2000 whose box after the signature box has length zero: the J2K parameter parser never returns."""
    fragment = b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00\x00\x00\x00" + b"ftypjp2 " + bytes(16)
    return _cr(path, JPEG2000Lossless, side, fragment)


def rle_bomb(path: Path, side: int = 16384) -> Path:
    """RLE Lossless of ``side`` x ``side`` 16-bit pixels (512 MiB decoded at 16384) in a few MiB of runs."""
    segment = bytes([0x81, 7]) * (side * side // 128)  # replicate runs of 128 bytes
    return _cr(path, RLELossless, side, _rle_frame(segment, segment))
