"""Class activation maps added to an exported classifier: exact (their mean is the logit), or refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cds.errors import InvalidInputError
from cds.models.activation_maps import ACTIVATION_MAPS, add_class_activation_maps
from cds.models.conversion import export_onnx
from cds.models.nets import build_network
from cds.models.spec import Activation, Architecture, NetworkSpec
from cds.pipelines.imaging.saliency import upsample_map

SMALL_DENSENET = NetworkSpec(architecture=Architecture("monai.DenseNet"), output_activation=Activation.NONE,
                             params={"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "init_features": 8,
                                     "growth_rate": 4, "block_config": [2, 2], "bn_size": 2})


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_the_maps_of_an_exported_densenet_average_to_its_logits(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = build_network(SMALL_DENSENET).eval()
    images = np.random.default_rng(1).normal(size=(4, 1, 64, 64)).astype(np.float32)
    path = export_onnx(torch.nn.Sequential(network, torch.nn.Sigmoid()), torch.from_numpy(images[:1]),
                       tmp_path / "model.onnx", input_name="image", output_name="probabilities")
    model = onnx.load(str(path))
    assert add_class_activation_maps(model) == 3
    probabilities, maps = _session(model).run(None, {"image": images})
    assert maps.shape[:2] == (4, 3) and maps.shape[2] > 1 and maps.shape[3] > 1
    logits = maps.mean(axis=(2, 3))
    np.testing.assert_allclose(1.0 / (1.0 + np.exp(-logits)), probabilities, atol=1e-5)
    with torch.inference_mode():  # and the scores themselves are unchanged by the added output
        np.testing.assert_allclose(torch.sigmoid(network(torch.from_numpy(images))).numpy(), probabilities,
                                   atol=1e-5)
    assert [o.name for o in model.graph.output] == ["probabilities", ACTIVATION_MAPS]


def test_a_graph_without_a_global_pooling_head_is_refused(tmp_path: Path) -> None:
    convolution = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    path = export_onnx(convolution, torch.zeros(1, 1, 8, 8), tmp_path / "conv.onnx", input_name="image",
                       output_name="out")
    with pytest.raises(InvalidInputError) as err:
        add_class_activation_maps(onnx.load(str(path)))
    assert err.value.code == "no_global_pooling_head"


def test_a_flat_map_is_no_localisation_and_a_peaked_one_points_at_its_peak() -> None:
    assert not upsample_map(np.full((7, 7), 3.0, np.float32), (224, 224)).any()
    assert not upsample_map(np.random.default_rng(0).normal(0, 0.05, (7, 7)), (224, 224)).any()  # below contrast
    peaked = np.zeros((7, 7), np.float32)
    peaked[1, 5] = 4.0
    heatmap = upsample_map(peaked, (224, 224))
    assert heatmap.shape == (224, 224) and heatmap.max() == pytest.approx(1.0)
    row, column = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
    assert 32 <= row < 64 and 160 <= column < 192  # inside the cell that holds the evidence
