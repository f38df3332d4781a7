"""Generated H&E-like tiles and slides with known ground truth, for the pathology pipeline's tests and demos.

Pixels are built the way a stained section absorbs light (Beer-Lambert): per-pixel haematoxylin and eosin
concentrations times their optical-density vectors, ``I = 255 · exp(-(c_H · h + c_E · e + glass))``. So the same
concentrations can be rendered with another stain matrix (a known stain shift, for normalisation tests), and
concentrations are also available directly.

* Stroma: eosin (pink) with a fibrous texture from a few seeded plane waves, a faint haematoxylin background.
* Nuclei: haematoxylin (purple-blue) blobs seeded per 32 µm cell. Class 0 (normal) nuclei are small, round, even
  and sparse; class 1 (tumour) nuclei are larger, crowded, varied in size (pleomorphism), irregular in outline and
  darker (hyperchromasia).
* Glass: near-white, grey, with pixel noise.

Everything is a function of level-0 coordinates and the seed, so any region renders the same whichever tiles it is
cut into: :mod:`training.data.he_slide` relies on that to write large slides tile by tile. Nothing here is a real
patient image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

H_STAIN = np.array([0.65, 0.70, 0.29]) / np.linalg.norm([0.65, 0.70, 0.29])
E_STAIN = np.array([0.07, 0.99, 0.11]) / np.linalg.norm([0.07, 0.99, 0.11])
HE_STAINS = np.stack([H_STAIN, E_STAIN])  # [2 stains, 3 channels] optical density per unit concentration
GLASS_OD = 0.03  # optical density of bare glass (about 247 of 255)
NUCLEUS_CELL_UM = 32.0
_OFFSET = 1 << 24  # keeps seed-sequence entries non-negative for cells left of or above the origin


@dataclass(frozen=True)
class NucleusStyle:
    """How a tissue class's nuclei look (sizes in microns, so they scale with the slide's resolution).

    Attributes:
        density: Nuclei per 1,000 µm².
        radius_um: Mean nucleus radius.
        radius_cv: Coefficient of variation of the radius (pleomorphism).
        irregularity: Amplitude of the outline's harmonics (0 = ellipse).
        elongation: Largest relative stretch of one axis.
        hematoxylin: Mean haematoxylin concentration inside a nucleus (darkness).
    """

    density: float
    radius_um: float
    radius_cv: float
    irregularity: float
    elongation: float
    hematoxylin: float


NORMAL = NucleusStyle(density=2.2, radius_um=3.0, radius_cv=0.08, irregularity=0.03, elongation=0.25, hematoxylin=0.9)
TUMOUR = NucleusStyle(density=5.0, radius_um=4.6, radius_cv=0.32, irregularity=0.2, elongation=0.45, hematoxylin=1.5)


@dataclass(frozen=True)
class Layout:
    """Where tissue and tumour are, as smooth fields on a coarse grid (a value above 0.5 means present).

    Attributes:
        tissue: float32 [rows, columns].
        tumour: float32 [rows, columns]; only counts where there is tissue.
        cell: Level-0 pixels per grid cell.
    """

    tissue: np.ndarray
    tumour: np.ndarray
    cell: float

    @classmethod
    def uniform(cls, label: int) -> Layout:
        """All tissue, all of class ``label`` (0 normal, 1 tumour): the layout of a single training tile."""
        return cls(np.ones((1, 1), np.float32), np.full((1, 1), float(label), np.float32), 1.0)

    def sample(self, field: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """``field`` interpolated (bilinear) at level-0 pixel coordinates ``xs``, ``ys`` (same shape)."""
        coords = np.stack([(ys + 0.5) / self.cell - 0.5, (xs + 0.5) / self.cell - 0.5])
        values: np.ndarray = ndimage.map_coordinates(field, coords, order=1, mode="nearest")
        return values

    def sample_box(self, field: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
        """``field`` interpolated (bilinear) over a level-0 pixel box, float32 [height, width].

        On a regular grid the neighbours and weights of each row and column are computed once (no per-pixel
        coordinate lookup, and no BLAS call, which is slow for small matrices on a busy machine).
        """
        top, bottom, wy = _neighbours(y0, height, self.cell, field.shape[0])
        left, right, wx = _neighbours(x0, width, self.cell, field.shape[1])
        upper = field[np.ix_(top, left)] * (1 - wx) + field[np.ix_(top, right)] * wx
        lower = field[np.ix_(bottom, left)] * (1 - wx) + field[np.ix_(bottom, right)] * wx
        values: np.ndarray = (upper * (1 - wy)[:, None] + lower * wy[:, None]).astype(np.float32)
        return values

    def masks(self) -> tuple[np.ndarray, np.ndarray]:
        """Ground truth on the layout grid: (tissue, tumour) bool masks; ``cell`` level-0 pixels per mask pixel."""
        tissue = self.tissue > 0.5
        return tissue, tissue & (self.tumour > 0.5)


def _neighbours(start: int, count: int, cell: float, cells: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For pixels ``start .. start + count`` on a grid of ``cell``-pixel cells: the lower and upper neighbouring
    cell and the weight of the upper one (bilinear interpolation along one axis)."""
    position = np.clip((np.arange(start, start + count) + 0.5) / cell - 0.5, 0, cells - 1)
    low = np.floor(position).astype(np.int64)
    return low, np.minimum(low + 1, cells - 1), (position - low).astype(np.float32)


