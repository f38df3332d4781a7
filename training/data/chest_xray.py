"""Generated frontal chest radiographs with known findings, for the chest X-ray demonstration model and tests.

Each image is built as an attenuation map (bright = dense, as a radiograph is displayed): body soft tissue, two
lung fields with vascular markings, mediastinum, heart, spine, clavicles and ribs, then label-dependent findings,
then blur and quantum-like noise. Every image comes from its own ``(seed, index)`` random stream, so any subset can
be regenerated exactly and splits from different seeds never share an image.

The labels are TorchXRayVision's 18 (``LABELS``), so real models exported from that vocabulary drop in. Most are
drawn independently with probability ``prevalence``; two are derived as in the public datasets' hierarchies:
``Lung Lesion`` = Nodule or Mass, and ``Lung Opacity`` = any parenchymal opacity (Atelectasis, Consolidation,
Infiltration, Pneumonia, Edema, Lung Lesion).

Not anatomy: the shapes are a caricature that gives each label a distinct, learnable appearance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "Lung Lesion",
    "Fracture",
    "Lung Opacity",
    "Enlarged Cardiomediastinum",
)
DERIVED: dict[str, tuple[str, ...]] = {
    "Lung Lesion": ("Nodule", "Mass"),
    "Lung Opacity": ("Atelectasis", "Consolidation", "Infiltration", "Pneumonia", "Edema", "Nodule", "Mass"),
}
FULL_SCALE = 0.85  # attenuation shown as white: fixed, so a dense finding never dims the rest of the image
PRIMARY: tuple[str, ...] = tuple(label for label in LABELS if label not in DERIVED)


@dataclass(frozen=True)
class ChestXrays:
    """A batch of generated radiographs.

    Attributes:
        images: float32 [N, 1, size, size] in [0, 1], bright = dense.
        labels: float32 [N, 18], columns in :data:`LABELS` order.
        sex: Per-image subgroup column ("F"/"M"; sets body and heart size), for subgroup metrics.
    """

    images: np.ndarray
    labels: np.ndarray
    sex: np.ndarray


class _Canvas:
    """Normalised coordinates and the random stream of one image."""

    def __init__(self, size: int, rng: np.random.Generator, zoom: float = 1.0) -> None:
        self.size = size
        self.rng = rng
        grid = ((np.arange(size, dtype=np.float32) + 0.5) / size - 0.5) / zoom + 0.5
        self.y, self.x = np.meshgrid(grid, grid, indexing="ij")

    def ellipse(self, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
        """Soft-edged (about one pixel) ellipse mask."""
        r = np.sqrt(((self.y - cy) / ry) ** 2 + ((self.x - cx) / rx) ** 2)
        edge = 1.5 / (self.size * min(ry, rx))
        return np.clip((1.0 - r) / edge, 0.0, 1.0)

    def smooth_noise(self, sigma_px: float) -> np.ndarray:
        """Gaussian random field with unit standard deviation and correlation length ``sigma_px``."""
        field = ndimage.gaussian_filter(self.rng.standard_normal((self.size, self.size)).astype(np.float32), sigma_px)
        return field / max(float(field.std()), 1e-6)

    def blob(self, cy: float, cx: float, radius: float, lobulation: float = 0.25) -> np.ndarray:
        """Irregular round opacity: an ellipse whose edge is modulated by smooth noise."""
        r = np.sqrt((self.y - cy) ** 2 + (self.x - cx) ** 2) / radius
        wobble = 1.0 + lobulation * self.smooth_noise(self.size * radius * 0.6)
        return np.clip((wobble - r) * self.size * radius / 2.0, 0.0, 1.0)


@dataclass
class _Anatomy:
    """Per-image anatomy parameters (randomised patient habitus), changed by some findings."""

    lung_cy: float
    lung_ry: float
    lung_rx: float
    lung_dx: float
    heart_rx: float
    heart_ry: float
    mediastinum_half: float
    dome: float
    body_rx: float = 0.45
    child: bool = False
    arms: bool = True
    neck: bool = True
    breasts: bool = False
    right_dome_raise: float = 0.0
    lung_darkening: float = 0.0
    marking_scale: float = 1.0
    fracture: tuple[int, int, float] | None = None  # (rib index, side, x position)


def _anatomy(c: _Canvas, female: bool, child: bool) -> _Anatomy:
    """Habitus: lung and heart proportions, body width, arms, neck and breast shadows; children (about one in
    seven) have shorter, rounder chests and a larger heart for their size, within normal limits."""
    rng = c.rng
    scale = 0.95 if female else 1.0
    a = _Anatomy(
        lung_cy=0.47 + rng.uniform(-0.03, 0.03),
        lung_ry=0.29 * scale + rng.uniform(-0.03, 0.03),
        lung_rx=0.145 * scale + rng.uniform(-0.015, 0.015),
        lung_dx=0.175 * scale + rng.uniform(-0.015, 0.015),
        heart_rx=(0.14 if female else 0.15) + rng.uniform(-0.01, 0.01),
        heart_ry=0.1 + rng.uniform(-0.008, 0.008),
        mediastinum_half=0.055 + rng.uniform(-0.006, 0.006),
        dome=0.05 + rng.uniform(-0.015, 0.015),
        body_rx=float(rng.uniform(0.42, 0.62)),
        child=child,
        arms=bool(rng.random() < 0.7),
        neck=bool(rng.random() < 0.7),
        breasts=female and not child and bool(rng.random() < 0.7),
    )
    if child:
        a.lung_ry *= 0.85
        a.lung_rx *= 1.08
        a.heart_rx *= 1.1
        a.mediastinum_half *= 1.15
    return a


def _lung_masks(c: _Canvas, a: _Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """Right (image left) and left lung masks, cut by the diaphragm domes."""
    masks = []
    for side, raise_ in ((-1, a.right_dome_raise), (1, 0.0)):
        cx = 0.5 + side * a.lung_dx
        lung = c.ellipse(a.lung_cy, cx, a.lung_ry, a.lung_rx)
        base = a.lung_cy + a.lung_ry * 0.8 - raise_
        dome_y = base - a.dome * (1.0 - ((c.x - cx) / a.lung_rx) ** 2)
        masks.append(lung * np.clip((dome_y - c.y) * c.size / 1.5, 0.0, 1.0))
    return masks[0], masks[1]


def _ribs(c: _Canvas, a: _Anatomy, body: np.ndarray) -> np.ndarray:
    ribs = np.zeros_like(c.x)
    thickness = 0.011
    bend = 0.05 if a.child else 0.09  # children's ribs run more horizontally
    for k in range(10):
        for side in (-1, 1):
            cx = 0.5 + side * (a.lung_dx - 0.02)
            y0 = 0.2 + k * 0.052
            curve = y0 + bend * ((c.x - cx) / 0.2) ** 2 - 0.03 * side * (c.x - 0.5)
            band = np.clip(1.0 - np.abs(c.y - curve) / thickness, 0.0, 1.0)
            lateral = (side * (c.x - 0.5) > 0.04) & (side * (c.x - 0.5) < 0.36)
            rib = band * lateral
            if a.fracture is not None and a.fracture[0] == k and a.fracture[1] == side:
                x_break = a.fracture[2]
                gap = np.abs(c.x - x_break) < 0.01
                outer = side * (c.x - x_break) > 0
                shifted = np.clip(1.0 - np.abs(c.y - curve - 0.018) / thickness, 0.0, 1.0) * lateral
                rib = np.where(outer, shifted, rib) * ~gap
            ribs += rib
    return np.clip(ribs, 0.0, 1.0) * body


def _render_anatomy(c: _Canvas, a: _Anatomy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Attenuation map of the normal chest, plus both lung masks (for placing findings)."""
    body = np.maximum(c.ellipse(0.6, 0.5, 0.6, a.body_rx), _extremities(c, a))
    right, left = _lung_masks(c, a)
    lungs = np.clip(right + left, 0.0, 1.0)
    image = 0.10 + 0.40 * body
    if a.breasts:
        for side in (-1, 1):
            image += 0.05 * c.ellipse(a.lung_cy + a.lung_ry * 0.75, 0.5 + side * a.lung_dx * 1.1, 0.11, 0.14)
    markings = a.marking_scale * 0.035 * c.smooth_noise(1.2)
    hilar = 0.06 * (np.exp(-((c.y - 0.45) ** 2 + (np.abs(c.x - 0.5) - 0.1) ** 2) / 0.006))
    image = image * (1 - lungs) + lungs * (0.16 - a.lung_darkening + markings + hilar)
    mediastinum = np.clip((a.mediastinum_half - np.abs(c.x - 0.5)) * c.size, 0.0, 1.0)
    mediastinum *= np.clip((c.y - 0.12) * c.size, 0.0, 1.0) * body
    image = np.maximum(image, 0.55 * mediastinum)
    heart = c.ellipse(a.lung_cy + 0.16, 0.535, a.heart_ry, a.heart_rx)
    image = np.maximum(image, 0.58 * heart)
    trachea = np.clip((0.014 - np.abs(c.x - 0.5 + 0.004)) * c.size, 0.0, 1.0) * (c.y < a.lung_cy - 0.08)
    image -= 0.12 * trachea * body
    if c.rng.random() < 0.6:  # gastric bubble under the left dome
        image -= 0.2 * c.ellipse(a.lung_cy + a.lung_ry * 0.95, 0.5 + a.lung_dx * 0.9, 0.03, 0.05) * body
    if a.arms:  # humeral heads and shafts
        for side in (-1, 1):
            head = c.ellipse(0.19, 0.5 + side * (a.body_rx + 0.01), 0.045, 0.04)
            shaft = np.clip((0.02 - np.abs(c.x - 0.5 - side * (a.body_rx + 0.03))) * c.size, 0.0, 1.0) \
                * (c.y > 0.19) * (c.y < 0.7)
            image += 0.2 * np.maximum(head, shaft)
    spine = np.clip((0.028 - np.abs(c.x - 0.5)) * c.size, 0.0, 1.0) * body
    vertebrae = 0.5 + 0.5 * np.cos(2 * np.pi * c.y / 0.045)
    image += 0.12 * spine * (0.7 + 0.3 * vertebrae)
    for side in (-1, 1):
        clavicle = 0.17 + 0.08 * np.abs(c.x - 0.5) - 0.25 * (np.abs(c.x - 0.5) - 0.2) ** 2
        band = np.clip(1.0 - np.abs(c.y - clavicle) / 0.012, 0.0, 1.0) * (side * (c.x - 0.5) > 0.03)
        image += 0.18 * band * (side * (c.x - 0.5) < 0.3)
    image += 0.13 * _ribs(c, a, body)
    return image, right, left


