"""Small generated slides shared by the pathology tests (written once per session, a few seconds in all)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.pipelines.pathology.slides import tumour_layout
from training.data.he_slide import GeneratedSlide, write_slide


@pytest.fixture(scope="session")
def noise_image() -> np.ndarray:
    """700 × 500 RGB with fine detail, so a misplaced tile cannot go unnoticed."""
    rng = np.random.default_rng(11)
    return rng.integers(0, 256, (500, 700, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def tissue_slide(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSlide:
    """1536 × 1024 generated H&E slide at 0.25 µm/px, levels at 0.25, 0.5, 1 and 2 µm/px (lossless)."""
    path = tmp_path_factory.mktemp("slides") / "tissue.tif"
    return write_slide(path, 1536, 1024, seed=5, mpp=0.25, tile=128, factor=2)


@pytest.fixture(scope="session")
def blank_slide(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSlide:
    """A glass-only slide."""
    path = tmp_path_factory.mktemp("slides") / "blank.tif"
    return write_slide(path, 1024, 768, seed=6, mpp=0.5, tile=128, factor=2, blank=True)


@pytest.fixture(scope="session")
def tumour_slide(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSlide:
    """3072 × 2048 at 0.5 µm/px (levels at 0.5, 1, 2, 4 µm/px): tissue with a round tumour (see tumour_layout)."""
    path = tmp_path_factory.mktemp("slides") / "tumour.tif"
    return write_slide(path, 3072, 2048, seed=8, mpp=0.5, tile=256, factor=2, layout=tumour_layout(3072, 2048))
