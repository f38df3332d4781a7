"""Domain randomisation of radiographs: one generated scene → what a pre-read would see from some vendor's film.

A scene (float [H, W] in [0, 1], bright = dense; a chest from :mod:`training.data.chest_xray` or another kind from
:mod:`training.data.non_chest`) goes through what happens between a patient and a PACS, each step a *family* that
is drawn at random for training and can be applied alone for held-out evaluation:

* geometry: ``rotation`` (±15°), ``size_aspect`` (crops and pads to other aspect ratios and sizes);
* the room: ``collimation`` (unexposed borders, or display shutters), ``devices`` (tubes, lines, wires, ECG
  electrodes, a pacemaker), ``markers_text`` (side markers and burned-in text), ``grid`` (anti-scatter grid lines);
* processing on the modality: ``gamma``, ``equalised`` (histogram equalisation), ``unsharp`` (unsharp masking /
  dynamic range compression), ``noise_blur``;
* storage: ``bit_depth`` (8 to 16 bits stored, rescale slope/intercept), ``monochrome1``, ``voi_lut`` (window
  centre/width, SIGMOID windows, a VOI LUT table), ``jpeg`` (lossy JPEG artefacts).

The stored pixels and their header go through the product's own display conversion
(:data:`cds.pipelines.imaging.pixel_values.DISPLAY`: modality LUT, VOI LUT or window, MONOCHROME1 inverted,
[0, 1] over the image's range), so training sees exactly what serving computes.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable

import numpy as np
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from scipy import ndimage

from cds.pipelines.imaging.pixel_values import DISPLAY

Step = Callable[[np.ndarray, np.random.Generator], np.ndarray]
SCENE_FAMILIES = ("rotation", "size_aspect", "collimation", "devices", "markers_text", "grid", "gamma", "equalised",
                  "unsharp", "noise_blur")
STORAGE_FAMILIES = ("bit_depth", "monochrome1", "voi_lut", "jpeg")
FAMILIES: tuple[str, ...] = SCENE_FAMILIES + STORAGE_FAMILIES


def _rotation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angle = float(rng.uniform(5.0, 15.0) * rng.choice((-1, 1)))
    rotated: np.ndarray = ndimage.rotate(image, angle, reshape=False, order=1, mode="constant",
                                         cval=float(np.percentile(image, 2)))
    return rotated


def _size_aspect(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Crop up to 10 % off some sides, pad others with air, so the aspect ratio goes from 0.75 to 1.33."""
    height, width = image.shape
    top, bottom, left, right = (int(rng.uniform(0.0, 0.1) * n) for n in (height, height, width, width))
    image = image[top:height - bottom, left:width - right]
    aspect = float(rng.uniform(0.75, 1.33))
    h, w = image.shape
    air = float(np.percentile(image, 1))
    if w / h < aspect:  # pad columns
        extra = int(h * aspect) - w
        lead = int(rng.integers(0, extra + 1))
        image = np.pad(image, ((0, 0), (lead, extra - lead)), constant_values=air)
    else:
        extra = int(w / aspect) - h
        lead = int(rng.integers(0, extra + 1))
        image = np.pad(image, ((lead, extra - lead), (0, 0)), constant_values=air)
    return image


def _collimation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unexposed borders (dense: white) or a display shutter (black), on two to four sides, slightly tilted."""
    height, width = image.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    tilt = float(rng.uniform(-0.03, 0.03))
    inside = np.ones_like(image, dtype=bool)
    for side in rng.permutation(4)[: int(rng.integers(2, 5))]:
        margin = float(rng.uniform(0.02, 0.1))
        if side == 0:
            inside &= y + tilt * x > margin * height
        elif side == 1:
            inside &= y - tilt * x < (1 - margin) * height
        elif side == 2:
            inside &= x - tilt * y > margin * width
        else:
            inside &= x + tilt * y < (1 - margin) * width
    value = float(image.max()) * rng.uniform(0.9, 1.0) if rng.random() < 0.7 else float(image.min())
    outside = ndimage.gaussian_filter((~inside).astype(np.float32), rng.uniform(0.0, 1.5))
    return image * (1 - outside) + value * outside


def _devices(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tubes and lines (bright curves), ECG electrodes (rings) and sometimes a pacemaker with its lead."""
    height, width = image.shape
    bright = float(np.percentile(image, 99.5))
    out = image.copy()
    t = np.linspace(0.0, 1.0, 4 * max(height, width))
    for _ in range(int(rng.integers(1, 4))):
        p = rng.uniform(0.1, 0.9, (3, 2))
        curve = ((1 - t)[:, None] ** 2 * p[0] + 2 * ((1 - t) * t)[:, None] * p[1] + (t ** 2)[:, None] * p[2])
        rows = np.clip((curve[:, 0] * height).astype(int), 0, height - 1)
        cols = np.clip((curve[:, 1] * width).astype(int), 0, width - 1)
        line = np.zeros_like(image)
        line[rows, cols] = 1.0
        line = ndimage.maximum_filter(line, size=int(rng.integers(1, 4)))
        out = np.maximum(out, line * bright * rng.uniform(0.8, 1.0))
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    for _ in range(int(rng.integers(0, 5))):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.01, 0.02) * width
        ring = np.abs(np.hypot(y - cy, x - cx) - r) < max(1.0, r * 0.3)
        out = np.where(ring, bright, out)
    if rng.random() < 0.4:
        cy, cx = rng.uniform(0.15, 0.3) * height, rng.choice((0.2, 0.8)) * width
        box = (np.abs(y - cy) < 0.04 * height) & (np.abs(x - cx) < 0.05 * width)
        out = np.where(box, bright, out)
    return out


