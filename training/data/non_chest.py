"""Generated images that are *not* frontal chest radiographs, for the chest X-ray plausibility check.

Each kind is something a PACS could send to a chest model with tags that claim CR/DX chest: another body part's
radiograph (limb, pelvis, skull, breast), a cross-sectional slice (CT abdomen, MR head), an ultrasound sector, a
scanned document, a chest radiograph with inverted polarity or rotated, a crop of part of a chest, or plain
noise and gradients. All are display-normalised like :func:`cds.pipelines.imaging.radiograph.display_pixels`: float32
[size, size] in [0, 1] over their own range, bright = dense.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from training.data.chest_xray import render

Generator = Callable[[np.random.Generator, int], np.ndarray]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return y, x


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float, angle: float = 0.0
             ) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    result: np.ndarray = (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
    return result


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(0.0, 1.0, (size, size)), sigma)
    spread: np.ndarray = field / (field.std() + 1e-6)
    return spread


def _limb(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    angle = rng.uniform(-0.5, 0.5)
    u = x * np.cos(angle) + y * np.sin(angle)
    width = rng.uniform(0.25, 0.45)
    image = 0.25 * (np.abs(u) < width)
    for offset in rng.uniform(-0.4, 0.4, rng.integers(1, 3)) * width:
        bone = np.abs(u - offset) < width * rng.uniform(0.2, 0.35)
        marrow = np.abs(u - offset) < width * rng.uniform(0.08, 0.15)
        image = image + 0.6 * bone - 0.25 * marrow
    joint = rng.uniform(-0.6, 0.6)
    v = -x * np.sin(angle) + y * np.cos(angle)
    image = image * (1.0 - 0.7 * (np.abs(v - joint) < 0.02))
    return np.asarray(image, dtype=np.float32)


def _pelvis(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    image = 0.3 * _ellipse(y, x, 0.0, 0.0, 0.95, rng.uniform(0.8, 0.95))
    for side in (-1.0, 1.0):
        wing = _ellipse(y, x, -0.2, side * 0.42, 0.4, 0.3, side * 0.4) & ~_ellipse(y, x, -0.15, side * 0.4, 0.28,
                                                                                     0.18, side * 0.4)
        head = _ellipse(y, x, 0.35, side * 0.5, 0.13, 0.13)
        femur = (np.abs(x - side * 0.62) < 0.09) & (y > 0.4)
        image = image + 0.5 * (wing | head | femur)
    image = image + 0.4 * _ellipse(y, x, -0.25, 0.0, 0.25, 0.12) + 0.3 * (np.abs(x) < 0.07) * (y < -0.3)
    return np.asarray(image, dtype=np.float32)


def _skull(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    ry, rx = rng.uniform(0.75, 0.9), rng.uniform(0.6, 0.8)
    vault = _ellipse(y, x, -0.05, 0.0, ry, rx) & ~_ellipse(y, x, -0.05, 0.0, ry - 0.08, rx - 0.08)
    brain = _ellipse(y, x, -0.05, 0.0, ry - 0.08, rx - 0.08)
    jaw = _ellipse(y, x, 0.75, 0.0, 0.2, 0.45) & ~_ellipse(y, x, 0.7, 0.0, 0.14, 0.37)
    return np.asarray(0.8 * vault + 0.35 * brain + 0.7 * jaw + 0.5 * _ellipse(y, x, 0.3, 0.0, 0.12, 0.3),
                      dtype=np.float32)


def _breast(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    side = rng.choice((-1.0, 1.0))
    tissue = _ellipse(y, x, 0.0, side * 1.0, rng.uniform(0.8, 1.0), rng.uniform(1.1, 1.5))
    texture = 0.15 * _smooth_noise(rng, size, size / 40)
    return np.asarray(tissue * (0.5 + texture), dtype=np.float32)


def _ct_abdomen(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    body = _ellipse(y, x, 0.05, 0.0, rng.uniform(0.55, 0.7), rng.uniform(0.75, 0.9))
    inner = _ellipse(y, x, 0.05, 0.0, 0.5, 0.72)
    image = 0.35 * body + 0.15 * inner
    image = image + 0.15 * _ellipse(y, x, -0.05, -0.35, 0.3, 0.3)  # liver
    image = image + 0.1 * (_ellipse(y, x, 0.25, -0.25, 0.1, 0.07) | _ellipse(y, x, 0.25, 0.25, 0.1, 0.07))
    image = image + 0.6 * _ellipse(y, x, 0.4, 0.0, 0.1, 0.1)  # vertebra
    for _ in range(int(rng.integers(2, 6))):  # bowel gas
        image = image * ~_ellipse(y, x, rng.uniform(-0.3, 0.2), rng.uniform(0.0, 0.5), 0.06, 0.08)
    return np.asarray(image, dtype=np.float32)


def _mr_head(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    head = _ellipse(y, x, 0.0, 0.0, 0.85, 0.7)
    brain = _ellipse(y, x, 0.0, 0.0, 0.75, 0.6)
    image = 0.8 * (head & ~brain) + brain * (0.45 + 0.08 * _smooth_noise(rng, size, size / 30))
    ventricles = _ellipse(y, x, -0.05, -0.1, 0.25, 0.06, 0.2) | _ellipse(y, x, -0.05, 0.1, 0.25, 0.06, -0.2)
    return np.asarray(image * ~ventricles, dtype=np.float32)


def _ultrasound(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    radius, angle = np.hypot(x, y + 1.0), np.arctan2(x, y + 1.0)
    sector = (radius < rng.uniform(1.6, 1.9)) & (np.abs(angle) < rng.uniform(0.5, 0.8))
    speckle = rng.rayleigh(0.3, (size, size))
    cyst = _ellipse(y, x, rng.uniform(0.0, 0.4), rng.uniform(-0.2, 0.2), 0.15, 0.2)
    return np.asarray(sector * speckle * ~cyst, dtype=np.float32)


def _document(rng: np.random.Generator, size: int) -> np.ndarray:
    image = np.ones((size, size), dtype=np.float32)
    row = int(size * 0.08)
    while row < size * 0.9:
        height = max(1, int(size * rng.uniform(0.01, 0.025)))
        end = int(size * rng.uniform(0.4, 0.92))
        image[row:row + height, int(size * 0.08):end] = rng.uniform(0.0, 0.3)
        row += height + max(2, int(size * rng.uniform(0.02, 0.06)))
    return image


def _inverted_chest(rng: np.random.Generator, size: int) -> np.ndarray:
    return 1.0 - render(size, int(rng.integers(1 << 30)), 0)[0]


def _rotated_chest(rng: np.random.Generator, size: int) -> np.ndarray:
    return np.rot90(render(size, int(rng.integers(1 << 30)), 0)[0], int(rng.integers(1, 4))).copy()


def _chest_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    image = render(size * 3, int(rng.integers(1 << 30)), 0)[0]
    top, left = rng.integers(0, size * 2, 2)
    return image[top:top + size, left:left + size].copy()


def _noise(rng: np.random.Generator, size: int) -> np.ndarray:
    return _smooth_noise(rng, size, float(rng.uniform(0.5, size / 8))).astype(np.float32)


def _gradient(rng: np.random.Generator, size: int) -> np.ndarray:
    y, x = _grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    return np.asarray(np.cos(angle) * x + np.sin(angle) * y, dtype=np.float32)


KINDS: dict[str, Generator] = {
    "limb": _limb, "pelvis": _pelvis, "skull": _skull, "breast": _breast, "ct_abdomen": _ct_abdomen,
    "mr_head": _mr_head, "ultrasound": _ultrasound, "document": _document, "inverted_chest": _inverted_chest,
    "rotated_chest": _rotated_chest, "chest_crop": _chest_crop, "noise": _noise, "gradient": _gradient,
}


def render_non_chest(kind: str, size: int, seed: int, index: int) -> np.ndarray:
    """One image of ``kind`` (a key of :data:`KINDS`): blurred, noisy, display-normalised float32 [size, size]."""
    rng = np.random.default_rng((seed, index, 7))
    image = KINDS[kind](rng, size).astype(np.float64)
    image = ndimage.gaussian_filter(image, rng.uniform(0.3, 1.2) * size / 224)
    image = image + rng.normal(0.0, rng.uniform(0.005, 0.03), image.shape) * (np.ptp(image) + 1e-6)
    low, high = float(image.min()), float(image.max())
    return ((image - low) / max(high - low, 1e-6)).astype(np.float32)


def generate_non_chest(count: int, *, seed: int, size: int) -> tuple[np.ndarray, list[str]]:
    """``count`` images cycling through every kind: float32 [N, size, size] and the kind of each."""
    names = sorted(KINDS)
    kinds = [names[i % len(names)] for i in range(count)]
    images = np.stack([render_non_chest(k, size, seed, i) for i, k in enumerate(kinds)]) if count else \
        np.empty((0, size, size), np.float32)
    return images, kinds
