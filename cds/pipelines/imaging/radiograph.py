"""Read a projection radiograph (DICOM CR/DX or grey-level PNG) into display-normalised pixels; scale to model input.

Display normalisation: DICOM pixels go through the modality LUT (rescale slope/intercept), then the VOI LUT or
window when the file has one, and MONOCHROME1 images are inverted, so that in the result bright always means
dense; the result is scaled to [0, 1] over its own range. PNG pixels are divided by their bit depth's maximum.
Training and serving read images through this one module.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError
from cds.pipelines.imaging.dicom_reader import DicomInstance, read_instance
from cds.pipelines.imaging.pixel_values import DISPLAY

MODEL_RANGE = (-1024.0, 1024.0)  # TorchXRayVision's input convention: [0, 1] display values scaled to this range
PNG_SUFFIXES = frozenset({".png"})


def display_pixels(instance: DicomInstance) -> np.ndarray:
    """Display-normalised float32 [H, W] in [0, 1] of a single-frame grey-level DICOM image (see ``DISPLAY``).

    Raises:
        InvalidInputError: Any reason from decoding, or ``not_greyscale`` (colour or multi-frame).
    """
    return instance.pixels(conversion=DISPLAY)


def _png_pixels(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            mode = image.mode
            pixels = np.asarray(image)
    except (UnidentifiedImageError, OSError) as exc:
        raise InvalidInputError(f"{path.name}: not a readable PNG ({exc})", code="unreadable_image") from exc
    if pixels.ndim != 2:
        raise InvalidInputError(f"{path.name}: expected a grey-level image, got mode {mode}", code="not_greyscale")
    maximum = 65535.0 if pixels.dtype == np.uint16 or mode.startswith("I") else 255.0
    return (pixels.astype(np.float32) / maximum).clip(0.0, 1.0)


def read_radiograph(path: Path) -> np.ndarray:
    """Display-normalised float32 [H, W] pixels in [0, 1] (bright = dense) of a DICOM or PNG file.

    Raises:
        InvalidInputError: Unreadable PNG (``unreadable_image``), any DICOM reading reason (see
            :mod:`cds.pipelines.imaging.dicom_reader`), or not a single grey-level frame (``not_greyscale``).
    """
    if path.suffix.lower() in PNG_SUFFIXES:
        return _png_pixels(path)
    return display_pixels(read_instance(path))


def resize(pixels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 [H, W] resized to ``shape``: area-averaged when shrinking, bilinear when enlarging."""
    import torch
    import torch.nn.functional as functional

    tensor = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32))[None, None]
    if tuple(tensor.shape[-2:]) != tuple(shape):
        enlarge = tensor.shape[-2] < shape[0] or tensor.shape[-1] < shape[1]
        mode = "bilinear" if enlarge else "area"
        extra = {"align_corners": False} if enlarge else {}
        tensor = functional.interpolate(tensor, size=tuple(shape), mode=mode, **extra)
    resized: np.ndarray = tensor[0, 0].numpy()
    return resized


def to_model_input(pixels: np.ndarray, size: int, value_range: tuple[float, float] = MODEL_RANGE) -> np.ndarray:
    """float32 [1, size, size] in ``value_range``: resized (:func:`resize`) and scaled from [0, 1]."""
    low, high = value_range
    scaled: np.ndarray = (resize(pixels, (size, size))[None] * (high - low) + low).astype(np.float32)
    return scaled
