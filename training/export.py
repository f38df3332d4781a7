"""ONNX export with a parity check against torch, and an optional fp16 copy with fp32 inputs and outputs."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

OPSET = 18  # the lowest opset torch's exporter (torch.export based) targets
MAX_BATCH = 4096


@dataclass(frozen=True)
class Parity:
    """Largest absolute and relative differences between torch and ONNX Runtime outputs on held-out inputs."""

    max_abs: float
    max_rel: float
    samples: int


class ParityError(RuntimeError):
    """The exported model disagrees with torch beyond the tolerance."""


class _HalfPrecision(torch.nn.Module):
    """Runs ``module`` in fp16 while taking and returning fp32, so the input contract stays the same."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = copy.deepcopy(module).half()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x.half()).float()


def export_onnx(
    model: torch.nn.Module, example: torch.Tensor, path: Path, *, input_name: str, output_name: str, fp16: bool = False
) -> Path:
    """Write ``model`` (eval mode) as ONNX with a dynamic batch dimension; ``fp16`` computes in half precision."""
    model = model.eval()
    module = _HalfPrecision(model).eval() if fp16 else model
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(
        module,
        (example,),
        dynamo=True,
        opset_version=OPSET,
        input_names=[input_name],
        output_names=[output_name],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=MAX_BATCH)},),
        verbose=False,
    )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path))
    return path


def check_parity(
    model: torch.nn.Module, path: Path, inputs: np.ndarray, *, input_name: str, atol: float, batch: int = 64
) -> Parity:
    """Compare torch and ONNX Runtime (CPU) on ``inputs``; raise :class:`ParityError` above ``atol``."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    max_abs, max_rel = 0.0, 0.0
    with torch.inference_mode():
        for start in range(0, len(inputs), batch):
            chunk = inputs[start : start + batch]
            expected = model.eval()(torch.from_numpy(chunk)).numpy()
            actual = session.run(None, {input_name: chunk})[0]
            diff = np.abs(expected - actual)
            max_abs = max(max_abs, float(diff.max()))
            max_rel = max(max_rel, float((diff / np.maximum(np.abs(expected), 1e-6)).max()))
    parity = Parity(max_abs=max_abs, max_rel=max_rel, samples=len(inputs))
    if max_abs > atol:
        raise ParityError(f"ONNX export of {path.name} differs from torch by {max_abs:.3g} > {atol:.3g}")
    return parity
