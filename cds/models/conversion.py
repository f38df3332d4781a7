"""Torch to ONNX and back: graphs, TorchScript, MONAI bundle networks, the one exporter and its parity check.

Reads an ONNX graph's contract, loads TorchScript or builds a MONAI bundle's network, exports torch to ONNX with a
dynamic batch (:func:`export_onnx`, optionally computing in fp16), appends an output activation and compares both
engines (:func:`check_parity`). Training (``training/release.py``) and ``cds models import``
(:mod:`cds.models.importer`) both export through here; torch, onnx and ONNX Runtime are imported only when a
function needs them.

Trust boundary: an ONNX file is data. A TorchScript file is code (TorchScript, run by the torch interpreter), so
import only TorchScript you trust. A MONAI bundle's ``network_def`` goes through ``monai.bundle.ConfigParser`` only
after :func:`safe_network_config` has checked it: no ``$`` expressions, ``%`` macros or ``_requires_``, references
only to other entries that pass the same check, and every ``_target_`` a ``torch.nn.Module`` class defined under
``monai.networks`` (rewritten to its full path, so ConfigParser instantiates exactly the class that was checked).
Weights (``model.pt``) are read with ``torch.load(weights_only=True)``, which unpickles tensors only.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import pydoc
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import yaml

from cds.errors import InvalidInputError
from cds.models.spec import Activation
from cds.models.tensors import DYNAMIC, DType, TensorSpec

if TYPE_CHECKING:
    import onnx
    import torch

OPSET = 18
MAX_BATCH = 4096
NETWORK_KEY = "network_def"
_NETWORK_MODULES = "monai.networks."
_ONNX_DTYPES = {1: DType.FLOAT32, 10: DType.FLOAT16, 11: DType.FLOAT64, 7: DType.INT64, 6: DType.INT32,
                2: DType.UINT8, 9: DType.BOOL}  # onnx.TensorProto element types


@dataclass(frozen=True)
class GraphSignature:
    """An ONNX graph's inputs and outputs as tensor specs (batch dimension always ``-1``).

    Attributes:
        inputs: Graph inputs that are not initializers.
        outputs: Graph outputs.
        fixed_batch: The batch size the graph fixes, or ``None`` when the batch dimension is dynamic.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    fixed_batch: int | None


def read_signature(model: onnx.ModelProto) -> GraphSignature:
    """The contract of ``model``'s graph: names, dtypes and shapes (symbolic or unknown dimensions become ``-1``).

    Raises:
        InvalidInputError: A tensor type cds does not exchange, a scalar tensor, or batch sizes that disagree.
    """
    initializers = {i.name for i in model.graph.initializer}
    batches: set[int] = set()

    def spec(value: Any) -> TensorSpec:
        tensor = value.type.tensor_type
        dtype = _ONNX_DTYPES.get(tensor.elem_type)
        if dtype is None:
            raise InvalidInputError(
                f"ONNX tensor '{value.name}' has element type {tensor.elem_type}; cds exchanges "
                f"{', '.join(d.value for d in DType)}", code="unsupported_tensor_type")
        dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else DYNAMIC for d in tensor.shape.dim]
        if not dims:
            raise InvalidInputError(f"ONNX tensor '{value.name}' has no batch dimension",
                                    code="unsupported_tensor_type")
        if dims[0] != DYNAMIC:
            batches.add(dims[0])
        return TensorSpec(name=value.name, dtype=dtype, shape=(DYNAMIC, *dims[1:]))

    inputs = tuple(spec(v) for v in model.graph.input if v.name not in initializers)
    outputs = tuple(spec(v) for v in model.graph.output)
    if len(batches) > 1:
        raise InvalidInputError(f"ONNX graph fixes several batch sizes {sorted(batches)}", code="fixed_batch")
    return GraphSignature(inputs=inputs, outputs=outputs, fixed_batch=batches.pop() if batches else None)


def output_activation(model: onnx.ModelProto, output: str) -> Activation | None:
    """The activation that produces ``output`` (sigmoid or softmax), or ``None`` when another op does."""
    ops = {"Sigmoid": Activation.SIGMOID, "Softmax": Activation.SOFTMAX}
    producer = next((n for n in model.graph.node if output in n.output), None)
    return None if producer is None else ops.get(producer.op_type)


