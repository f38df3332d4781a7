"""Generated CT-like abdominal volumes in Hounsfield units with a known ground-truth label volume.

Each case is a caricature of an axial abdominal CT series at about one third of adult size (the body is 70–150 mm
wide, so that a case fits the small matrices two CPU cores can train on): air outside a body ellipse (-1000 HU),
a subcutaneous fat ring (about -100), an abdominal wall and cavity of soft tissue (about 40) with visceral fat and a
few bowel-gas pockets, a vertebral column (cortex 700–1000, cancellous bone 180–280, discs, spinal canal), the aorta
and the inferior vena cava, and four labelled structures: liver (55–65 HU plain), spleen (45–50), left and right
kidneys (28–35 plain). Half the cases are "portal venous" contrast-enhanced (liver 95–115, spleen 105–125, kidneys
150–200, vessels 150–200). Every shape is a smoothly deformed, randomly perturbed ellipsoid whose position and size
vary per case; the volume is blurred a little (partial volume) and carries Gaussian noise of 10–25 HU.

Geometry follows DICOM LPS: voxel (slice, row, column) = (+z superior, +y posterior, +x patient's left), so the
liver lies at low column indices and the spleen at high ones. In-plane spacing is 0.6–1.0 mm on a 96–160 square
matrix; slices are 1.5–5 mm apart, 24–64 of them. The same ``(seed, index)`` always gives the same case. Labels are
evaluated at voxel centres (no blur), so a case's structure volumes in mL are exact on its own grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from cds.results.imaging import Volume

LABELS = ("background", "liver", "spleen", "kidney_left", "kidney_right")
LIVER, SPLEEN, KIDNEY_LEFT, KIDNEY_RIGHT = 1, 2, 3, 4


@dataclass(frozen=True)
class CtCase:
    """One generated series and its ground truth.

    Attributes:
        hounsfield: float32 [slices, rows, columns], whole HU values (what a 12-bit CT series stores).
        labels: uint8 [slices, rows, columns], indices into :data:`LABELS`.
        spacing_mm: (slice, row, column) spacing.
        origin_mm: (z, y, x) LPS position of voxel (0, 0, 0), as :func:`write_ct_series` takes it.
        contrast: Portal-venous contrast enhancement.
        noise_hu: Standard deviation of the added noise.
    """

    hounsfield: np.ndarray
    labels: np.ndarray
    spacing_mm: tuple[float, float, float]
    origin_mm: tuple[float, float, float]
    contrast: bool
    noise_hu: float

    @property
    def voxel_ml(self) -> float:
        """Volume of one voxel in mL."""
        return float(np.prod(self.spacing_mm)) / 1000.0

    def volumes_ml(self) -> dict[str, float]:
        """True volume of each labelled structure (background excluded) on this case's grid."""
        counts = np.bincount(self.labels.ravel(), minlength=len(LABELS))
        return {name: float(counts[i]) * self.voxel_ml for i, name in enumerate(LABELS) if i > 0}

    def volume(self, *, study_uid: str = "", series_uid: str = "") -> Volume:
        """The case as the :class:`Volume` that :func:`build_volume` makes from its DICOM series."""
        dz, dy, dx = self.spacing_mm
        z0, y0, x0 = self.origin_mm
        affine = np.array([[0.0, 0.0, dx, x0], [0.0, dy, 0.0, y0], [dz, 0.0, 0.0, z0], [0.0, 0.0, 0.0, 1.0]])
        return Volume(voxels=self.hounsfield, affine=affine, spacing=self.spacing_mm, study_uid=study_uid,
                      series_uid=series_uid, modality="CT", sop_instance_uids=())

    def write_dicom(self, folder: Path, **kwargs: Any) -> list[Path]:
        """Write the case as an axial CT series (keyword arguments go to :func:`write_ct_series`)."""
        from training.data.dicom_files import write_ct_series

        return write_ct_series(folder, self.hounsfield, spacing_mm=self.spacing_mm, origin_mm=self.origin_mm,
                               **kwargs)


@dataclass(frozen=True)
class _Grid:
    """Normalised body coordinates of every voxel: u (left +), v (posterior +), w (superior +, in units of a)."""

    u: np.ndarray
    v: np.ndarray
    w: np.ndarray
    a: float  # body semi-axis along x (mm)
    b: float  # body semi-axis along y (mm)


