import numpy as np
import pytest

from cds.pipelines.imaging.saliency import localises, occlusion_heatmaps, probability_scaled


def _model(batch: np.ndarray) -> np.ndarray:
    """Label 0 depends on the brightness of the top-left quadrant, label 1 on the bottom-right; label 2 on nothing."""
    top_left = batch[:, 0, :32, :32].mean(axis=(1, 2))
    bottom_right = batch[:, 0, 32:, 32:].mean(axis=(1, 2))
    return np.stack([1 / (1 + np.exp(-8 * (top_left - 0.5))), 1 / (1 + np.exp(-8 * (bottom_right - 0.5))),
                     np.full(len(batch), 0.7)], axis=1).astype(np.float32)


def test_heatmaps_point_at_the_region_each_label_depends_on() -> None:
    image = np.zeros((1, 64, 64), np.float32)
    image[0, :32, :32] = 1.0
    image[0, 32:, 32:] = 1.0
    maps = occlusion_heatmaps(_model, image, [0, 1, 2], grid=4, batch=5)
    assert maps.shape == (3, 64, 64) and maps.max() <= 1.0 and maps.min() >= 0.0
    assert maps[0, :32, :32].mean() > 0.5 and maps[0, 32:, :].max() == 0.0
    assert maps[1, 32:, 32:].mean() > 0.5 and maps[1, :32, :].max() == 0.0
    assert maps[2].max() == 0.0  # nothing the image shows changes it


def test_one_image_only() -> None:
    with pytest.raises(ValueError, match="one image"):
        occlusion_heatmaps(_model, np.zeros((2, 1, 8, 8), np.float32), [0])


def test_a_map_that_points_nowhere_is_no_localisation() -> None:
    image = np.zeros((1, 64, 64), np.float32)
    image[0, :32, :32] = 1.0

    def faint(batch: np.ndarray) -> np.ndarray:  # hiding the quadrant moves the score by 0.002 only
        return (0.6 + 0.002 * batch[:, 0, :32, :32].mean(axis=(1, 2)))[:, None].astype(np.float32)

    (flat,) = occlusion_heatmaps(faint, image, [0], grid=4)
    assert flat.max() == 0.0 and not localises(flat)  # below the least drop: no picture of noise
    (weak,) = occlusion_heatmaps(faint, image, [0], grid=4, min_drop=0.0001)
    assert localises(weak) and weak[:32, :32].min() == 1.0
    assert not localises(np.ones((8, 8), np.float32))  # every region alike: points nowhere
    assert localises(occlusion_heatmaps(_model, image, [0], grid=4)[0])


def test_a_map_on_the_probability_scale_reaches_its_finding_s_probability_and_no_further() -> None:
    shape = np.zeros((8, 8), np.float32)
    shape[2:4, 2:4] = 0.5
    shape[5, 5] = 0.25  # peak-normalised or not: the shape counts, its peak becomes the probability
    low, high = probability_scaled(shape, 0.36), probability_scaled(shape, 0.97)
    assert low.dtype == np.float32 and low.max() == pytest.approx(0.36) and high.max() == pytest.approx(0.97)
    assert low[5, 5] == pytest.approx(0.18) and low[0, 0] == 0.0  # the same shape, scaled, nothing added
    assert np.allclose(low / 0.36, high / 0.97)
    assert probability_scaled(np.zeros((4, 4), np.float32), 0.9).max() == 0.0  # no localisation stays none
    assert probability_scaled(shape, 1.5).max() == pytest.approx(1.0)  # never off the 0-1 legend
