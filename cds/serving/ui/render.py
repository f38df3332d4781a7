"""Pictures for the viewer: a windowed grey image, the heatmap layer and segmentation outlines, as PNG bytes.

Window/level is applied here, on the server, to the modality values (after rescale slope and intercept: Hounsfield
units for CT), so the browser gets an ordinary 8-bit PNG it can show without decoding DICOM. The layers are RGBA
PNGs drawn over the image by the browser, which sets their opacity and visibility without another request.
"""

from __future__ import annotations

import io

import numpy as np

from cds.interop.outputs.radiograph import HEATMAP_FLOOR
from cds.interop.outputs.segmentation import PALETTE


def window_level(values: np.ndarray, window: float, level: float, *, invert: bool = False) -> np.ndarray:
    """uint8 grey: ``values`` mapped linearly from [level - window/2, level + window/2] to [0, 255], clipped.

    ``invert`` shows a MONOCHROME1 image the usual way round (dense is bright).
    """
    low = level - window / 2.0
    scaled = np.clip((np.asarray(values, dtype=np.float32) - np.float32(low)) / np.float32(max(window, 1e-6)), 0, 1)
    if invert:
        scaled = 1.0 - scaled
    grey: np.ndarray = np.round(scaled * 255.0).astype(np.uint8)
    return grey


def fit(grey: np.ndarray, max_side: int) -> np.ndarray:
    """``grey`` shrunk (box filter, aspect kept) so that its longer side is at most ``max_side``."""
    from PIL import Image

    if max(grey.shape[:2]) <= max_side:
        return grey
    image = Image.fromarray(grey)
    image.thumbnail((max_side, max_side), Image.Resampling.BOX)
    return np.asarray(image)


def png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array: [H, W] grey, [H, W, 3] RGB or [H, W, 4] RGBA."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def heatmap_layer(heat: np.ndarray, floor: float = HEATMAP_FLOOR) -> np.ndarray:
    """uint8 RGBA: red (cool) to yellow (hot), opacity following the heat; transparent at or below ``floor``."""
    heat = np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)
    shown = heat > floor
    layer = np.zeros((*heat.shape, 4), dtype=np.uint8)
    layer[..., 0] = 255
    layer[..., 1] = np.round(255.0 * heat).astype(np.uint8)
    layer[..., 3] = np.where(shown, np.round(255.0 * heat), 0).astype(np.uint8)
    return layer


def colour(label_value: int) -> str:
    """``#rrggbb`` of a label value, as in the pre-read's own overlay (cds.interop.outputs.segmentation)."""
    r, g, b = (int(c) for c in PALETTE[label_value % len(PALETTE)])
    return f"#{r:02x}{g:02x}{b:02x}"


def outline_layer(labels: np.ndarray) -> np.ndarray:
    """uint8 RGBA: the border pixels of each labelled region in its colour, everything else transparent.

    A pixel is on a border when it is labelled and one of its four neighbours holds another value.
    """
    labels = np.asarray(labels)
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    differs = ((padded[:-2, 1:-1] != centre) | (padded[2:, 1:-1] != centre)
               | (padded[1:-1, :-2] != centre) | (padded[1:-1, 2:] != centre))  # fmt: skip
    border = differs & (labels > 0)
    layer = np.zeros((*labels.shape, 4), dtype=np.uint8)
    layer[..., :3] = PALETTE[np.asarray(labels, dtype=np.int64) % len(PALETTE)].astype(np.uint8)
    layer[..., 3] = np.where(border, 255, 0).astype(np.uint8)
    layer[~border, :3] = 0
    return layer
