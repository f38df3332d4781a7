"""Work per item counted from a model's ONNX graph, and GPU peaks, for the "fraction of peak" column.

FLOPs are counted for the operators that dominate convolutional and dense networks (``Conv``,
``ConvTranspose``, ``Gemm``, ``MatMul``; one multiply-add = 2 FLOPs) from shapes inferred at batch 1.
Normalisation, activations and pooling are left out, so the count is slightly low (DenseNet-121 at
224×224 comes to 5.5 GFLOP with one input channel, 5.7 with three). Peaks are dense (no sparsity) FP16/BF16
tensor-core figures from the vendor's data sheets; a device not in :data:`DENSE_FP16_TFLOPS` has no fraction.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

# (pattern on torch.cuda.get_device_name, label, dense fp16 TFLOP/s). An H100 SXM names itself "H100 80GB HBM3".
DENSE_FP16_TFLOPS: tuple[tuple[str, str, float], ...] = (
    (r"H100.*(SXM|80GB HBM3)", "H100 SXM", 989.0),
    (r"H200(?!.*NVL)", "H200", 989.0),
)


def device_peak(device: str) -> tuple[str, float] | None:
    """``(label, dense fp16 TFLOP/s)`` for a GPU name, or ``None`` when its peak is not in the table."""
    for pattern, label, tflops in DENSE_FP16_TFLOPS:
        if re.search(pattern, device):
            return label, tflops
    return None


def gflop_per_item(path: Path) -> float | None:
    """GFLOP for one item through the ONNX graph at ``path``.

    ``None`` when shapes cannot be inferred or the graph has none of the counted operators (e.g. a scikit-learn
    ``LinearClassifier``).
    """
    import onnx
    from onnx import shape_inference

    model = onnx.load(str(path))
    for tensor in model.graph.input:
        dims = tensor.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_value = 1
    try:
        model = shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - an uncountable graph just has no FLOP figure
        return None
    graph = model.graph
    shapes = {i.name: list(i.dims) for i in graph.initializer}
    for info in (*graph.input, *graph.value_info, *graph.output):
        shapes[info.name] = [d.dim_value for d in info.type.tensor_type.shape.dim]
    total = 0
    for node in graph.node:
        flops = _node_flops(node.op_type, [shapes.get(n) for n in node.input], shapes.get(node.output[0]))
        if flops is None:
            return None
        total += flops
    return total / 1e9 if total else None


def _node_flops(op: str, inputs: list[list[int] | None], output: list[int] | None) -> int | None:
    if op not in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
        return 0
    if output is None or len(inputs) < 2 or inputs[1] is None or not all(output) or not all(inputs[1]):
        return None
    weight = inputs[1]
    if op == "Conv":  # weight [out, in/groups, *kernel]: each output element needs in/groups × kernel MACs
        return 2 * math.prod(output) * math.prod(weight[1:])
    if op == "ConvTranspose":  # weight [in, out/groups, *kernel]: each input element spreads out/groups × kernel
        first = inputs[0]
        if first is None or not all(first):
            return None
        return 2 * math.prod(first) * math.prod(weight[1:])
    reduced = weight[0] if op == "Gemm" or len(weight) < 2 else weight[-2]  # K of [.., K, N]
    return 2 * math.prod(output) * reduced