def _extremities(c: _Canvas, a: _Anatomy) -> np.ndarray:
    """Soft tissue of the shoulders and arms at the sides, and the neck above the chest, where the film shows them."""
    out = c.ellipse(0.22, 0.5, 0.14, a.body_rx + 0.03)  # shoulder girdle
    if a.neck:
        out = np.maximum(out, np.clip((0.09 - np.abs(c.x - 0.5)) * c.size, 0.0, 1.0) * (c.y < 0.2))
    if a.arms:
        for side in (-1, 1):
            arm = np.clip((0.05 - np.abs(c.x - 0.5 - side * (a.body_rx + 0.03))) * c.size, 0.0, 1.0)
            out = np.maximum(out, arm * (c.y > 0.18) * (c.y < 0.8))
    return out


def _pick_lung(c: _Canvas, a: _Anatomy, zone: tuple[float, float] = (0.25, 0.75)) -> tuple[float, float, int]:
    """A random point inside one lung's vertical ``zone`` (fractions from apex to base)."""
    side = int(c.rng.choice((-1, 1)))
    top = a.lung_cy - a.lung_ry
    cy = top + 2 * a.lung_ry * 0.85 * c.rng.uniform(*zone)
    cx = 0.5 + side * (a.lung_dx + c.rng.uniform(-0.45, 0.45) * a.lung_rx)
    return float(cy), float(cx), side