def _markers_text(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A side marker (L or R) and one to four lines of burned-in text, white, in the corners."""
    from PIL import Image, ImageDraw, ImageFont

    height, width = image.shape
    font = ImageFont.load_default()
    layer = Image.new("L", (width // 2, height // 2), 0)
    draw = ImageDraw.Draw(layer)
    alphabet = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 :/-.")
    for line in range(int(rng.integers(1, 5))):
        text = "".join(rng.choice(alphabet, int(rng.integers(6, 20))))
        draw.text((int(rng.integers(2, 10)), 4 + 12 * line), text, fill=255, font=font)
    scale = float(rng.uniform(1.0, 2.5)) * max(width, 256) / 512
    layer = layer.resize((max(1, int(layer.width * scale)), max(1, int(layer.height * scale))))
    text_mask = np.asarray(layer, dtype=np.float32)[: height, : width] / 255.0
    mask = np.zeros_like(image)
    corner = int(rng.integers(0, 4))
    h, w = text_mask.shape
    r0, c0 = (0 if corner < 2 else height - h), (0 if corner % 2 == 0 else width - w)
    mask[r0:r0 + h, c0:c0 + w] = text_mask
    marker = Image.new("L", (14, 14), 0)
    ImageDraw.Draw(marker).text((3, 1), str(rng.choice(["L", "R"])), fill=255, font=font)
    size = max(8, int(rng.uniform(0.04, 0.08) * width))
    mark = np.asarray(marker.resize((size, size)), dtype=np.float32) / 255.0
    my, mx = int(rng.uniform(0.05, 0.3) * height), int(rng.uniform(0.05, 0.9) * width)
    mark = mark[: height - my, : width - mx]
    mask[my:my + mark.shape[0], mx:mx + mark.shape[1]] = np.maximum(
        mask[my:my + mark.shape[0], mx:mx + mark.shape[1]], mark)
    return np.maximum(image, mask * float(image.max()))


def _grid(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    period = float(rng.uniform(2.1, 5.0))
    axis = np.arange(image.shape[1], dtype=np.float32)[None, :]
    if rng.random() < 0.3:
        axis = np.arange(image.shape[0], dtype=np.float32)[:, None]
    stripes = np.sin(2 * np.pi * axis / period)
    return image * (1.0 + rng.uniform(0.02, 0.06) * stripes)


def _gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    low, high = float(image.min()), float(image.max())
    unit = (image - low) / max(high - low, 1e-6)
    gamma = float(np.exp(rng.uniform(np.log(0.45), np.log(2.2))))
    return unit ** gamma


def _equalised(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Full or partial histogram equalisation (as many vendors' processing flattens the histogram)."""
    ranks = np.argsort(np.argsort(image.reshape(-1), kind="stable"), kind="stable").reshape(image.shape)
    equal = ranks.astype(np.float32) / max(ranks.size - 1, 1)
    low, high = float(image.min()), float(image.max())
    unit = (image - low) / max(high - low, 1e-6)
    weight = float(rng.uniform(0.5, 1.0))
    return weight * equal + (1 - weight) * unit


def _unsharp(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Unsharp masking at a large scale (dynamic range compression) and a small one (edge enhancement)."""
    size = max(image.shape)
    out = image
    for sigma, amount in ((rng.uniform(0.05, 0.15) * size, rng.uniform(0.3, 1.5)),
                          (rng.uniform(0.003, 0.01) * size, rng.uniform(0.3, 2.0))):
        out = out + amount * (out - ndimage.gaussian_filter(out, sigma))
    return out


def _noise_blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = max(image.shape)
    image = ndimage.gaussian_filter(image, rng.uniform(0.0, 2.5) * size / 512)
    spread = float(np.ptp(image)) + 1e-6
    quantum = rng.normal(0.0, 1.0, image.shape) * np.sqrt(np.clip(image - image.min(), 0, None) / spread)
    return image + spread * (rng.uniform(0.0, 0.04) * quantum + rng.uniform(0.0, 0.03) * rng.normal(0, 1, image.shape))


SCENE_STEPS: dict[str, Step] = {
    "rotation": _rotation, "size_aspect": _size_aspect, "collimation": _collimation, "devices": _devices,
    "markers_text": _markers_text, "grid": _grid, "gamma": _gamma, "equalised": _equalised, "unsharp": _unsharp,
    "noise_blur": _noise_blur,
}


def _store(image: np.ndarray, rng: np.random.Generator, families: set[str]) -> tuple[np.ndarray, Dataset]:
    """Stored pixel values and the header attributes the display conversion reads."""
    low, high = float(image.min()), float(image.max())
    unit = np.clip((image - low) / max(high - low, 1e-6), 0.0, 1.0)
    bits = int(rng.integers(8, 17)) if "bit_depth" in families else 12
    top = 2 ** bits - 1
    if "jpeg" in families:
        unit = _jpeg(unit, rng)
    ds = Dataset()
    monochrome1 = "monochrome1" in families
    ds.PhotometricInterpretation = "MONOCHROME1" if monochrome1 else "MONOCHROME2"
    ds.BitsStored, ds.BitsAllocated, ds.PixelRepresentation = bits, 8 if bits == 8 else 16, 0
    slope, intercept = (float(rng.choice((1.0, 0.5, 2.0))), float(rng.uniform(-1000, 1000))) \
        if "bit_depth" in families else (1.0, 0.0)
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    stored = np.round((1.0 - unit if monochrome1 else unit) * top).astype(np.uint16 if bits > 8 else np.uint8)
    if "voi_lut" in families:
        _voi(ds, rng, top, slope, intercept)
    return stored, ds


def _voi(ds: Dataset, rng: np.random.Generator, top: int, slope: float, intercept: float) -> None:
    """A vendor window (linear or SIGMOID) over most of the range, or a VOI LUT table (a gamma-like curve)."""
    choice = rng.random()
    if choice < 0.6:
        width = top * rng.uniform(0.6, 1.1)
        centre = top * rng.uniform(0.4, 0.6)
        ds.WindowCenter, ds.WindowWidth = centre * slope + intercept, max(width * abs(slope), 2.0)
        if choice < 0.25:
            ds.VOILUTFunction = "SIGMOID"
        return
    entries = 4096
    first = int(round(intercept))
    x = np.linspace(0.0, 1.0, entries)
    curve = 1.0 / (1.0 + np.exp(-(x - rng.uniform(0.35, 0.65)) * rng.uniform(4.0, 10.0)))
    curve = (curve - curve.min()) / (curve.max() - curve.min())
    item = Dataset()
    item.LUTDescriptor = [entries, first, 16]
    item.LUTData = np.round(curve * 65535).astype(np.uint16).tolist()
    item.LUTExplanation = "VENDOR"
    ds.VOILUTSequence = Sequence([item])
    ds.RescaleSlope = (entries - 1) / top  # the modality LUT maps the stored range onto the table's entries
    ds.RescaleIntercept = first


def _jpeg(unit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.round(unit * 255).astype(np.uint8)).save(buffer, format="JPEG",
                                                                quality=int(rng.integers(15, 80)))
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded, dtype=np.float32) / 255.0


def draw_families(rng: np.random.Generator, probability: float = 0.35) -> set[str]:
    """A random set of families for one training image (each with ``probability``)."""
    return {family for family in FAMILIES if rng.random() < probability}


def film(scene: np.ndarray, rng: np.random.Generator, families: Iterable[str]) -> np.ndarray:
    """``scene`` through the given families, stored and displayed as the pre-read does: float32 [H', W'] in [0, 1]."""
    chosen = set(families)
    unknown = chosen - set(FAMILIES)
    if unknown:
        raise ValueError(f"unknown families {sorted(unknown)}; known: {list(FAMILIES)}")
    image = np.asarray(scene, dtype=np.float32)
    for name in SCENE_FAMILIES:
        if name in chosen:
            image = np.asarray(SCENE_STEPS[name](image, rng), dtype=np.float32)
    stored, header = _store(image, rng, chosen)
    return np.asarray(DISPLAY.function(stored, header), dtype=np.float32)
