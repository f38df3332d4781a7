"""Generated images that are *not* frontal chest radiographs, for the chest X-ray plausibility check.

Each kind is something a PACS could send to a chest model with tags that claim CR/DX chest: another body part's
radiograph (limb, pelvis, skull, breast), a cross-sectional slice (CT abdomen, MR head), an ultrasound sector, a
scanned document, a lateral chest view, an abdominal or spine film, a hand, a chest radiograph with inverted
polarity or rotated, a crop of part of a chest, or plain noise and gradients. Each scene is filmed with the same
random vendor variants as the chest radiographs (:mod:`training.data.film_variants`), so that no processing trait
tells the kinds apart, and comes out display-normalised like :func:`cds.pipelines.imaging.radiograph.display_pixels`.
Real non-chest images come from pydicom's bundled test files (:func:`real_non_chest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from scipy import ndimage

from training.data.chest_xray import render
from training.data.film_variants import draw_families, film

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


def _lateral_chest(rng: np.random.Generator, size: int) -> np.ndarray:
    """A lateral chest view: one lung field, the heart in front and low, the spine behind, arms raised."""
    y, x = _grid(size)
    front = float(rng.choice((-1.0, 1.0)))  # which side of the image the patient faces
    body = _ellipse(y, x, 0.15, 0.0, 1.1, rng.uniform(0.6, 0.8))
    image = 0.5 * body
    lung = _ellipse(y, x, -0.05, front * 0.05, rng.uniform(0.55, 0.7), rng.uniform(0.38, 0.48))
    image = image - 0.32 * lung + 0.03 * lung * _smooth_noise(rng, size, size / 60)
    image = image + 0.25 * _ellipse(y, x, 0.3, front * 0.2, 0.28, 0.22, front * 0.5) * lung  # heart
    spine_x = -front * rng.uniform(0.45, 0.55)
    vertebrae = 0.5 + 0.5 * np.cos(2 * np.pi * y / 0.12)
    image = image + 0.35 * (np.abs(x - spine_x - 0.1 * y) < 0.09) * (0.6 + 0.4 * vertebrae)
    image = image + 0.3 * (np.abs(x - front * 0.62 + 0.05 * y) < 0.03) * (y < 0.5)  # sternum
    for side in (-0.12, 0.12):  # humeri of the raised arms
        image = image + 0.3 * (np.abs(x - side - 0.4 * (y + 0.6)) < 0.05) * (y < -0.2)
    image = image + 0.15 * _ellipse(y, x, 0.75, 0.0, 0.2, 0.9) * body  # diaphragm and abdomen
    return np.asarray(image, dtype=np.float32)


def _abdomen(rng: np.random.Generator, size: int) -> np.ndarray:
    """A supine abdominal film: lumbar spine, pelvis rim, bowel gas, no lungs."""
    y, x = _grid(size)
    image = 0.45 * _ellipse(y, x, 0.0, 0.0, 1.2, rng.uniform(0.8, 1.0))
    vertebrae = 0.5 + 0.5 * np.cos(2 * np.pi * y / 0.28)
    image = image + 0.25 * (np.abs(x) < 0.1) * (0.6 + 0.4 * vertebrae) * (y < 0.55)
    for side in (-1.0, 1.0):
        image = image + 0.3 * (_ellipse(y, x, 0.85, side * 0.45, 0.35, 0.3, side * 0.5)
                               & ~_ellipse(y, x, 0.9, side * 0.45, 0.27, 0.22, side * 0.5))
    for _ in range(int(rng.integers(5, 15))):
        cy, cx = rng.uniform(-0.7, 0.6), rng.uniform(-0.7, 0.7)
        image = image - 0.25 * _ellipse(y, x, cy, cx, rng.uniform(0.03, 0.1), rng.uniform(0.05, 0.15),
                                        rng.uniform(0, np.pi))
    return np.asarray(image, dtype=np.float32)


def _spine(rng: np.random.Generator, size: int) -> np.ndarray:
    """A spine film: a column of vertebral bodies with discs, soft tissue either side."""
    y, x = _grid(size)
    image = 0.3 * (np.abs(x) < rng.uniform(0.5, 0.8))
    height = rng.uniform(0.15, 0.25)
    body = (np.abs(x - 0.05 * np.sin(y * 2.0)) < rng.uniform(0.18, 0.28))
    disc = np.abs(((y + 1.0) % height) - height / 2) < height * 0.1
    image = image + 0.45 * body * ~disc
    for side in (-1.0, 1.0):  # pedicles
        image = image + 0.15 * (np.abs(x - side * 0.15) < 0.04) * (((y + 1.0) % height) < height * 0.5)
    return np.asarray(image, dtype=np.float32)


def _hand(rng: np.random.Generator, size: int) -> np.ndarray:
    """A hand: palm and five fingers of soft tissue, each with a bone down its middle."""
    y, x = _grid(size)
    image = 0.3 * _ellipse(y, x, 0.45, 0.0, 0.4, 0.45)
    for k, angle in enumerate(np.linspace(-0.6, 0.6, 5) + rng.uniform(-0.1, 0.1)):
        u = (x - 0.35 * np.sin(angle)) * np.cos(angle) - (y - 0.2) * np.sin(angle)
        length = 0.8 if k else 0.5
        finger = (np.abs(u) < 0.07) & (y < 0.3) & (y > 0.3 - length)
        bone = (np.abs(u) < 0.035) & (y < 0.6) & (y > 0.3 - length + 0.05)
        image = image + 0.25 * finger + 0.4 * bone
    return np.asarray(image, dtype=np.float32)


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
    "lateral_chest": _lateral_chest, "abdomen": _abdomen, "spine": _spine, "hand": _hand,
}


def render_non_chest(kind: str, size: int, seed: int, index: int, families: Iterable[str] | None = None
                     ) -> np.ndarray:
    """One image of ``kind`` (a key of :data:`KINDS`) filmed as a vendor would (``families`` of
    :mod:`training.data.film_variants`, drawn at random when ``None``): display-normalised float32 [H, W]."""
    rng = np.random.default_rng((seed, index, 7))
    scene = KINDS[kind](rng, size).astype(np.float32)
    low, high = float(scene.min()), float(scene.max())
    scene = (scene - low) / max(high - low, 1e-6)
    return film(scene, rng, draw_families(rng) if families is None else families)


def generate_non_chest(count: int, *, seed: int, size: int) -> tuple[list[np.ndarray], list[str]]:
    """``count`` images cycling through every kind, each with random film variants, and the kind of each."""
    names = sorted(KINDS)
    kinds = [names[i % len(names)] for i in range(count)]
    return [render_non_chest(k, size, seed, i) for i, k in enumerate(kinds)], kinds


def real_non_chest(held_out: bool) -> list[tuple[str, np.ndarray]]:
    """Real non-chest images from pydicom's bundled test files, display-normalised through the product's reader.

    Every single-frame grey-level image, once per SOP Instance UID (the same image often comes in several
    encodings); a third of them (by a hash of the UID) is ``held_out`` for measurement and never trained on.
    Returns (file name, pixels) pairs.
    """
    import hashlib
    from pathlib import Path

    import pydicom.data

    from cds.errors import CdsError
    from cds.pipelines.imaging.dicom_reader import read_instance
    from cds.pipelines.imaging.radiograph import display_pixels

    folder = Path(pydicom.data.__file__).parent / "test_files"
    seen: dict[str, tuple[str, np.ndarray]] = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        try:
            instance = read_instance(path)
            uid = str(instance.dataset.get("SOPInstanceUID", path.name))
            if uid in seen or (hashlib.sha256(uid.encode()).digest()[0] % 3 == 0) != held_out:
                continue
            pixels = display_pixels(instance)
        except (CdsError, ValueError, TypeError, AttributeError, NotImplementedError, RuntimeError):
            continue  # not a single-frame grey-level image, or not decodable: the gate never sees it
        if min(pixels.shape) >= 16:
            seen[uid] = (path.name, pixels)
    return list(seen.values())