def append_activation(model: onnx.ModelProto, output: str, activation: Activation) -> None:
    """Apply ``activation`` to graph output ``output`` in place (softmax over dimension 1); the name is kept."""
    import onnx

    if activation is Activation.NONE:
        return
    raw = f"{output}_raw"
    for node in model.graph.node:
        node.output[:] = [raw if name == output else name for name in node.output]
        node.input[:] = [raw if name == output else name for name in node.input]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    if activation is Activation.SIGMOID:
        node = onnx.helper.make_node("Sigmoid", [raw], [output], name=f"cds_{output}_sigmoid")
    elif opset >= 13:
        node = onnx.helper.make_node("Softmax", [raw], [output], axis=1, name=f"cds_{output}_softmax")
    else:
        raise InvalidInputError(
            f"softmax over channels needs ONNX opset 13 or later; the graph uses opset {opset}", code="onnx_invalid")
    model.graph.node.append(node)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """A TorchScript module (``torch.jit.save`` output) on CPU, in eval mode.

    Raises:
        InvalidInputError: The file is not TorchScript (``torchscript_invalid``).
    """
    import torch

    try:
        module = cast("torch.jit.ScriptModule", torch.jit.load(str(path), map_location="cpu"))  # type: ignore[no-untyped-call]
    except (RuntimeError, ValueError) as exc:
        raise InvalidInputError(
            f"{path.name} is not a TorchScript file (torch.jit.save output): {_first_line(exc)}",
            code="torchscript_invalid") from exc
    return module.eval()


