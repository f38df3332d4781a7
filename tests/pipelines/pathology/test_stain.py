"""Macenko and Reinhard stain normalisation on generated H&E tiles with known stains."""

from __future__ import annotations

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.pipelines.pathology import MacenkoNormalizer, ReinhardNormalizer
from cds.pipelines.pathology.stain import lab_to_rgb, rgb_to_lab
from training.data.he_tiles import HE_STAINS, compose, he_tile, tile_concentrations


def unit(vector: list[float]) -> np.ndarray:
    return np.asarray(vector) / np.linalg.norm(vector)


# another lab's staining: a bluer haematoxylin, a more orange eosin
SHIFTED_STAINS = np.stack([unit([0.45, 0.75, 0.45]), unit([0.02, 0.85, 0.35])])


def stain_pair() -> tuple[np.ndarray, np.ndarray]:
    """The same tissue (concentrations) stained two ways."""
    concentrations = tile_concentrations(1, seed=5, index=1)
    return (compose(concentrations, HE_STAINS, rng=np.random.default_rng(1)),
            compose(concentrations, SHIFTED_STAINS, rng=np.random.default_rng(2)))


@pytest.mark.parametrize("label", [0, 1])
def test_macenko_recovers_the_stain_vectors(label: int) -> None:
    normalizer = MacenkoNormalizer().fit(he_tile(label, seed=3))
    assert normalizer.stain_matrix_ is not None
    cosines = (normalizer.stain_matrix_ * HE_STAINS).sum(axis=1)
    assert cosines.min() > 0.98  # rows: haematoxylin, then eosin


def test_macenko_fit_and_transform_of_one_tile_is_the_identity() -> None:
    tile = he_tile(1, seed=3)
    out = MacenkoNormalizer().fit(tile).transform(tile)
    error = np.abs(out.astype(int) - tile)
    assert out.shape == tile.shape and out.dtype == np.uint8
    assert error.mean() < 2.5 and np.percentile(error, 99) <= 8


def test_macenko_brings_two_stainings_together() -> None:
    original, shifted = stain_pair()
    normalizer = MacenkoNormalizer().fit(he_tile(0, seed=9, index=4))
    before = np.abs(original.astype(float) - shifted).mean()
    after = np.abs(normalizer.transform(original).astype(float) - normalizer.transform(shifted)).mean()
    assert before > 10
    assert after < 0.25 * before


def test_macenko_refuses_tiles_it_cannot_fit() -> None:
    glass = np.full((224, 224, 3), 246, np.uint8)
    with pytest.raises(InvalidInputError) as caught:
        MacenkoNormalizer().fit(glass)
    assert caught.value.code == "insufficient_tissue"
    eosin_only = np.linspace(0.3, 1.2, 224 * 224)[:, None] * HE_STAINS[1]  # one stain: a line of ODs
    one_colour = np.rint(255 * np.exp(-eosin_only)).astype(np.uint8).reshape(224, 224, 3)
    with pytest.raises(InvalidInputError) as caught:
        MacenkoNormalizer().fit(one_colour)
    assert caught.value.code == "degenerate_stain"
    with pytest.raises(InvalidInputError) as caught:
        MacenkoNormalizer().transform(he_tile(0, seed=1))
    assert caught.value.code == "not_fitted"
    with pytest.raises(InvalidInputError) as caught:
        MacenkoNormalizer().fit(he_tile(0, seed=1).astype(np.float32))
    assert caught.value.code == "not_rgb"


def test_lab_round_trip() -> None:
    tile = he_tile(0, seed=2)
    assert np.abs(lab_to_rgb(rgb_to_lab(tile), tile.shape).astype(int) - tile).max() <= 1


def test_reinhard_matches_the_targets_lab_statistics() -> None:
    target = he_tile(0, seed=9, index=4)
    _, shifted = stain_pair()
    out = ReinhardNormalizer().fit(target).transform(shifted)
    lab_target, lab_out, lab_in = rgb_to_lab(target), rgb_to_lab(out), rgb_to_lab(shifted)
    assert np.abs(lab_in.mean(axis=0) - lab_target.mean(axis=0)).max() > 0.02  # it had something to correct
    np.testing.assert_allclose(lab_out.mean(axis=0), lab_target.mean(axis=0), atol=2e-3)
    np.testing.assert_allclose(lab_out.std(axis=0), lab_target.std(axis=0), rtol=0.05, atol=5e-4)
    with pytest.raises(InvalidInputError):
        ReinhardNormalizer().transform(target)