def generate_case(seed: int, index: int = 0) -> CtCase:
    """Case ``index`` of the stream ``seed`` (independent of every other (seed, index) pair)."""
    rng = np.random.default_rng((seed, index))
    dx = float(rng.uniform(0.6, 1.0))
    size = int(rng.integers(max(96, int(np.ceil(90 / dx))), 161))
    dz = float(rng.uniform(1.5, 5.0))
    slices = int(np.clip(round(float(rng.uniform(90, 180)) / dz), 24, 64))
    fov = size * dx
    a = fov / 2 * float(rng.uniform(0.78, 0.9))
    b = a * float(rng.uniform(0.68, 0.82))
    centre = rng.uniform(-0.03, 0.03, size=2) * fov
    z_start = float(rng.uniform(-0.25, 0.25)) * a - slices * dz / 2
    xs = (np.arange(size) - (size - 1) / 2) * dx
    zs = z_start + np.arange(slices) * dz
    grid = _grid(rng, zs, xs, xs, a, b, centre)
    contrast = bool(rng.random() < 0.5)
    hu, labels = _paint(rng, grid, contrast)
    hu = gaussian_filter(hu, sigma=(0.35, 0.6, 0.6))  # partial volume at edges
    noise_hu = float(rng.uniform(10, 25))
    noise = gaussian_filter(rng.standard_normal(hu.shape, dtype=np.float32), sigma=0.5)
    hu = hu + noise * (noise_hu / float(noise.std()))
    hu = np.clip(np.round(hu), -1024, 3071).astype(np.float32)
    return CtCase(hounsfield=hu, labels=labels, spacing_mm=(dz, dx, dx), origin_mm=(float(zs[0]), xs[0], xs[0]),
                  contrast=contrast, noise_hu=noise_hu)


def generate(count: int, *, seed: int) -> list[CtCase]:
    """``count`` cases of the stream ``seed``."""
    return [generate_case(seed, i) for i in range(count)]


def _grid(rng: np.random.Generator, zs: np.ndarray, ys: np.ndarray, xs: np.ndarray, a: float, b: float,
          centre: np.ndarray) -> _Grid:
    """Body coordinates with a smooth random warp (a few low-frequency sinusoids per axis)."""
    z, y, x = np.meshgrid(zs.astype(np.float32), ys.astype(np.float32), xs.astype(np.float32), indexing="ij",
                          sparse=True)
    coords = [(x - centre[0]) / a, (y - centre[1]) / b, z / a]
    warped = []
    for axis in range(3):
        shift: Any = 0.0
        for _ in range(3):
            freq = rng.uniform(-2.5, 2.5, size=3)
            phase = rng.uniform(0, 2 * np.pi)
            shift = shift + rng.uniform(0.01, 0.035) * np.sin(
                freq[0] * coords[0] + freq[1] * coords[1] + freq[2] * coords[2] + phase)
        warped.append((coords[axis] + shift).astype(np.float32))
    u, v, w = np.broadcast_arrays(*warped)
    return _Grid(u=u, v=v, w=w, a=a, b=b)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, ...], coarse: tuple[int, int, int]) -> np.ndarray:
    """Smooth noise with unit standard deviation: coarse random values, upsampled to ``shape`` and smoothed."""
    low = rng.standard_normal(coarse).astype(np.float32)
    field = zoom(low, [s / c for s, c in zip(shape, coarse, strict=True)], order=1, mode="nearest")
    field = gaussian_filter(field, sigma=[max(1.0, s / c / 3) for s, c in zip(shape, coarse, strict=True)])
    field = field[: shape[0], : shape[1], : shape[2]]
    if field.shape != shape:
        field = np.pad(field, [(0, s - f) for s, f in zip(shape, field.shape, strict=True)], mode="edge")
    return ((field - field.mean()) / (field.std() + 1e-6)).astype(np.float32)


def _ellipsoid(rng: np.random.Generator, g: _Grid, centre: tuple[float, float, float],
               radii: tuple[float, float, float], *, angle: float = 0.0, jitter: float = 0.05) -> np.ndarray:
    """Mask of a rotated (in-plane), randomly shifted, resized and lobulated ellipsoid in body coordinates."""
    cu, cv, cw = (c + rng.uniform(-jitter, jitter) for c in centre)
    ru, rv, rw = (r * rng.uniform(0.85, 1.15) for r in radii)
    angle += rng.uniform(-0.15, 0.15)
    du, dv, dw = g.u - cu, g.v - cv, g.w - cw
    pu = (np.cos(angle) * du + np.sin(angle) * dv) / ru
    pv = (-np.sin(angle) * du + np.cos(angle) * dv) / rv
    pw = dw / rw
    distance = np.sqrt(pu**2 + pv**2 + pw**2) + 1e-6
    lobes: Any = 0.0
    for _ in range(3):  # low-order bumps over the direction of each point from the centre
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        lobes = lobes + rng.uniform(0.03, 0.09) * np.cos(
            rng.uniform(1.0, 3.0) * (direction[0] * pu + direction[1] * pv + direction[2] * pw) / distance
            + rng.uniform(0, 2 * np.pi))
    mask: np.ndarray = distance <= 1.0 + lobes
    return mask


def _disc(g: _Grid, cu: float, cv: float, radius_mm: float) -> np.ndarray:
    """Cylinder along z of ``radius_mm`` around (cu, cv) in body coordinates."""
    distance = np.sqrt(((g.u - cu) * g.a) ** 2 + ((g.v - cv) * g.b) ** 2)
    mask: np.ndarray = distance <= radius_mm
    return mask