def safe_network_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a bundle config that builds ``network_def``, checked against the trust boundary (module doc).

    Returns ``network_def`` and the entries it references, with each ``_target_`` replaced by its full path.

    Raises:
        InvalidInputError: ``bundle_network_refused`` naming what was refused; ``bundle_incomplete`` when
            ``network_def`` or a referenced entry is missing.
    """
    selected: dict[str, Any] = {}
    pending = [NETWORK_KEY]
    while pending:
        key = pending.pop()
        if key in selected:
            continue
        if key not in config:
            raise InvalidInputError(f"the inference config has no entry '{key}' (needed to build the network)",
                                    code="bundle_incomplete")
        selected[key] = _checked(config[key], key, pending)
    return selected


def _checked(value: Any, where: str, references: list[str]) -> Any:
    if isinstance(value, Mapping):
        refused = sorted(set(value) & {"_requires_"})
        if refused or value.get("_mode_", "default") != "default":
            raise InvalidInputError(f"{where}: '_requires_' and '_mode_' are not accepted in a network definition",
                                    code="bundle_network_refused")
        return {k: _target(v, where) if k == "_target_" else _checked(v, f"{where}::{k}", references)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_checked(v, f"{where}::{i}", references) for i, v in enumerate(value)]
    if isinstance(value, str) and value[:1] in ("$", "%"):
        raise InvalidInputError(
            f"{where} is {value!r}: Python expressions ($) and macros (%) are not evaluated on import; "
            "write plain values in network_def", code="bundle_network_refused")
    if isinstance(value, str) and value.startswith("@"):
        references.append(value[1:].split("::")[0].split("#")[0])
    return value


def _target(target: Any, where: str) -> str:
    import torch
    from monai.bundle.config_item import ComponentLocator

    module = ComponentLocator().get_component_module_name(target) if isinstance(target, str) else None
    path = f"{module[0] if isinstance(module, list) else module}.{target}" if module else str(target)
    component = pydoc.locate(path) if path.startswith(_NETWORK_MODULES) else None
    if not (isinstance(component, type) and issubclass(component, torch.nn.Module)):
        raise InvalidInputError(
            f"{where}::_target_ is {target!r}; only torch.nn.Module classes from {_NETWORK_MODULES}* are built "
            "on import", code="bundle_network_refused")
    return path


def bundle_weights(folder: Path) -> Path:
    """A bundle's ``models/model.ts`` (TorchScript, preferred: no config is evaluated) or ``models/model.pt``.

    Raises:
        InvalidInputError: Neither exists (``bundle_incomplete``).
    """
    for name in ("model.ts", "model.pt"):
        if (folder / "models" / name).is_file():
            return folder / "models" / name
    raise InvalidInputError(f"bundle {folder.name} has neither models/model.ts (TorchScript) nor models/model.pt "
                            "(state_dict)", code="bundle_incomplete")


def load_bundle_network(folder: Path) -> torch.nn.Module:
    """A bundle's network in eval mode: its TorchScript, or its ``network_def`` with the ``model.pt`` weights.

    ``network_def`` comes from ``configs/inference.json`` (or ``.yaml``) and is built by
    :func:`build_bundle_network`.

    Raises:
        InvalidInputError: ``bundle_incomplete``, ``bundle_network_refused`` or ``bundle_network_invalid``.
    """
    weights = bundle_weights(folder)
    if weights.suffix == ".ts":
        return load_torchscript(weights)
    paths = [folder / "configs" / n for n in ("inference.json", "inference.yaml", "inference.yml")]
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise InvalidInputError(f"bundle {folder.name} has models/model.pt but no configs/inference.json to build "
                                "its network from (network_def)", code="bundle_incomplete")
    try:
        text = path.read_text(encoding="utf-8")
        config = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"{path} is not valid: {_first_line(exc)}", code="bundle_incomplete") from exc
    if not isinstance(config, dict):
        raise InvalidInputError(f"{path} must be a mapping, got {type(config).__name__}", code="bundle_incomplete")
    return build_bundle_network(config, weights)


def build_bundle_network(config: Mapping[str, Any], weights: Path) -> torch.nn.Module:
    """Build a bundle's ``network_def`` (checked by :func:`safe_network_config`) and load ``weights`` into it.

    ``weights`` holds a ``state_dict``, or a checkpoint dict with the ``state_dict`` under ``model``.

    Raises:
        InvalidInputError: ``bundle_network_refused`` or ``bundle_incomplete`` (see :func:`safe_network_config`);
            ``bundle_network_invalid`` when the network cannot be built or the weights do not fit it.
    """
    import torch
    from monai.bundle.config_parser import ConfigParser

    checked = safe_network_config(config)
    try:
        network = ConfigParser(checked).get_parsed_content(NETWORK_KEY)
    except Exception as exc:  # noqa: BLE001 - ConfigParser re-raises whatever the constructor raised
        raise InvalidInputError(f"cannot build network_def: {_first_line(exc)}", code="bundle_network_invalid") from exc
    if not isinstance(network, torch.nn.Module):
        raise InvalidInputError(f"network_def built a {type(network).__name__}, not a torch.nn.Module",
                                code="bundle_network_invalid")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]
        network.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - torch.load and load_state_dict raise many kinds
        raise InvalidInputError(
            f"{weights.name} is not a state_dict of the network in network_def: {_first_line(exc)}",
            code="bundle_network_invalid") from exc
    return network.eval()


def _half_precision(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` computing in fp16 while taking and returning fp32, so the input contract stays the same."""
    import torch

    class HalfPrecision(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = copy.deepcopy(inner).half()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.inner(x.half()).float()  # type: ignore[no-any-return]

    return HalfPrecision(module).eval()


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path, *, input_name: str, output_name: str,
                fp16: bool = False) -> Path:
    """Write ``module`` (put in eval mode) as ONNX (opset 18) with a dynamic batch dimension; returns ``path``.

    A ScriptModule goes through the TorchScript-based exporter (``dynamo=False``: the ``torch.export`` path does
    not take ScriptModules in torch 2.13); an eager module through ``torch.export``, falling back to the
    TorchScript-based exporter when ``torch.export`` cannot trace it. ``fp16`` exports a copy that computes in half
    precision with fp32 inputs and outputs (eager modules only).

    Raises:
        InvalidInputError: Neither exporter could write the model (``export_failed``).
    """
    import torch

    module = module.eval()
    if fp16:
        module = _half_precision(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    # the exporters announce progress on stdout and warn about deprecations; neither belongs in cds output
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not isinstance(module, torch.jit.ScriptModule):
            try:
                batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
                program = torch.onnx.export(module, (example,), dynamo=True, verbose=False, opset_version=OPSET,
                                            input_names=[input_name], output_names=[output_name],
                                            dynamic_shapes=({0: batch},))
                if program is not None:
                    program.save(str(path))
                    return path
            except Exception as exc:  # noqa: BLE001 - fall back to the TorchScript-based exporter
                errors.append(f"torch.export: {_first_line(exc)}")
        try:
            torch.onnx.export(module, (example,), str(path), dynamo=False, opset_version=OPSET,
                              input_names=[input_name], output_names=[output_name],
                              dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}})
            return path
        except Exception as exc:  # noqa: BLE001 - the exporter raises many kinds
            errors.append(f"TorchScript-based exporter: {_first_line(exc)}")
    raise InvalidInputError(f"cannot export the model to ONNX: {'; '.join(errors)}", code="export_failed")


