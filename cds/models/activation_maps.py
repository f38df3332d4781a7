"""Class activation maps from the same forward pass: expose a global-pooling classifier's last feature map as maps.

A network that ends in ``features → global average pooling → linear`` (DenseNet, ResNet) computes each label's
logit as the spatial mean of ``W[k] · F + b[k]`` over the last feature map ``F`` [N, C, h, w]. That map, per label,
is the class activation map (Zhou et al., CVPR 2016), and it is exact: its mean is the logit. This module adds it
to an ONNX graph as a second output ``[N, labels, h, w]`` (logit units) beside the scores, so a pre-read gets its
heatmaps from the one inference it runs anyway, on ONNX Runtime, TensorRT and Triton alike.

Recognised endings: ``GlobalAveragePool`` or ``ReduceMean`` over the spatial axes, an optional ``Flatten`` /
``Reshape`` / ``Squeeze``, then ``Gemm`` or ``MatMul`` (+ ``Add``). Other graphs raise ``no_global_pooling_head``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from cds.errors import InvalidInputError

if TYPE_CHECKING:
    import onnx

ACTIVATION_MAPS = "activation_maps"
_POOLS = {"GlobalAveragePool", "ReduceMean"}
_PASSTHROUGH = {"Flatten", "Reshape", "Squeeze"}


def _producer(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in model.graph.node for output in node.output}


def _consumers(model: onnx.ModelProto, tensor: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if tensor in node.input]


def _linear_head(model: onnx.ModelProto) -> tuple[str, np.ndarray, np.ndarray]:
    """The pooled feature map's name, the weights [K, C] and the bias [K] of the classifier that reads it."""
    from onnx import numpy_helper

    initializers = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    for pool in model.graph.node:
        if pool.op_type not in _POOLS:
            continue
        tensor, node = pool.output[0], None
        while True:
            following = _consumers(model, tensor)
            if len(following) != 1:
                break
            node = following[0]
            if node.op_type not in _PASSTHROUGH:
                break
            tensor = node.output[0]
        if node is None or node.op_type not in ("Gemm", "MatMul") or node.input[1] not in initializers:
            continue
        weight = initializers[node.input[1]].astype(np.float32)
        attributes = {a.name: a.i for a in node.attribute if a.type == a.INT}
        if node.op_type == "MatMul" or not attributes.get("transB", 0):
            weight = weight.T
        bias = np.zeros(weight.shape[0], np.float32)
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] in initializers:
            bias = initializers[node.input[2]].astype(np.float32).reshape(-1)
        elif node.op_type == "MatMul":
            after = _consumers(model, node.output[0])
            if len(after) == 1 and after[0].op_type == "Add":
                other = [name for name in after[0].input if name in initializers]
                if other:
                    bias = initializers[other[0]].astype(np.float32).reshape(-1)
        return pool.input[0], weight, bias
    raise InvalidInputError("the graph does not end in global average pooling and a linear layer; class activation "
                            "maps need that head (use occlusion instead)", code="no_global_pooling_head")


def add_class_activation_maps(model: onnx.ModelProto, output_name: str = ACTIVATION_MAPS) -> int:
    """Add output ``output_name`` float32 [N, labels, h, w] (logit units) to ``model`` in place; returns labels.

    Raises:
        InvalidInputError: ``no_global_pooling_head`` when the graph has no recognised classifier head.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    features, weight, bias = _linear_head(model)
    prefix = f"cds_{output_name}"
    model.graph.initializer.extend([
        numpy_helper.from_array(weight, f"{prefix}_weight"),
        numpy_helper.from_array(bias.reshape(1, -1, 1, 1), f"{prefix}_bias"),
    ])
    model.graph.node.extend([
        helper.make_node("Einsum", [f"{prefix}_weight", features], [f"{prefix}_raw"], equation="kc,nchw->nkhw",
                         name=f"{prefix}_einsum"),
        helper.make_node("Add", [f"{prefix}_raw", f"{prefix}_bias"], [output_name], name=f"{prefix}_bias_add"),
    ])
    labels = int(weight.shape[0])
    model.graph.output.append(helper.make_tensor_value_info(output_name, TensorProto.FLOAT,
                                                            ["batch", labels, "height", "width"]))
    onnx.checker.check_model(model)
    return labels