def _paint(rng: np.random.Generator, g: _Grid, contrast: bool) -> tuple[np.ndarray, np.ndarray]:
    """HU volume before blur and noise, and the label volume."""
    shape = g.u.shape
    hu = np.full(shape, -1000.0, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint8)
    radius = g.u**2 + g.v**2
    fat = float(rng.uniform(0.06, 0.14))
    body, inner, cavity = radius <= 1.0, radius <= (1 - fat) ** 2, radius <= (1 - fat - 0.05) ** 2
    coarse = (max(2, shape[0] // 8), 6, 6)
    texture = _smooth_field(rng, shape, coarse)
    hu[body] = rng.uniform(-110, -90) + 8 * texture[body]
    hu[inner] = rng.uniform(45, 55) + 4 * texture[inner]  # abdominal wall muscle
    hu[cavity] = rng.uniform(35, 45) + 5 * texture[cavity]
    visceral = cavity & (_smooth_field(rng, shape, coarse) > rng.uniform(0.4, 0.9))
    hu[visceral] = rng.uniform(-105, -80)
    bowel = cavity & (_smooth_field(rng, shape, (max(2, shape[0] // 4), 12, 12)) > rng.uniform(2.2, 2.6))
    hu[bowel] = rng.uniform(-950, -850)

    if contrast:
        values = {LIVER: (95, 115), SPLEEN: (105, 125), KIDNEY_LEFT: (150, 200), KIDNEY_RIGHT: (150, 200)}
        blood = float(rng.uniform(150, 200))
    else:
        values = {LIVER: (55, 65), SPLEEN: (45, 50), KIDNEY_LEFT: (28, 35), KIDNEY_RIGHT: (28, 35)}
        blood = float(rng.uniform(40, 50))
    liver = (_ellipsoid(rng, g, (-0.38, -0.05, 0.15), (0.48, 0.55, 0.6), angle=0.0)
             | _ellipsoid(rng, g, (0.05, -0.35, 0.3), (0.3, 0.2, 0.3), angle=0.2))
    tilt = float(rng.uniform(0.2, 0.5))
    organs = {
        LIVER: liver,
        SPLEEN: _ellipsoid(rng, g, (0.62, 0.25, 0.3), (0.16, 0.3, 0.35), angle=0.5),
        KIDNEY_RIGHT: _ellipsoid(rng, g, (-0.4, 0.45, -0.2), (0.15, 0.24, 0.42), angle=-tilt),
        KIDNEY_LEFT: _ellipsoid(rng, g, (0.4, 0.45, -0.05), (0.15, 0.24, 0.42), angle=tilt),
    }
    for label, mask in organs.items():  # later structures win where shapes overlap
        mask &= cavity
        labels[mask] = label
        low, high = values[label]
        hu[mask] = rng.uniform(low, high) + 1.5 * texture[mask]

    spine_v = 0.45 + float(rng.uniform(-0.04, 0.04))  # centre of the vertebral bodies
    body_r = float(rng.uniform(0.12, 0.15)) * g.a
    front = spine_v - body_r / g.b
    for cu, cv, r in ((0.07, front - 0.1, 0.065), (-0.15, front - 0.08, 0.07)):  # aorta, inferior vena cava
        vessel = cavity & _disc(g, cu + rng.uniform(-0.02, 0.02), cv + rng.uniform(-0.02, 0.02), r * g.a)
        hu[vessel], labels[vessel] = blood, 0
    _paint_spine(rng, g, hu, labels, spine_v, body_r)
    return hu, labels


def _paint_spine(rng: np.random.Generator, g: _Grid, hu: np.ndarray, labels: np.ndarray, cv: float,
                 body_r: float) -> None:
    """Vertebral bodies (cortex, cancellous bone, discs), spinal canal and spinous processes; clears labels."""
    rb = body_r / g.b  # vertebral body radius along v
    vertebra = _disc(g, 0.0, cv, body_r)
    cortex = vertebra & ~_disc(g, 0.0, cv, body_r * 0.8)
    canal_v = cv + 1.55 * rb
    canal = _disc(g, 0.0, canal_v, 0.45 * body_r)
    spinous = (np.abs(g.u) <= 0.03) & (g.v > canal_v) & (g.v < min(0.95, canal_v + 0.35))
    period = float(rng.uniform(0.35, 0.45))  # vertebra height, in units of a
    disc_level = np.mod(g.w + float(rng.uniform(0, period)), period) < 0.22 * period
    hu[vertebra] = rng.uniform(180, 280)
    hu[cortex | spinous] = rng.uniform(700, 1000)
    hu[vertebra & disc_level] = rng.uniform(80, 100)
    hu[canal] = rng.uniform(5, 15)
    labels[vertebra | spinous | canal] = 0