class _Texture:
    """A seamless texture in [0, 1]: a sum of plane waves with seeded wavelengths, directions and phases."""

    def __init__(self, rng: np.random.Generator, waves: int, wavelength_um: tuple[float, float]) -> None:
        angles = rng.uniform(0, np.pi, waves)
        numbers = 2 * np.pi / rng.uniform(*wavelength_um, waves)
        self.kx, self.ky = numbers * np.cos(angles), numbers * np.sin(angles)
        self.phase = rng.uniform(0, 2 * np.pi, waves)

    def __call__(self, xs_um: np.ndarray, ys_um: np.ndarray) -> np.ndarray:
        """Texture at microns ``xs_um``, ``ys_um`` (broadcastable): a row ``[1, W]`` and a column ``[H, 1]`` make
        a grid cheaply, by ``cos(a + b) = cos a cos b - sin a sin b``."""
        total = np.zeros(np.broadcast_shapes(xs_um.shape, ys_um.shape), np.float32)
        for kx, ky, phase in zip(self.kx, self.ky, self.phase, strict=True):
            a, b = (kx * xs_um + phase).astype(np.float32), (ky * ys_um).astype(np.float32)
            total += np.cos(a) * np.cos(b) - np.sin(a) * np.sin(b)
        result: np.ndarray = 0.5 + 0.5 * total / len(self.phase)
        return result


def _textures(key: tuple[int, ...]) -> tuple[_Texture, _Texture]:
    rng = np.random.default_rng([*key, 99])
    return _Texture(rng, 6, (6.0, 40.0)), _Texture(rng, 4, (1.0, 2.5))


def _nuclei(key: tuple[int, ...], layout: Layout, mpp: float, box: tuple[int, int, int, int]) -> np.ndarray:
    """Nuclei that may reach the level-0 box (x0, y0, x1, y1), one row each: x, y, radius (px), stretch, angle,
    haematoxylin, four outline harmonic amplitudes and their four phases. Each 32 µm cell seeds its own nuclei."""
    cell = NUCLEUS_CELL_UM / mpp
    margin = 30.0 / mpp  # farther than any nucleus reaches from its centre
    x0, y0, x1, y1 = box
    cxs = np.arange(int(np.floor((x0 - margin) / cell)), int(np.floor((x1 + margin) / cell)) + 1)
    cys = np.arange(int(np.floor((y0 - margin) / cell)), int(np.floor((y1 + margin) / cell)) + 1)
    grid_x, grid_y = np.meshgrid((cxs + 0.5) * cell, (cys + 0.5) * cell)
    tissue = layout.sample(layout.tissue, grid_x, grid_y)
    tumour = layout.sample(layout.tumour, grid_x, grid_y) > 0.5
    found = []
    for j, i in zip(*np.nonzero(tissue >= 0.45), strict=True):
        style = TUMOUR if tumour[j, i] else NORMAL
        rng = np.random.default_rng([*key, int(cxs[i]) + _OFFSET, int(cys[j]) + _OFFSET])
        count = rng.poisson(style.density * NUCLEUS_CELL_UM**2 / 1000)
        radius = style.radius_um / mpp * np.clip(1 + style.radius_cv * rng.standard_normal(count), 0.5, 2.5)
        found.append(np.column_stack([
            (cxs[i] + rng.random(count)) * cell, (cys[j] + rng.random(count)) * cell, radius,
            rng.uniform(0, style.elongation, count), rng.uniform(0, np.pi, count),
            style.hematoxylin * np.clip(1 + 0.12 * rng.standard_normal(count), 0.6, 1.5),
            style.irregularity * rng.standard_normal((count, 4)) / np.arange(2, 6),
            rng.uniform(0, 2 * np.pi, (count, 4))]))
    if not found:
        return np.zeros((0, 14))
    nuclei = np.concatenate(found)
    return nuclei[layout.sample(layout.tissue, nuclei[:, 0], nuclei[:, 1]) > 0.5]


