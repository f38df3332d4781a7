"""Read one DICOM instance defensively: header first, size limits before any pixel is decoded, one reason per refusal.

Every failure is an :class:`~cds.errors.InvalidInputError` whose ``code`` says what was wrong, so a hostile or
broken file is refused with a reason and never crashes a worker:

``empty_file``, ``not_dicom`` (neither a Part 10 file nor a bare dataset that names its SOP Class and Instance, or
an unparseable header), ``corrupt_deflate`` and
``inflated_too_large`` (a Deflated Explicit VR Little Endian dataset that is corrupt, or inflates beyond the cap),
``invalid_header`` (a required attribute is missing or malformed), ``no_pixel_data`` (an SR, RT or other non-image
object), ``image_too_large`` (the decoded pixels and every conversion the caller asks for, over the budget; checked
from the header before decoding), ``pixel_data_short`` (fewer bytes than the header declares),
``unsupported_transfer_syntax`` (no installed decoder), ``pixel_data_corrupt``.

A deflated dataset is inflated by a streaming decompressor that stops at the cap, so a few hundred kilobytes that
would inflate to gigabytes cost no more than the cap. Decoded pixels can be converted (modality LUT, display
windowing, see :mod:`cds.pipelines.imaging.pixel_values`) in the decoder process before they come back, and the
pixel budget counts the peak memory of those conversions, not only the stored samples.

Compressed transfer syntaxes (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE) decode through pydicom's
pixel-data plugins (pylibjpeg with its libjpeg, openjpeg and rle plugins, and pyjpegls). Decoding runs isolated
(:mod:`cds.pipelines.isolation`): a decoder that panics, loops or exhausts memory on a crafted file is refused as
``decoder_crashed``, ``decoder_timeout`` or ``decoder_memory`` and never takes the worker down.
"""

from __future__ import annotations

import io
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.isolation import isolation

DEFAULT_MAX_PIXEL_BYTES = 1 << 30  # 1 GiB of decoded pixels and their conversions per instance
DEFAULT_MAX_INFLATED_BYTES = 256 << 20  # a deflated dataset may inflate to this much
_INFLATE_CHUNK = 1 << 20
_PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
PIXEL_KEYWORDS = (  # the Image Pixel module, frames, and what the modality and VOI LUTs read
    "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration", "Rows", "Columns", "BitsAllocated",
    "BitsStored", "HighBit", "PixelRepresentation", "NumberOfFrames", "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths", "PixelPaddingValue", "PixelPaddingRangeLimit", "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor", "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData", "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData", "ICCProfile", "RescaleSlope", "RescaleIntercept", "RescaleType",
    "ModalityLUTSequence", "VOILUTSequence", "WindowCenter", "WindowWidth", "VOILUTFunction", "Modality",
    "PixelData", "FloatPixelData", "DoubleFloatPixelData",
)  # fmt: skip
# What a decoder child imports on its warm-up (prestart_decoders): this module (the decode function's home), the
# conversions, pydicom's pixel machinery and its plugins for compressed syntaxes.
DECODER_MODULES = ("cds.pipelines.imaging.dicom_reader", "cds.pipelines.imaging.pixel_values",
                   "pydicom.pixels.processing", "pydicom.pixels.decoders", "pylibjpeg", "openjpeg", "libjpeg",
                   "rle", "jpeg_ls")  # fmt: skip
_NO_DECODER = ("decoders available", "missing required dependencies", "missing dependencies", "not supported")


@dataclass(frozen=True)
class DicomInstance:
    """A parsed instance: its dataset (pixels not yet decoded) and where it came from."""

    dataset: Any  # pydicom.Dataset
    source: str

    def pixels(self, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES, conversion: Conversion | None = None
               ) -> np.ndarray:  # fmt: skip
        """Decoded (and converted) pixel array, after the size and length checks (see :func:`decode_pixels`)."""
        return decode_pixels(self, max_pixel_bytes, conversion)


@dataclass(frozen=True)
class Conversion:
    """What is done to decoded pixels in the decoder process, and the peak memory it adds per sample.

    Attributes:
        function: ``function(pixels, dataset) -> array``; module-level (it is sent to the decoder process by name).
        work_bytes_per_sample: Bytes per sample the conversion holds at its peak, beyond the decoded samples
            (for example 8 for a float64 intermediate plus 4 for the float32 result: 12).
    """

    function: Callable[[np.ndarray, Any], np.ndarray]
    work_bytes_per_sample: int