def _add_findings(
    c: _Canvas, a: _Anatomy, present: set[str], image: np.ndarray, lungs: tuple[np.ndarray, ...]
) -> np.ndarray:
    right, left = lungs
    both = np.clip(right + left, 0.0, 1.0)
    painters: dict[str, Callable[[], np.ndarray]] = {
        "Nodule": lambda: sum(
            (0.22 * c.blob(*_pick_lung(c, a)[:2], radius=c.rng.uniform(0.012, 0.02), lobulation=0.1)
             for _ in range(int(c.rng.integers(1, 3)))),
            np.zeros_like(image),
        ) * both,
        "Mass": lambda: 0.28 * c.blob(*_pick_lung(c, a, (0.2, 0.7))[:2], radius=c.rng.uniform(0.045, 0.07)) * both,
        "Consolidation": lambda: 0.30 * c.blob(*_pick_lung(c, a, (0.3, 0.8))[:2], radius=0.09, lobulation=0.45) * both,
        "Pneumonia": lambda: (0.12 + 0.1 * np.clip(c.smooth_noise(2.0), -1, 1))
        * c.blob(*_pick_lung(c, a, (0.55, 0.9))[:2], radius=0.1, lobulation=0.5)
        * both,
        "Infiltration": lambda: 0.12 * np.clip(c.smooth_noise(4.0) - 0.6, 0.0, 1.0) * both
        * np.exp(-((c.y - a.lung_cy) ** 2) / 0.03),
        "Edema": lambda: (
            0.16 * np.exp(-((c.y - 0.46) ** 2 + (np.abs(c.x - 0.5) - 0.11) ** 2) / 0.012)
            + 0.10 * (np.abs(np.sin(c.y * 110.0)) > 0.97) * (c.y > a.lung_cy + 0.1)
            * (np.abs(c.x - 0.5) > a.lung_dx + 0.05)
        ) * both,
        "Fibrosis": lambda: 0.12 * (np.abs(c.smooth_noise(1.5)) < 0.25) * both * (c.y > a.lung_cy - 0.05)
        * (np.abs(c.x - 0.5) > a.lung_dx - 0.02),
        "Atelectasis": lambda: _plate(c, a) * both,
        "Effusion": lambda: np.clip(0.46 - image, 0.0, None) * _effusion_mask(c, a, right, left),
        "Pleural_Thickening": lambda: _pleural_band(c, a),
        "Hernia": lambda: _hernia(c, a),
    }
    for name, paint in painters.items():
        if name in present:
            image = image + paint()
    if "Pneumothorax" in present:
        image = _pneumothorax(c, a, image, right, left)
    return image


