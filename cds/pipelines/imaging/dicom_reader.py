"""Read one DICOM instance defensively: header first, size limits before any pixel is decoded, one reason per refusal.

Every failure is an :class:`~cds.errors.InvalidInputError` whose ``code`` says what was wrong, so a hostile or
broken file is refused with a reason and never crashes a worker:

``empty_file``, ``not_dicom`` (no DICM preamble or unparseable header), ``invalid_header`` (a required attribute
is missing or malformed), ``no_pixel_data`` (an SR, RT or other non-image object), ``image_too_large`` (rows ×
columns × frames × samples × bits over the cap, checked before decoding), ``pixel_data_short`` (fewer bytes than
the header declares), ``unsupported_transfer_syntax`` (no installed decoder), ``pixel_decode_failed``.

Compressed transfer syntaxes (JPEG baseline/extended/lossless, JPEG-LS, JPEG 2000, RLE) decode through pydicom's
pixel-data plugins (pylibjpeg with its libjpeg, openjpeg and rle plugins, and pyjpegls). Decoding runs isolated
(:mod:`cds.pipelines.isolation`): a decoder that panics, loops or exhausts memory on a crafted file is refused as
``decoder_crashed``, ``decoder_timeout`` or ``decoder_memory`` and never takes the worker down.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.isolation import isolation

DEFAULT_MAX_PIXEL_BYTES = 1 << 30  # 1 GiB of decoded pixels per instance
_NO_DECODER = ("decoders available", "missing required dependencies", "missing dependencies", "not supported")


@dataclass(frozen=True)
class DicomInstance:
    """A parsed instance: its dataset (pixels not yet decoded) and where it came from."""

    dataset: Any  # pydicom.Dataset
    source: str

    def pixels(self, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> np.ndarray:
        """Decoded pixel array, after the size and length checks (see :func:`decode_pixels`)."""
        return decode_pixels(self, max_pixel_bytes)


def _refuse(source: str, code: str, message: str) -> InvalidInputError:
    return InvalidInputError(f"{source}: {message}", code=code)


def read_instance(data: Path | bytes, *, name: str | None = None) -> DicomInstance:
    """Parse a DICOM file or in-memory bytes without decoding pixels.

    Raises:
        InvalidInputError: ``empty_file``, ``not_dicom`` or ``invalid_header``.
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    source = name or (data.name if isinstance(data, Path) else "<bytes>")
    raw = data.read_bytes() if isinstance(data, Path) else data
    if not raw:
        raise _refuse(source, "empty_file", "the file is empty")
    try:
        dataset = pydicom.dcmread(io.BytesIO(raw), force=False)
    except InvalidDicomError as exc:
        raise _refuse(source, "not_dicom", f"not a DICOM Part 10 file ({exc})") from exc
    except (EOFError, ValueError, KeyError, TypeError, AttributeError, OverflowError, NotImplementedError) as exc:
        raise _refuse(source, "not_dicom", f"unreadable DICOM header ({type(exc).__name__}: {exc})") from exc
    try:
        dataset.file_meta.TransferSyntaxUID  # noqa: B018 - raises when the meta header lacks it
    except AttributeError as exc:
        raise _refuse(source, "invalid_header", "the file meta header has no Transfer Syntax UID") from exc
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


def decode_pixels(instance: DicomInstance, max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES) -> np.ndarray:
    """Check limits from the header, then decode.

    Raises:
        InvalidInputError: ``no_pixel_data``, ``invalid_header``, ``image_too_large``, ``pixel_data_short``,
            ``unsupported_transfer_syntax``, ``pixel_decode_failed``, ``decoder_crashed``, ``decoder_timeout`` or
            ``decoder_memory``.
    """
    ds = instance.dataset
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        kind = str(ds.get("Modality", "")) or str(ds.get("SOPClassUID", "unknown"))
        raise _refuse(instance.source, "no_pixel_data", f"not an image (no pixel data; {kind})")
    declared = declared_pixel_bytes(instance)
    if declared > max_pixel_bytes:
        raise _refuse(instance.source, "image_too_large",
                      f"header declares {declared / 2**20:.0f} MiB of pixels, over the {max_pixel_bytes / 2**20:.0f} "
                      "MiB limit; refused before decoding")
    syntax = ds.file_meta.TransferSyntaxUID
    if not syntax.is_compressed and "PixelData" in ds:
        stored = len(ds.PixelData)
        bits = _attribute(instance, "BitsAllocated")
        expected = declared if bits >= 8 else declared * bits // 8
        if stored < expected:
            raise _refuse(instance.source, "pixel_data_short",
                          f"pixel data has {stored} bytes, the header declares {expected}")
    return isolation().run(_decode, ds, instance.source, source=instance.source)


def _decode(dataset: Any, source: str) -> np.ndarray:
    """Decode ``dataset``'s pixels (runs in an isolated child process).

    Raises:
        InvalidInputError: ``unsupported_transfer_syntax`` or ``pixel_decode_failed``.
    """
    syntax = dataset.file_meta.TransferSyntaxUID
    try:
        return np.asarray(dataset.pixel_array)
    except (NotImplementedError, RuntimeError) as exc:
        text = str(exc)
        if "all available plugins" not in text and any(s in text for s in _NO_DECODER):
            raise _refuse(source, "unsupported_transfer_syntax",
                          f"no installed decoder for {syntax.name} ({syntax})") from exc
        raise _refuse(source, "pixel_decode_failed", f"{syntax.name}: {' '.join(text.split())}") from exc
    except (ValueError, TypeError, AttributeError, KeyError, EOFError, OverflowError) as exc:
        raise _refuse(source, "pixel_decode_failed", f"{type(exc).__name__}: {exc}") from exc
