"""The viewer's pictures without a browser: window/level, the heatmap recovered from a pre-read overlay, outlines."""

from __future__ import annotations

import numpy as np

from cds.interop.outputs.radiograph import HEATMAP_FLOOR, overlay
from cds.serving.ui import render


def test_window_level_maps_the_window_onto_the_grey_range() -> None:
    values = np.array([[-1000.0, -160.0, 40.0, 240.0, 1000.0]])
    assert render.window_level(values, 400, 40).tolist() == [[0, 0, 128, 255, 255]]
    assert render.window_level(values, 400, 40, invert=True).tolist() == [[255, 255, 128, 0, 0]]  # MONOCHROME1


def test_fit_shrinks_only_large_images_and_keeps_the_aspect() -> None:
    assert render.fit(np.zeros((300, 200), np.uint8), 1024).shape == (300, 200)
    assert render.fit(np.zeros((2048, 1024), np.uint8), 1024).shape == (1024, 512)


def test_the_heatmap_layer_shows_what_the_pre_reads_overlay_shows() -> None:
    rng = np.random.default_rng(3)
    image = rng.random((224, 224)).astype(np.float32)
    heat = np.zeros((224, 224), np.float32)
    cells = np.linspace(0, 224, 4).round().astype(int)
    for i, value in enumerate([0.1, 0.35, 0.6, 1.0, 0.8, 0.25, 0.0, 0.5, 0.9]):  # a 3x3 occlusion grid
        heat[cells[i // 3]:cells[i // 3 + 1], cells[i % 3]:cells[i % 3 + 1]] = value
    blended = overlay(image, heat).astype(np.float32)
    shown = heat > HEATMAP_FLOOR  # the overlay leaves out heat at or below the floor
    assert (blended[..., 0] - blended[..., 2] > 0)[shown].all() and (blended[..., 0] == blended[..., 2])[~shown].all()
    layer = render.heatmap_layer(heat)  # the viewer's layer is drawn from the raw map the pre-read saved
    assert layer.shape == (224, 224, 4) and layer[..., 3][~shown].max() == 0 and layer[..., 3].max() == 255
    assert (layer[..., 0] == 255).all() and layer[0, -1, 1] > layer[0, cells[1], 1]  # hotter is yellower


def test_outlines_are_the_borders_of_each_label_in_its_colour() -> None:
    labels = np.zeros((8, 8), np.uint8)
    labels[2:6, 2:6] = 1
    labels[3:5, 3:5] = 2
    layer = render.outline_layer(labels)
    border = layer[..., 3] == 255
    assert border[2, 2] and border[2, 5] and not border[0, 0] and border[3, 3]
    assert tuple(layer[2, 2, :3]) == (230, 25, 75) and tuple(layer[3, 3, :3]) == (60, 180, 75)
    assert render.colour(1) == "#e6194b" and (layer[~border] == 0).all()