def _refuse(source: str, code: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{source}: {message}", code=code)


def inflate(data: bytes | memoryview, limit: int, source: str = "input") -> bytes:
    """Raw-deflate ``data`` (PS3.5 A.5) with a streaming decompressor that stops once ``limit`` bytes are out.

    Raises:
        InvalidInputError: ``inflated_too_large`` (more than ``limit`` bytes) or ``corrupt_deflate``.
    """
    inflater, chunks, size = zlib.decompressobj(-zlib.MAX_WBITS), [], 0
    pending: bytes | memoryview = data
    try:
        while pending and not inflater.eof:
            chunk = inflater.decompress(pending, _INFLATE_CHUNK)
            size += len(chunk)
            if size > limit:
                raise _refuse(source, "inflated_too_large", f"the deflated dataset inflates beyond the "
                                                            f"{limit / 2**20:.0f} MiB limit; refused")  # fmt: skip
            chunks.append(chunk)
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        raise _refuse(source, "corrupt_deflate", f"the deflated dataset is corrupt ({exc})") from exc
    if not inflater.eof:
        raise _refuse(source, "corrupt_deflate", "the deflated dataset is truncated")
    return b"".join(chunks)


def _bare_dataset(raw: bytes) -> Any:
    """A dataset stored without the Part 10 preamble and file meta (older and some vendors' systems write these).

    Taken only when its first element is an identifying one (group 0008) in little-endian order and it names its SOP
    Class and Instance; the file meta it lacks is filled in from those and from the encoding pydicom detected.
    """
    import struct

    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if len(raw) < 8 or struct.unpack("<H", raw[:2])[0] != 0x0008:
        raise InvalidDicomError("no DICM prefix, and not a bare dataset either (it does not start with group 0008)")
    dataset = pydicom.dcmread(io.BytesIO(raw), force=True)
    if not dataset.get("SOPClassUID") or not dataset.get("SOPInstanceUID") or not dataset.is_little_endian:
        raise InvalidDicomError("no DICM prefix, and the bare dataset does not name its SOP Class and Instance")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    meta.TransferSyntaxUID = ImplicitVRLittleEndian if dataset.is_implicit_VR else ExplicitVRLittleEndian
    dataset.file_meta = meta
    return dataset


def _parse(raw: bytes, source: str, max_inflated_bytes: int) -> Any:
    """The dataset of Part 10 bytes ``raw``, or of a bare dataset (:func:`_bare_dataset`).

    A deflated body is inflated within ``max_inflated_bytes`` first.
    """
    import pydicom
    from pydicom.dataset import FileDataset
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble

    if raw[128:132] != b"DICM":
        return _bare_dataset(raw)
    stream = io.BytesIO(raw)
    preamble = read_preamble(stream, False)
    meta = _read_file_meta_info(stream)  # what dcmread reads first; pydicom is pinned below 3.1
    if meta.get("TransferSyntaxUID") != pydicom.uid.DeflatedExplicitVRLittleEndian:
        dataset = pydicom.dcmread(io.BytesIO(raw), force=False)
        if not len(dataset) and len(pydicom.dcmread(io.BytesIO(raw), force=False, stop_before_pixels=True)):
            # pydicom gives an empty dataset when the file ends inside undefined-length pixel data
            raise _refuse(source, "truncated_file", "the file ends inside its pixel data (cut off in transfer?)")
        return dataset
    body = inflate(memoryview(raw)[stream.tell():], max_inflated_bytes, source)
    dataset = FileDataset(source, read_dataset(io.BytesIO(body), False, True), preamble, meta, False, True)
    dataset.set_original_encoding(False, True, dataset._character_set)
    return dataset


def read_instance(data: Path | bytes, *, name: str | None = None,
                  max_inflated_bytes: int = DEFAULT_MAX_INFLATED_BYTES) -> DicomInstance:  # fmt: skip
    """Parse a DICOM file or in-memory bytes without decoding pixels.

    Raises:
        InvalidInputError: ``empty_file``, ``not_dicom``, ``corrupt_deflate``, ``inflated_too_large`` or
            ``invalid_header``.
    """
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset
    from pydicom.errors import InvalidDicomError
    from pydicom.uid import UID

    source = name or (data.name if isinstance(data, Path) else "<bytes>")
    raw = data.read_bytes() if isinstance(data, Path) else data
    if not raw:
        raise _refuse(source, "empty_file", "the file is empty")
    try:
        dataset = _parse(raw, source, max_inflated_bytes)
        for _element in dataset.iterall():  # every value converted now: later reads of the header cannot fail
            pass
        for _element in getattr(dataset, "file_meta", Dataset()).iterall():  # the file meta header too
            pass
    except InvalidInputError:
        raise
    except InvalidDicomError as exc:
        raise _refuse(source, "not_dicom", f"not a DICOM Part 10 file ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - pydicom raises many kinds on a malformed header (OSError for an item
        # without a tag, BytesLengthException for a value of the wrong length, RecursionError for endless nesting,
        # struct.error, ...); the block runs only pydicom's parser on the untrusted bytes, so all mean "unreadable"
        raise _refuse(source, "not_dicom", f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
    try:
        syntax = dataset.file_meta.TransferSyntaxUID
    except AttributeError as exc:
        raise _refuse(source, "invalid_header", "the file meta header has no Transfer Syntax UID") from exc
    if not isinstance(syntax, UID | str | bytes):  # a sequence or a number where a UID belongs
        raise _refuse(source, "invalid_header", f"the Transfer Syntax UID is a {type(syntax).__name__}, not a UID")
    if not isinstance(syntax, UID):  # written with another VR (PN, LO, ...): read as the UID its text names
        text = syntax.decode("ascii", "replace") if isinstance(syntax, bytes) else str(syntax)
        dataset.file_meta[0x00020010] = DataElement(0x00020010, "UI", UID(text.strip("\x00 ")))
    return DicomInstance(dataset=dataset, source=source)


def _attribute(instance: DicomInstance, keyword: str, default: int | None = None) -> int:
    try:
        value = instance.dataset.get(keyword, default)
        number = None if value is None else int(value)
    except (TypeError, ValueError, EOFError, OverflowError) as exc:
        raise _refuse(instance.source, "invalid_header", f"{keyword} is not an integer ({exc})") from exc
    if number is None:
        raise _refuse(instance.source, "invalid_header", f"image without {keyword}")
    return number


def declared_samples(instance: DicomInstance) -> int:
    """Samples the header declares: rows × columns × frames × samples per pixel."""
    return declared_pixel_bytes(instance) * 8 // max(_attribute(instance, "BitsAllocated"), 8)


def declared_pixel_bytes(instance: DicomInstance) -> int:
    """Decoded size the header declares: rows × columns × frames × samples × bits allocated / 8."""
    rows, columns = _attribute(instance, "Rows"), _attribute(instance, "Columns")
    frames = _attribute(instance, "NumberOfFrames", 1) or 1
    samples = _attribute(instance, "SamplesPerPixel", 1)
    bits = _attribute(instance, "BitsAllocated")
    if min(rows, columns, frames, samples, bits) <= 0:
        raise _refuse(instance.source, "invalid_header",
                      f"non-positive image size rows={rows} columns={columns} frames={frames} bits={bits}")
    return rows * columns * frames * samples * max(bits, 8) // 8


def check_pixel_data(instance: DicomInstance) -> None:
    """Whether the pixel data is all there, without decoding it (STOW-RS checks this before it keeps a file).

    An image header (rows, columns, bits) without pixel data is a file cut off in its pixel data (pydicom drops an
    element the file ends inside of); native pixel data must be as long as the header declares; encapsulated pixel
    data must hold its items whole, one frame or more per declared frame.

    Raises:
        InvalidInputError: ``no_pixel_data`` (not an image: an SR, a presentation state ...), ``truncated_file``,
            ``pixel_data_short``, ``pixel_data_corrupt`` or ``invalid_header``.
    """
    ds = instance.dataset
    if not any(tag in ds for tag in _PIXEL_TAGS):
        if all(keyword in ds for keyword in ("Rows", "Columns", "BitsAllocated")):
            raise _refuse(instance.source, "truncated_file", "the header describes an image but the file ends "
                                                             "before its pixel data is complete")  # fmt: skip
        kind = str(ds.get("Modality", "")) or str(ds.get("SOPClassUID", "unknown"))
        raise _refuse(instance.source, "no_pixel_data", f"not an image (no pixel data; {kind})")
    if "PixelData" not in ds:
        return
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_transfer_syntax:
        return  # decode_pixels refuses it as unsupported_transfer_syntax
    declared = declared_pixel_bytes(instance)
    if not ds.PixelData:  # an element of length 0 (its value reads as None): nothing to decode
        raise _refuse(instance.source, "pixel_data_short", "the pixel data element is empty")
    if not syntax.is_encapsulated:
        stored = len(ds.PixelData)
        bits = _attribute(instance, "BitsAllocated")
        expected = declared if bits >= 8 else declared * bits // 8
        if stored < expected:
            raise _refuse(instance.source, "pixel_data_short",
                          f"pixel data has {stored} bytes, the header declares {expected}")
        return
    from pydicom.encaps import generate_frames

    frames = _attribute(instance, "NumberOfFrames", 1) or 1
    try:
        found = sum(1 for _ in generate_frames(ds.PixelData, number_of_frames=frames))
    except Exception as exc:  # noqa: BLE001 - pydicom's item parser raises several kinds on broken items
        raise _refuse(instance.source, "pixel_data_corrupt", f"the encapsulated pixel data is malformed "
                                                             f"({type(exc).__name__}: {exc})") from exc  # fmt: skip
    if found < frames:
        raise _refuse(instance.source, "truncated_file", f"the pixel data holds {found} of {frames} frames")


def decode_pixels(instance: DicomInstance, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES,
                  conversion: Conversion | None = None) -> np.ndarray:  # fmt: skip
    """Check limits from the header, then decode (and convert) in an isolated decoder process.

    The budget ``max_pixel_bytes`` holds the decoded samples plus ``conversion.work_bytes_per_sample`` for each.

    Raises:
        InvalidInputError: ``no_pixel_data``, ``truncated_file``, ``invalid_header``, ``image_too_large``,
            ``pixel_data_short``, ``unsupported_transfer_syntax``, ``pixel_data_corrupt``, ``decoder_crashed``,
            ``decoder_timeout`` or ``decoder_memory``.
    """
    ds = instance.dataset
    if not any(tag in ds for tag in _PIXEL_TAGS):
        check_pixel_data(instance)  # says why there are none: not an image, or a file cut off
    declared = declared_pixel_bytes(instance)
    needed = declared + declared_samples(instance) * (conversion.work_bytes_per_sample if conversion else 0)
    if needed > max_pixel_bytes:
        raise _refuse(instance.source, "image_too_large",
                      f"header declares {declared / 2**20:.0f} MiB of pixels, {needed / 2**20:.0f} MiB with their "
                      f"conversions, over the {max_pixel_bytes / 2**20:.0f} MiB limit; refused before decoding")
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_transfer_syntax:  # a private or mistyped UID: no decoder knows how the pixels are encoded
        raise _refuse(instance.source, "unsupported_transfer_syntax",
                      f"the Transfer Syntax UID {str(syntax)[:64]!r} is not a known transfer syntax")
    check_pixel_data(instance)  # lengths, items and frames, after the budget: an absurd header is too large first
    function = conversion.function if conversion else None
    try:
        return isolation().run(_decode, _pixel_dataset(ds), instance.source, function, source=instance.source)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:  # a value that cannot go to the decoder
        raise _refuse(instance.source, "invalid_header", f"the image attributes cannot be handed to the decoder "
                                                         f"({type(exc).__name__})") from exc  # fmt: skip


def prestart_decoders() -> int:
    """Start the decoder processes with their decoders imported (a service's start-up, in the background)."""
    return isolation().prestart(DECODER_MODULES)


def _pixel_dataset(dataset: Any) -> Any:
    """The part of ``dataset`` that decoding and the conversions read: its file meta and :data:`PIXEL_KEYWORDS`.

    Only this goes to the decoder process, so patient data and odd values elsewhere in the header stay here.
    """
    from pydicom.dataset import Dataset, FileMetaDataset

    subset = Dataset()
    subset.file_meta = FileMetaDataset(dataset.file_meta)
    for keyword in PIXEL_KEYWORDS:
        if keyword in dataset:
            subset.add(dataset.data_element(keyword))
    subset.set_original_encoding(dataset.original_encoding[0], dataset.original_encoding[1],
                                 dataset.original_character_set)  # fmt: skip
    return subset


def _decode(dataset: Any, source: str, convert: Callable[[np.ndarray, Any], np.ndarray] | None = None
            ) -> np.ndarray:  # fmt: skip
    """Decode ``dataset``'s pixels and apply ``convert`` (runs in an isolated child process).

    Raises:
        InvalidInputError: ``unsupported_transfer_syntax`` or ``pixel_data_corrupt``.
    """
    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        pixels = np.asarray(dataset.pixel_array)
    except (NotImplementedError, RuntimeError) as exc:
        text = str(exc)
        if "all available plugins" not in text and any(s in text for s in _NO_DECODER):
            raise _refuse(source, "unsupported_transfer_syntax",
                          f"no installed decoder for {syntax.name} ({syntax})") from exc
        raise _refuse(source, "pixel_data_corrupt", f"{syntax.name}: {' '.join(text.split())}") from exc
    except (ValueError, TypeError, AttributeError, KeyError, EOFError, OverflowError) as exc:
        raise _refuse(source, "pixel_data_corrupt", f"{type(exc).__name__}: {exc}") from exc
    if convert is None:
        return pixels
    try:
        return convert(pixels, dataset)
    except InvalidInputError:
        raise  # the conversion's own refusal (not_greyscale), with its code
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, OverflowError) as exc:
        raise _refuse(source, "invalid_header", f"the LUT or window attributes cannot be applied "
                                               f"({type(exc).__name__}: {exc})") from exc  # fmt: skip