def _plate(c: _Canvas, a: _Anatomy) -> np.ndarray:
    cy, cx, _ = _pick_lung(c, a, (0.7, 0.85))
    tilt = c.rng.uniform(-0.25, 0.25)
    line = np.abs(c.y - cy - tilt * (c.x - cx)) < 0.008
    return 0.26 * line * (np.abs(c.x - cx) < 0.07)


def _effusion_mask(c: _Canvas, a: _Anatomy, right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Where pleural fluid lies: below a meniscus rising laterally, in one or both lung bases."""
    out = np.zeros_like(c.x)
    sides = [(-1, right), (1, left)]
    if c.rng.random() < 0.6:
        sides = [sides[int(c.rng.integers(0, 2))]]
    for side, lung in sides:
        level = a.lung_cy + a.lung_ry * c.rng.uniform(0.35, 0.55)
        lateral = side * (c.x - 0.5 - side * a.lung_dx) / a.lung_rx
        meniscus = level - 0.05 * np.clip(lateral, 0.0, 1.0) ** 2
        out += np.clip((c.y - meniscus) * c.size / 6.0, 0.0, 1.0) * lung
    return np.clip(out, 0.0, 1.0)


def _pleural_band(c: _Canvas, a: _Anatomy) -> np.ndarray:
    side = int(c.rng.choice((-1, 1)))
    cx = 0.5 + side * a.lung_dx
    r = np.sqrt(((c.y - a.lung_cy) / a.lung_ry) ** 2 + ((c.x - cx) / a.lung_rx) ** 2)
    width = c.rng.uniform(0.12, 0.18)
    band = (r > 1.0 - width) & (r < 1.02) & (side * (c.x - cx) > 0) & (c.y < a.lung_cy + 0.1)
    return 0.25 * ndimage.gaussian_filter(band.astype(np.float32), 1.0)


def _hernia(c: _Canvas, a: _Anatomy) -> np.ndarray:
    cy, cx = 0.69 + c.rng.uniform(-0.02, 0.02), 0.5 + c.rng.uniform(-0.05, 0.05)
    radius = c.rng.uniform(0.05, 0.07)
    sac = c.ellipse(cy, cx, radius, radius * 1.2)
    gas = c.ellipse(cy - radius * 0.35, cx, radius * 0.45, radius * 0.9) * (c.y < cy - radius * 0.1)
    return 0.18 * sac - 0.45 * gas


def _pneumothorax(c: _Canvas, a: _Anatomy, image: np.ndarray, right: np.ndarray, left: np.ndarray) -> np.ndarray:
    side = int(c.rng.choice((-1, 1)))
    lung = right if side < 0 else left
    cx = 0.5 + side * a.lung_dx
    r = np.sqrt(((c.y - a.lung_cy) / a.lung_ry) ** 2 + ((c.x - cx) / a.lung_rx) ** 2)
    depth = c.rng.uniform(0.18, 0.3)
    apical = c.y < a.lung_cy + a.lung_ry * 0.3
    gas = (r > 1.0 - depth) & apical & (lung > 0.5)
    rim = (np.abs(r - (1.0 - depth)) < 0.02) & apical & (lung > 0.5)
    image = np.where(gas, 0.07, image)
    return image + 0.2 * rim


def _draw_labels(rng: np.random.Generator, prevalence: float) -> set[str]:
    present = {label for label in PRIMARY if rng.random() < prevalence}
    for parent, children in DERIVED.items():
        if present & set(children):
            present.add(parent)
    return present


def _apply_to_anatomy(a: _Anatomy, present: set[str], rng: np.random.Generator) -> None:
    """Findings that change the anatomy itself rather than add an opacity."""
    if "Cardiomegaly" in present:
        a.heart_rx *= rng.uniform(1.3, 1.45)
        a.heart_ry *= rng.uniform(1.1, 1.2)
    if "Enlarged Cardiomediastinum" in present:
        a.mediastinum_half *= rng.uniform(1.6, 1.9)
    if "Emphysema" in present:
        a.lung_ry *= 1.12
        a.dome *= 0.3
        a.lung_darkening = 0.06
        a.marking_scale = 0.35
    if "Atelectasis" in present:
        a.right_dome_raise = 0.04
    if "Fracture" in present:
        side = int(rng.choice((-1, 1)))
        a.fracture = (int(rng.integers(2, 8)), side, 0.5 + side * float(rng.uniform(0.2, 0.28)))


def render(
    size: int, seed: int, index: int, prevalence: float = 0.1, findings: set[str] | None = None,
    child: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """One radiograph: float32 [size, size] in [0, 1], its 18 labels, and the subgroup ("F"/"M").

    Patient (anatomy), findings and acquisition (exposure, noise) come from three separate random streams of
    ``(seed, index)``, so ``findings`` (primary labels, replacing the random draw) gives the same patient with and
    without a finding, e.g. for tests and samples. ``child`` forces paediatric proportions on or off (about one
    image in seven has them otherwise).
    """
    patient = np.random.default_rng((seed, index, 0))
    finding_rng = np.random.default_rng((seed, index, 1))
    acquisition = np.random.default_rng((seed, index, 2))
    female = bool(patient.random() < 0.5)
    drawn_child = bool(patient.random() < 0.15)
    child = drawn_child if child is None else child
    zoom = float(patient.uniform(0.85, 1.15))  # field of view: part of the shoulders and abdomen, or more air
    present = _draw_labels(finding_rng, prevalence)
    if findings is not None:
        unknown = set(findings) - set(PRIMARY)
        if unknown:
            raise ValueError(f"unknown or derived findings {sorted(unknown)}; primary findings: {list(PRIMARY)}")
        present = set(findings) | {parent for parent, children in DERIVED.items() if set(findings) & set(children)}
    c = _Canvas(size, patient, zoom)
    a = _anatomy(c, female, child)
    _apply_to_anatomy(a, present, finding_rng)
    image, right, left = _render_anatomy(c, a)
    c.rng = finding_rng
    image = _add_findings(c, a, present, image, (right, left))
    image = ndimage.gaussian_filter(image, 0.6 * size / 224)
    exposure = acquisition.uniform(0.85, 1.15)
    image = np.clip(image * exposure + acquisition.normal(0.0, 0.012, image.shape), 0.0, None)
    image = np.clip(image / FULL_SCALE, 0.0, 1.0).astype(np.float32)
    labels = np.array([label in present for label in LABELS], dtype=np.float32)
    return image, labels, "F" if female else "M"


def generate(count: int, *, seed: int, size: int = 224, prevalence: float = 0.1, start: int = 0) -> ChestXrays:
    """``count`` radiographs with indices ``start .. start + count - 1`` of the stream ``seed``."""
    images = np.empty((count, 1, size, size), dtype=np.float32)
    labels = np.empty((count, len(LABELS)), dtype=np.float32)
    sex = np.empty(count, dtype=object)
    for i in range(count):
        images[i, 0], labels[i], sex[i] = render(size, seed, start + i, prevalence)
    return ChestXrays(images=images, labels=labels, sex=sex.astype(str))
