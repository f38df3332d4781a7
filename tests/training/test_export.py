from pathlib import Path

import numpy as np
import pytest
import torch

from cds.models.conversion import ParityError, check_parity, export_onnx
from training.data.lesions import generate


def test_generator_is_deterministic_and_labelled() -> None:
    a, b = generate(20, seed=5), generate(20, seed=5)
    np.testing.assert_array_equal(a.images, b.images)
    assert a.images.shape == (20, 1, 64, 64) and a.images.dtype == np.float32
    assert a.images.min() >= 0.0 and a.images.max() <= 1.0
    assert set(np.unique(a.labels)) <= {0.0, 1.0}
    assert not np.array_equal(generate(20, seed=6).images, a.images)


def test_export_parity_passes_and_fails_against_tolerance(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    inputs = generate(8, seed=1).images
    model(torch.from_numpy(inputs))  # materialise the lazy layer
    path = export_onnx(model, torch.from_numpy(inputs[:1]), tmp_path / "m.onnx", input_name="x", output_name="y")
    parity = check_parity(model, path, inputs, input_name="x", atol=1e-4)
    assert parity.samples == 8 and parity.max_abs < 1e-4
    with torch.no_grad():
        model[2].bias += 1.0  # torch model drifts away from the exported file
    with pytest.raises(ParityError, match="differs from torch"):
        check_parity(model, path, inputs, input_name="x", atol=1e-4)
