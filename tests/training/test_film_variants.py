"""Domain randomisation of generated films: each family changes what the pre-read sees, through the product's own
display conversion, and held-out real images never reach training."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.chest_xray import render
from training.data.film_variants import FAMILIES, draw_families, film
from training.data.non_chest import real_non_chest

SCENE = render(160, 3, 1)[0]


def _film(families: set[str], seed: int = 0) -> np.ndarray:
    return film(SCENE, np.random.default_rng(seed), families)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_changes_the_displayed_image(family: str) -> None:
    plain, varied = _film(set()), _film({family})
    assert varied.dtype == np.float32 and varied.ndim == 2
    assert float(varied.min()) >= 0.0 and float(varied.max()) <= 1.0
    if family == "monochrome1":  # stored inverted, displayed upright again by the reader's MONOCHROME1 handling
        np.testing.assert_allclose(varied, plain, atol=1.5 / 4095)
        return
    if family == "bit_depth":  # a linear rescale the display undoes; what remains is the quantisation
        assert not np.array_equal(varied, plain)
    elif varied.shape == plain.shape:
        assert float(np.abs(varied - plain).mean()) > 1e-3, family
    else:
        assert family == "size_aspect"


def test_random_draws_vary_and_repeat_with_their_seed() -> None:
    draws = [draw_families(np.random.default_rng(seed)) for seed in range(50)]
    assert len({frozenset(d) for d in draws}) > 20 and set().union(*draws) == set(FAMILIES)
    np.testing.assert_array_equal(_film({"noise_blur", "jpeg"}, seed=4), _film({"noise_blur", "jpeg"}, seed=4))


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown families"):
        _film({"sepia"})


def test_held_out_real_images_are_never_the_training_ones() -> None:
    trained = {name for name, _ in real_non_chest(held_out=False)}
    held_out = {name for name, _ in real_non_chest(held_out=True)}
    assert trained and held_out and not trained & held_out
