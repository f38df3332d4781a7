"""Sets of generated H&E-like training patches with lab-to-lab stain variation, in memory or as a tile folder.

:mod:`training.data.he_tiles` renders a patch of a class from its stain concentrations. Real slides differ in
staining from lab to lab and scanner to scanner, which is what stain normalisation exists for; so here each patch
gets its own stains: every stain's optical-density vector is tilted by a random amount (``stain_jitter``, the
standard deviation of the Gaussian added to each component before renormalising) and each stain's concentrations
are scaled by a random factor in ``1 ± 2·stain_jitter``. With ``stain_jitter=0`` the patches are
:func:`~training.data.he_tiles.he_tile`'s.

A slide's patches are not all tissue: at a tissue's border a patch is part glass (the slide pipeline scores patches
that are at least half tissue). So a share ``edge_fraction`` of the patches is cut by a straight tissue edge at a
random angle, leaving 50-95 % tissue, so that a model learns that glass says nothing about the class.

:func:`write_tile_folder` writes patches as PNG files with a ``labels.csv`` (``path``, ``tumour``): the layout a
real dataset takes for training (``training/pathology_tiles.py``, ``data.folder``), so tests can exercise it.
Nothing here is a real patient image.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from training.data.folder import LABELS_CSV
from training.data.he_tiles import HE_STAINS, Layout, compose, concentrations, tile_concentrations

LABEL = "tumour"


def jittered_stains(rng: np.random.Generator, jitter: float) -> np.ndarray:
    """The H&E optical-density vectors [2, 3], each tilted by Gaussian noise of ``jitter`` and renormalised."""
    stains = np.abs(HE_STAINS + jitter * rng.standard_normal(HE_STAINS.shape))
    result: np.ndarray = stains / np.linalg.norm(stains, axis=1, keepdims=True)
    return result


def tile_label(seed: int, index: int, tumour_fraction: float) -> int:
    """The class of patch ``index`` (1 = tumour), a function of the seed and index only."""
    return int(np.random.default_rng([seed, index]).random() < tumour_fraction)


def edge_layout(label: int, size: int, rng: np.random.Generator, *, cells: int = 16) -> Layout:
    """A patch's layout with a straight tissue edge at a random angle, 50-95 % of the patch on the tissue side."""
    cell = size / cells
    centres = (np.arange(cells) + 0.5) * cell - size / 2
    angle = rng.uniform(0, 2 * np.pi)
    along = np.cos(angle) * centres[None, :] + np.sin(angle) * centres[:, None]  # signed distance along the normal
    edge = np.quantile(along, 1 - rng.uniform(0.5, 0.95))
    tissue = np.clip(0.5 + (along - edge) / cell, 0, 1).astype(np.float32)
    return Layout(tissue, np.full_like(tissue, float(label)), cell)


def generated_tile(label: int, *, seed: int, index: int, size: int = 224, mpp: float = 0.5,
                   stain_jitter: float = 0.0, edge_fraction: float = 0.0) -> np.ndarray:
    """One uint8 RGB patch [size, size, 3] of class ``label`` with its own stains and, for a share
    ``edge_fraction`` of patches, a tissue edge (see the module docstring)."""
    rng = np.random.default_rng([seed, index, label, 7])
    if edge_fraction > 0 and np.random.default_rng([seed, index, 11]).random() < edge_fraction:
        layout = edge_layout(label, size, np.random.default_rng([seed, index, 12]))
        conc = concentrations(0, 0, size, size, layout=layout, mpp=mpp, key=(seed, index, label))
    else:
        conc = tile_concentrations(label, seed=seed, index=index, size=size, mpp=mpp)
    stains = HE_STAINS
    if stain_jitter > 0:
        stains = jittered_stains(rng, stain_jitter)
        conc = conc * rng.uniform(1 - 2 * stain_jitter, 1 + 2 * stain_jitter, 2).astype(np.float32)
    return compose(conc, stains, rng=rng)


def generate_tiles(count: int, *, seed: int, start: int = 0, size: int = 224, mpp: float = 0.5,
                   tumour_fraction: float = 0.5, stain_jitter: float = 0.0, edge_fraction: float = 0.0,
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Patches ``start .. start + count`` of a set: uint8 [count, size, size, 3] and int64 labels [count]."""
    labels = np.array([tile_label(seed, start + i, tumour_fraction) for i in range(count)], dtype=np.int64)
    images = np.empty((count, size, size, 3), np.uint8)
    for i, label in enumerate(labels):
        images[i] = generated_tile(int(label), seed=seed, index=start + i, size=size, mpp=mpp,
                                   stain_jitter=stain_jitter, edge_fraction=edge_fraction)
    return images, labels


def write_tile_folder(folder: Path, count: int, *, seed: int, size: int = 224, mpp: float = 0.5,
                      tumour_fraction: float = 0.5, stain_jitter: float = 0.0, edge_fraction: float = 0.0) -> Path:
    """Write ``count`` patches as PNG files and their ``labels.csv`` (``path``, ``tumour``); returns the CSV."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    images, labels = generate_tiles(count, seed=seed, size=size, mpp=mpp, tumour_fraction=tumour_fraction,
                                    stain_jitter=stain_jitter, edge_fraction=edge_fraction)
    rows = []
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        name = f"tile-{seed}-{index:06d}.png"
        Image.fromarray(image).save(folder / name)
        rows.append({"path": name, LABEL: str(int(label))})
    table = folder / LABELS_CSV
    with table.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", LABEL])
        writer.writeheader()
        writer.writerows(rows)
    return table
