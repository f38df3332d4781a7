"""WADO-RS rendered: one stored instance as an ordinary picture (JPEG or PNG), windowed on the server.

The pixels are decoded by the defensive reader (in its decoder process, within the decoding budgets); a greyscale
image is windowed by the request's ``window`` (centre, width; PS3.18 linear function), else the file's own
window, else its full range, and a MONOCHROME1 image is inverted so dense is bright; a colour image is shown as
stored. A multi-frame instance shows its first frame. ``viewport`` shrinks the picture to fit, aspect kept.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.imaging.dicom_reader import read_instance
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
    instance = read_instance(path, name=path.name)
    if "PixelData" not in instance.dataset:
        raise InvalidInputError("the instance holds no image (an SR or other non-image object)", code="not_an_image")
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