def _draw_nucleus(c_h: np.ndarray, nucleus: np.ndarray, box: tuple[int, int, int, int], chromatin: _Texture,
                  mpp: float) -> None:
    """Paint one nucleus's haematoxylin into ``c_h`` (the box's concentrations), keeping the darker value."""
    x, y, radius, stretch, angle, darkness = nucleus[:6]
    amplitudes, phases = nucleus[6:10], nucleus[10:14]
    reach = radius * (1 + stretch) * (1 + np.abs(amplitudes).sum()) + 2
    left, right = max(int(x - reach), box[0]), min(int(x + reach) + 1, box[2])
    top, bottom = max(int(y - reach), box[1]), min(int(y + reach) + 1, box[3])
    if right <= left or bottom <= top:
        return
    xs, ys = np.arange(left, right, dtype=np.float32)[None], np.arange(top, bottom, dtype=np.float32)[:, None]
    dx, dy = xs + 0.5 - x, ys + 0.5 - y
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / (1 + stretch)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    theta = np.arctan2(v, u)
    outline = radius * (1 + sum(a * np.cos(k * theta + p) for k, a, p in zip(range(2, 6), amplitudes, phases,
                                                                            strict=True)))
    inside = np.clip(outline - np.hypot(u, v) + 0.5, 0, 1)
    value = inside * darkness * (0.75 + 0.5 * chromatin(xs.astype(np.float64) * mpp, ys.astype(np.float64) * mpp))
    window = c_h[top - box[1]:bottom - box[1], left - box[0]:right - box[0]]
    np.maximum(window, value, out=window)


def concentrations(x0: int, y0: int, width: int, height: int, *, layout: Layout, mpp: float,
                   key: tuple[int, ...]) -> np.ndarray:
    """Haematoxylin and eosin concentrations of a level-0 region, float32 [height, width, 2].

    ``key`` (the seed, or seed and index) fixes everything random, so a region renders the same however the
    slide is cut into tiles.
    """
    out = np.zeros((height, width, 2), np.float32)
    tissue = np.clip((layout.sample_box(layout.tissue, x0, y0, width, height) - 0.5) * 8 + 0.5, 0, 1)
    if not tissue.any():
        return out
    tumour = np.clip((layout.sample_box(layout.tumour, x0, y0, width, height) - 0.5) * 8 + 0.5, 0, 1)
    fibres, chromatin = _textures(key)
    xs, ys = np.arange(x0, x0 + width, dtype=np.float64)[None], np.arange(y0, y0 + height, dtype=np.float64)[:, None]
    stroma = fibres(xs * mpp, ys * mpp)
    out[..., 1] = tissue * (0.55 - 0.12 * tumour) * (0.55 + 0.9 * stroma**2)
    c_h = np.ascontiguousarray(0.06 * tissue)
    box = (x0, y0, x0 + width, y0 + height)
    for nucleus in _nuclei(key, layout, mpp, box):
        _draw_nucleus(c_h, nucleus, box, chromatin, mpp)
    out[..., 0] = c_h
    return out


def compose(stain_concentrations: np.ndarray, stains: np.ndarray = HE_STAINS, *,
            rng: np.random.Generator | None = None, noise: float = 1.5) -> np.ndarray:
    """uint8 RGB from concentrations [H, W, 2] and a [2, 3] stain OD matrix, with optional sensor noise."""
    matrix = np.asarray(stains, np.float32)
    od = stain_concentrations[..., :1] * matrix[0] + stain_concentrations[..., 1:2] * matrix[1] + np.float32(GLASS_OD)
    rgb = 255.0 * np.exp(-od)
    if rng is not None and noise > 0:
        rgb += np.float32(noise) * rng.standard_normal(rgb.shape, dtype=np.float32)
    result: np.ndarray = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    return result


def tile_concentrations(label: int, *, seed: int, index: int = 0, size: int = 224, mpp: float = 0.5) -> np.ndarray:
    """Concentrations [size, size, 2] of training tile ``index`` of class ``label`` (0 normal, 1 tumour)."""
    return concentrations(0, 0, size, size, layout=Layout.uniform(label), mpp=mpp, key=(seed, index, label))


def he_tile(label: int, *, seed: int, index: int = 0, size: int = 224, mpp: float = 0.5,
            stains: np.ndarray = HE_STAINS) -> np.ndarray:
    """One uint8 RGB tile [size, size, 3] of class ``label``; the same arguments give the same tile."""
    rng = np.random.default_rng([seed, index, label, 7])
    return compose(tile_concentrations(label, seed=seed, index=index, size=size, mpp=mpp), stains, rng=rng)


def he_tiles(count: int, *, seed: int, size: int = 224, mpp: float = 0.5, tumour_fraction: float = 0.5,
             start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` tiles and labels: uint8 [count, size, size, 3] and int64 [count] (1 = tumour).

    Tile ``i`` depends only on ``(seed, start + i)``, so any subset can be regenerated.
    """
    labels = np.array([int(np.random.default_rng([seed, start + i]).random() < tumour_fraction)
                       for i in range(count)], dtype=np.int64)
    images = np.empty((count, size, size, 3), np.uint8)
    for i, label in enumerate(labels):
        images[i] = he_tile(int(label), seed=seed, index=start + i, size=size, mpp=mpp)
    return images, labels
