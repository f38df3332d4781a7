"""WADO-RS rendered and frames: a stored instance as an ordinary picture, or its frames as native pixel bytes.

Rendered: one picture (JPEG or PNG), windowed on the server.

The pixels are decoded by the defensive reader (in its decoder process, within the decoding budgets); a greyscale
image is windowed by the request's ``window`` (centre, width; PS3.18 linear function), else the file's own
window, else its full range, and a MONOCHROME1 image is inverted so dense is bright; a colour image is shown as
stored. A multi-frame instance shows its first frame. ``viewport`` shrinks the picture to fit, aspect kept.

Frames: the numbered frames' decoded stored values, uncompressed little-endian as PS3.18 serves them to a viewer
that does its own display (1-bit frames packed, least significant bit first).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError, NotFoundError
from cds.pipelines.imaging.dicom_reader import DicomInstance, read_instance
from cds.pipelines.imaging.pixel_values import MODALITY_FLOAT32
from cds.serving.ui.render import fit, window_level
from cds.serving.ui.sources import first_number

MEDIA_TYPES = ("image/jpeg", "image/png")


def rendered(path: Path, *, media_type: str, window: tuple[float, float] | None = None,
             viewport: int | None = None) -> bytes:  # fmt: skip
    """The instance at ``path`` as ``media_type`` bytes.

    Raises:
        InvalidInputError: Any reason of the DICOM reader, or ``not_an_image``.
    """
    instance = _image(path)
    values = instance.pixels(conversion=MODALITY_FLOAT32)
    colour = str(instance.dataset.get("PhotometricInterpretation", "")).startswith(("RGB", "YBR"))
    if values.ndim == (4 if colour else 3):
        values = values[0]  # the first frame
    if colour:
        picture = np.clip(values, 0, 255).astype(np.uint8)
    else:
        centre = first_number(instance.dataset.get("WindowCenter"))
        width = first_number(instance.dataset.get("WindowWidth"))
        if window is None and centre is not None and width is not None and width > 0:
            window = (centre, width)
        if window is None:
            low, high = float(values.min()), float(values.max())
            window = ((high + low) / 2.0, max(high - low, 1.0))
        invert = str(instance.dataset.get("PhotometricInterpretation", "")) == "MONOCHROME1"
        picture = window_level(values, window[1], window[0], invert=invert)
    if viewport:
        picture = fit(picture, viewport)
    return _encode(picture, media_type)


def _encode(picture: np.ndarray, media_type: str) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(picture))
    if media_type == "image/png":
        image.save(buffer, format="PNG", compress_level=3)
    else:
        image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def chosen_media_type(accept: str) -> str | None:
    """The picture type ``Accept`` asks for (JPEG by default, as PS3.18 has it); ``None`` when neither fits."""
    if not accept.strip():
        return "image/jpeg"
    ranges = [r.split(";")[0].strip().lower() for r in accept.split(",")]
    for media_range in ranges:
        if media_range in MEDIA_TYPES:
            return media_range
        if media_range in ("image/*", "*/*"):
            return "image/jpeg"
    return None


def frames(path: Path, numbers: list[int]) -> list[bytes]:
    """The frames ``numbers`` (from 1) of the instance at ``path`` as native little-endian bytes.

    Raises:
        InvalidInputError: Any reason of the DICOM reader, or ``not_an_image``.
        NotFoundError: ``frame_not_found`` for a number beyond the instance's frames.
    """
    return _frames(_image(path), numbers)


def _image(path: Path) -> DicomInstance:
    """The instance at ``path``, read defensively; it must hold pixel data.

    Raises:
        InvalidInputError: Any reason of the DICOM reader, or ``not_an_image``.
    """
    instance = read_instance(path, name=path.name)
    if "PixelData" not in instance.dataset:
        raise InvalidInputError("the instance holds no image (an SR or other non-image object)", code="not_an_image")
    return instance


def _frames(instance: DicomInstance, numbers: list[int]) -> list[bytes]:
    values = instance.pixels()
    count = int(instance.dataset.get("NumberOfFrames", 1) or 1)
    stack = values if count > 1 else values[None]
    missing = [n for n in numbers if not 1 <= n <= count]
    if missing:
        raise NotFoundError(f"frame {missing[0]} of an instance with {count} frame(s)", code="frame_not_found")
    packed = int(instance.dataset.get("BitsAllocated", 8)) == 1
    out = []
    for number in numbers:
        frame = np.ascontiguousarray(stack[number - 1])
        out.append(np.packbits(frame.astype(np.uint8), bitorder="little").tobytes() if packed
                   else frame.astype(frame.dtype.newbyteorder("<"), copy=False).tobytes())  # fmt: skip
    return out


PIXEL_DATA = 0x7FE00010


def bulk_data(path: Path, tag: int) -> bytes:
    """The value of the top-level element ``tag`` of the instance at ``path``.

    Pixel data comes as every frame's decoded stored values, uncompressed little-endian (a stored compressed
    encoding is not passed on).

    Raises:
        NotFoundError: ``element_not_found`` when the instance has no such element, or it holds no bytes.
    """
    instance = read_instance(path, name=path.name)
    if tag == PIXEL_DATA and tag in instance.dataset:  # decoded from the instance already read
        count = int(instance.dataset.get("NumberOfFrames", 1) or 1)
        return b"".join(_frames(instance, list(range(1, count + 1))))
    element = instance.dataset.get(tag)
    if element is None or not isinstance(element.value, bytes | bytearray):
        raise NotFoundError(f"the instance has no bulk element {tag:08X}", code="element_not_found")
    return bytes(element.value)