def run_torch(module: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
    """``module``'s single tensor output on ``inputs`` (CPU).

    Raises:
        InvalidInputError: The module fails on the inputs or returns something other than one tensor.
    """
    import torch

    try:
        with torch.no_grad():
            output = module(torch.from_numpy(inputs))
    except Exception as exc:  # noqa: BLE001 - a user's model may raise anything
        raise InvalidInputError(
            f"the model fails on an input of shape {list(inputs.shape)}: {_first_line(exc)}", code="model_run_failed"
        ) from exc
    if not isinstance(output, torch.Tensor):
        raise InvalidInputError(f"the model returns a {type(output).__name__}; cds imports models with one "
                                "tensor output", code="unsupported_model_output")
    result: np.ndarray = output.float().numpy()
    return result


def activate(values: np.ndarray, activation: Activation) -> np.ndarray:
    """``values`` with ``activation`` applied (softmax over dimension 1), as the appended ONNX node computes it."""
    if activation is Activation.SIGMOID:
        result: np.ndarray = 1.0 / (1.0 + np.exp(-values.astype(np.float64)))
        return result
    if activation is Activation.SOFTMAX:
        shifted = np.exp(values.astype(np.float64) - values.max(axis=1, keepdims=True))
        result = shifted / shifted.sum(axis=1, keepdims=True)
        return result
    return values


def load_onnx(path: Path) -> onnx.ModelProto:
    """An ONNX model that passes ``onnx.checker``.

    Raises:
        InvalidInputError: Not a valid ONNX model (``unsupported_model_format``).
    """
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:  # noqa: BLE001 - protobuf and the checker raise many kinds
        raise InvalidInputError(f"{path.name} is not a valid ONNX model ({_first_line(exc)}); expected an ONNX "
                                "file, a TorchScript file or a MONAI bundle folder",
                                code="unsupported_model_format") from exc
    return model


@dataclass(frozen=True)
class Parity:
    """Largest absolute and relative differences between torch and ONNX Runtime outputs on the same inputs."""

    max_abs: float
    max_rel: float
    samples: int


class ParityError(InvalidInputError):
    """The exported model disagrees with torch beyond the tolerance."""

    default_code = "parity_failed"


def check_parity(reference: torch.nn.Module | np.ndarray, path: Path, inputs: np.ndarray, *, input_name: str,
                 atol: float, batch: int = 64) -> Parity:  # fmt: skip
    """Compare ONNX Runtime (CPU) running ``path`` on ``inputs`` with torch, ``batch`` inputs at a time.

    ``reference`` is the torch module, run here, or its outputs on ``inputs`` computed beforehand (an export may
    alter a ScriptModule; an appended activation is applied by the caller).

    Raises:
        ParityError: ``parity_failed``: the largest absolute difference is above ``atol``, or shapes differ.
        InvalidInputError: ONNX Runtime cannot run the file (``onnx_invalid``).
    """
    onnx, max_abs, max_rel = onnx_runner(path), 0.0, 0.0
    for start in range(0, len(inputs), batch):
        chunk = inputs[start : start + batch]
        expected = (run_torch(reference, chunk) if not isinstance(reference, np.ndarray)
                    else reference[start : start + batch])  # fmt: skip
        actual = onnx({input_name: chunk})[0]
        if expected.shape != actual.shape:
            raise ParityError(f"ONNX export {path.name} differs from torch in shape: {list(expected.shape)} vs "
                              f"{list(actual.shape)}")
        diff = np.abs(expected.astype(np.float64) - actual)
        max_abs = max(max_abs, float(diff.max()))
        max_rel = max(max_rel, float((diff / np.maximum(np.abs(expected), 1e-6)).max()))
    if not max_abs <= atol:
        raise ParityError(f"ONNX export {path.name} differs from torch by {max_abs:.3g} (max abs over {len(inputs)} "
                          f"inputs), above the tolerance {atol:g}")
    return Parity(max_abs=max_abs, max_rel=max_rel, samples=len(inputs))


def smoke_run(path: Path, inputs: list[TensorSpec], batch: int) -> None:
    """Run the ONNX file once on random inputs when every input dimension is known; raise if it cannot run."""
    if all(DYNAMIC not in t.shape[1:] for t in inputs):
        run_onnx(path, {t.name: random_inputs(t, (batch, *t.shape[1:])) for t in inputs})


def onnx_runner(path: Path) -> Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]:
    """A CPU ONNX Runtime session on ``path`` as a function: feeds -> every output, in graph order.

    Raises:
        InvalidInputError: ONNX Runtime cannot load or run the file (``onnx_invalid``).
    """
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        raise InvalidInputError(f"ONNX Runtime cannot load {path.name}: {_first_line(exc)}",
                                code="onnx_invalid") from exc

    def run(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        try:
            outputs: list[np.ndarray] = session.run(None, dict(feeds))
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            raise InvalidInputError(f"ONNX Runtime cannot run {path.name}: {_first_line(exc)}",
                                    code="onnx_invalid") from exc
        return outputs

    return run


def run_onnx(path: Path, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """Run the ONNX file once on CPU; every output, in graph order (see :func:`onnx_runner`)."""
    return onnx_runner(path)(feeds)


def random_inputs(spec: TensorSpec, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniform random values of ``spec``'s dtype inside its value range (``[0, 1)`` when it has none)."""
    low, high = spec.value_range or (0.0, 1.0)
    values = np.random.default_rng(seed).uniform(low, high, size=shape)
    return values.astype(spec.dtype.numpy)


def _first_line(exc: BaseException) -> str:
    """The first line of an error, and its last when they differ (TorchScript puts the cause last)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    text = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return text[:400]
