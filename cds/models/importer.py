"""Bring your own model: import an ONNX file, a TorchScript file or a MONAI bundle into the registry.

:func:`import_model` writes ``<registry>/<name>/<version>/spec.yaml`` and ``model.onnx`` plus a Markdown model card
that says plainly that cds neither trained nor evaluated the model. What the user states (:class:`ImportOptions`)
overrides or completes what the source says; TorchScript and bundle networks are converted to ONNX with a dynamic
batch dimension and refused when ONNX Runtime disagrees with torch beyond a tolerance. Every refusal is an
:class:`~cds.errors.InvalidInputError` with a specific code. :mod:`cds.models.conversion` says what runs on import
(the trust boundary).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cds.errors import InvalidInputError
from cds.models import conversion
from cds.models.card import CardContent, write_card
from cds.models.registry import SPEC_FILENAME, load_spec, sha256_file
from cds.models.spec import Activation, Modality, ModelSpec, Task
from cds.models.tensors import DYNAMIC, DType, TensorSpec

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import torch

DEFAULT_INTENDED_USE = ("Not stated when the model was imported. Research and engine testing only; "
                        "not for diagnostic use.")
_MODALITIES = {"ct": Modality.CT, "mr": Modality.MR, "mri": Modality.MR, "cr": Modality.CR, "dx": Modality.DX,
               "xray": Modality.DX, "cxr": Modality.DX, "sm": Modality.SM, "pathology": Modality.SM,
               "histopathology": Modality.SM, "wsi": Modality.SM}
_TASKS = {"classes": Task.CLASSIFICATION, "class": Task.CLASSIFICATION, "segmentation": Task.SEGMENTATION}


class SourceFormat(StrEnum):
    """What a user's model comes as."""

    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"
    MONAI_BUNDLE = "monai-bundle"


@dataclass(frozen=True)
class ImportOptions:
    """What the user states about the model; each field that is set overrides what the source says.

    Attributes:
        name: Registry name (default: the bundle's ``name``, made a valid registry name).
        version: Registry version (default: the bundle's ``version``).
        task: Default: the bundle's output ``format``, else the output shape (``[N, C]`` is classification, an
            output of the input's rank is segmentation).
        modality: Input modality (default: the bundle's input ``modality``, else ``OT``).
        labels: One name per output channel (default: the bundle's ``channel_def``); required.
        thresholds: Operating threshold per label.
        input_shape: Input shape without the batch dimension, e.g. ``(1, 224, 224)``; required for TorchScript,
            pins dynamic dimensions of an ONNX graph, overrides a bundle's.
        activation: Appended to the first output. Classification outputs must be probabilities, so it may stay
            unset there only when the graph already ends in a sigmoid or softmax.
        description: What the model outputs (default: the bundle's ``description``).
        intended_use: Who may use the output, for what (default: the bundle's ``intended_use``).
        not_for_diagnostic_use: Whether results carry the "not for diagnostic use" caveat.
        parity_atol: Largest absolute torch vs ONNX Runtime difference accepted on conversion.
        parity_samples: Random inputs the parity check runs (one batch).
    """

    name: str | None = None
    version: str | None = None
    task: Task | None = None
    modality: Modality | None = None
    labels: tuple[str, ...] = ()
    thresholds: Mapping[str, float] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    activation: Activation | None = None
    description: str | None = None
    intended_use: str | None = None
    not_for_diagnostic_use: bool = True
    parity_atol: float = 1e-4
    parity_samples: int = 3


@dataclass(frozen=True)
class ImportedModel:
    """What :func:`import_model` wrote.

    Attributes:
        spec: The new registry entry (its card is at ``spec.model_card``).
        folder: Its folder, ``<registry>/<name>/<version>``.
        source_format: What the source was.
        source_file: The file whose weights were imported (inside the folder for a bundle).
        source_sha256: That file's sha256.
        activation: What was appended to the first output.
        parity_max_abs: Largest torch vs ONNX Runtime difference; ``None`` when an ONNX file was registered.
    """

    spec: ModelSpec
    folder: Path
    source_format: SourceFormat
    source_file: Path
    source_sha256: str
    activation: Activation
    parity_max_abs: float | None


class _TensorFormat(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    format: str = ""
    modality: str = ""
    num_channels: int = Field(ge=1)
    spatial_shape: tuple[int | str, ...] = ()  # MONAI writes e.g. "16*n" for a free size
    dtype: str = "float32"
    value_range: tuple[float, float] | tuple[()] = ()
    channel_def: dict[str, str] = Field(default_factory=dict)


class _DataFormat(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    inputs: dict[str, _TensorFormat] = Field(min_length=1)
    outputs: dict[str, _TensorFormat] = Field(min_length=1)


class _BundleMetadata(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)
    name: str | None = None
    version: str | None = None
    description: str | None = None
    intended_use: str | None = None
    authors: str | list[str] | None = None
    copyright: str | None = None
    data_source: str | None = None
    network_data_format: _DataFormat


@dataclass(frozen=True)
class _Source:
    """What the source says; ``load`` builds its torch module (``None`` for an ONNX file)."""

    format: SourceFormat
    file: Path
    load: Callable[[], torch.nn.Module] | None = None
    name: str | None = None
    version: str | None = None
    task: Task | None = None
    modality: Modality | None = None
    labels: tuple[str, ...] = ()
    description: str | None = None
    intended_use: str | None = None
    input_shape: tuple[int, ...] | None = None
    input_dtype: DType = DType.FLOAT32
    input_range: tuple[float, float] | None = None
    names: tuple[str, str] = ("image", "pred")
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def display(self) -> str:
        if self.format is SourceFormat.MONAI_BUNDLE:
            return f"MONAI bundle {self.file.parent.parent.name}: models/{self.file.name}"
        return self.file.name


def detect_format(path: Path) -> SourceFormat:
    """Whether ``path`` is a MONAI bundle folder, a TorchScript archive or (any other file) an ONNX file.

    Raises:
        InvalidInputError: ``source_missing``; ``bundle_incomplete`` for a folder without
            ``configs/metadata.json``; ``unsupported_model_format`` for a plain ``torch.save`` file.
    """
    if path.is_dir():
        if not (path / "configs" / "metadata.json").is_file():
            raise InvalidInputError(f"folder {path} is not a MONAI bundle: it has no configs/metadata.json",
                                    code="bundle_incomplete")
        return SourceFormat.MONAI_BUNDLE
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist", code="source_missing")
    if not zipfile.is_zipfile(path):
        return SourceFormat.ONNX
    with zipfile.ZipFile(path) as archive:
        if any("/code/" in member for member in archive.namelist()):
            return SourceFormat.TORCHSCRIPT
    raise InvalidInputError(
        f"{path.name} is a torch.save file (weights without a network); expected an ONNX file, a TorchScript file "
        "(torch.jit.save) or a MONAI bundle folder (configs/metadata.json + models/model.pt or model.ts)",
        code="unsupported_model_format")


def import_model(source: Path, options: ImportOptions | None = None, *, registry_root: Path, cards_root: Path,
                 force: bool = False) -> ImportedModel:
    """Import ``source`` (ONNX file, TorchScript file or MONAI bundle folder) as a registry entry plus model card.

    Nothing is written unless every check passes; ``force`` replaces an existing version.

    Raises:
        InvalidInputError: The source cannot be read or converted, a required option is missing, the converted
            model disagrees with torch (``parity_failed``), or the version exists (``version_exists``).
    """
    options = options or ImportOptions()
    fmt = detect_format(source)
    if fmt is SourceFormat.MONAI_BUNDLE:
        found = _read_bundle(source)
    else:
        load = (lambda: conversion.load_torchscript(source)) if fmt is SourceFormat.TORCHSCRIPT else None
        found = _Source(format=fmt, file=source, load=load)
    name, version = options.name or found.name, options.version or found.version
    if not name or not version:
        missing = [f"{what} (--{what})" for what, value in (("name", name), ("version", version)) if not value]
        raise InvalidInputError(f"{source.name} does not state its {' or '.join(missing)}; pass it",
                                code="import_options_missing")
    folder = registry_root / name / version
    if folder.exists() and not force:
        raise InvalidInputError(f"{folder} already exists; choose another version or pass force (--force)",
                                code="version_exists")
    with tempfile.TemporaryDirectory(prefix="cds-import-") as scratch:
        staging = Path(scratch) / "entry"
        staging.mkdir()
        document, activation, parity = _convert(found, options, staging / "model.onnx")
        sha, card = sha256_file(found.file), (cards_root / f"{name}-{version}.md").resolve()
        document = {"name": name, "version": version, **document,
                    "not_for_diagnostic_use": options.not_for_diagnostic_use,
                    "artifacts": {"onnx": {"path": "model.onnx", "sha256": sha256_file(staging / "model.onnx")}},
                    "model_card": os.path.relpath(card, folder.resolve()),
                    "training_run": f"imported from {found.display} (sha256 {sha})"}
        try:
            ModelSpec.model_validate(document, context={"base_dir": folder})
        except ValidationError as exc:
            raise InvalidInputError(f"the imported model does not make a valid spec: {_problems(exc)}",
                                    code="spec_invalid") from exc
        (staging / SPEC_FILENAME).write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging, folder)
    spec = load_spec(folder / SPEC_FILENAME)
    added = "" if activation is Activation.NONE else f"; {activation.value} appended to the output"
    converted = (f"none, the ONNX graph is registered as given{added}" if parity is None else
                 f"to ONNX (opset {conversion.OPSET}, dynamic batch){added}; max absolute difference between torch "
                 f"and ONNX Runtime CPU on {options.parity_samples} random inputs {parity:.2e} "
                 f"(tolerance {options.parity_atol:g})")
    notes = dict(found.notes) | {"conversion": converted}
    write_card(spec, None, CardContent(
        data_statement="Unknown to cds.", notes=notes,
        limitations=["cds did not train or evaluate this model: nothing is known to cds about where it works or "
                     "fails.", "Check the input contract above against what the model was trained on."],
        reproduce=f"cds models import {found.display} --name {spec.name} --version {spec.version} (the model's own "
                  "training is not reproducible from cds)"))
    return ImportedModel(spec=spec, folder=folder, source_format=fmt, source_file=found.file, source_sha256=sha,
                         activation=activation, parity_max_abs=parity)


def _convert(found: _Source, options: ImportOptions, target: Path) -> tuple[dict[str, Any], Activation, float | None]:
    """Write the final ONNX file to ``target``; return the spec's contract fields, the activation and parity."""
    import onnx

    shape = options.input_shape or found.input_shape
    model, reference = _graph(found, shape, options.parity_samples, target.with_name("raw.onnx"))
    signature = conversion.read_signature(model)
    document = _contract(found, options, model, signature, shape)
    activation = Activation(document.pop("activation"))
    conversion.append_activation(model, signature.outputs[0].name, activation)
    onnx.save(model, str(target))
    if reference is None:
        conversion.smoke_run(target, [TensorSpec.model_validate(t) for t in document["inputs"]],
                             signature.fixed_batch or 2)
        return document, activation, None
    x, raw = reference
    expected = conversion.activate(raw, activation)
    parity = conversion.check_parity(expected, target, x, input_name=found.names[0], atol=options.parity_atol)
    return document, activation, parity.max_abs


def _graph(found: _Source, shape: tuple[int, ...] | None, samples: int,
           scratch: Path) -> tuple[onnx.ModelProto, tuple[np.ndarray, np.ndarray] | None]:
    """The ONNX graph to register, and for a torch source (exported to ``scratch``) random inputs and its outputs.

    The torch outputs are computed before export, which may alter a ScriptModule.
    """
    import onnx

    if found.load is None:
        return conversion.load_onnx(found.file), None
    if shape is None:
        raise InvalidInputError(f"{found.display} does not state its input shape; pass it without the batch "
                                "dimension, e.g. --input-shape 1,224,224", code="input_shape_required")
    import torch

    module = found.load()
    example = TensorSpec(name=found.names[0], dtype=found.input_dtype, shape=(DYNAMIC, *shape),
                         value_range=found.input_range)
    x = conversion.random_inputs(example, (samples, *shape), seed=1)
    reference = (x, conversion.run_torch(module, x))
    conversion.export_onnx(module, torch.from_numpy(conversion.random_inputs(example, (2, *shape))), scratch,
                           input_name=found.names[0], output_name=found.names[1])
    return onnx.load(str(scratch)), reference


def _contract(found: _Source, options: ImportOptions, model: onnx.ModelProto, signature: conversion.GraphSignature,
              shape: tuple[int, ...] | None) -> dict[str, Any]:
    """Task, modality, prose, labels, thresholds, tensors and the activation to append, as spec fields."""
    if signature.fixed_batch not in (None, 1):
        raise InvalidInputError(f"the graph fixes the batch size to {signature.fixed_batch}; cds needs a dynamic "
                                "batch dimension (or batch 1)", code="fixed_batch")
    inputs = list(signature.inputs)
    if found.load is None and shape is not None:
        inputs[0] = _pinned(inputs, shape)
    inputs[0] = inputs[0].model_copy(update={"value_range": found.input_range})
    first = signature.outputs[0]
    task = options.task or found.task or _task_from_shape(first.shape, inputs[0].shape)
    labels = options.labels or found.labels
    channels = first.shape[1] if len(first.shape) > 1 else None
    if not labels:
        example = "background,liver" if task is Task.SEGMENTATION else "normal,abnormal"
        raise InvalidInputError(f"a {task.value} model needs one label per output channel ({first.describe()}); "
                                f"pass them, e.g. --labels {example}", code="import_options_missing")
    if channels not in (None, DYNAMIC, len(labels)):
        raise InvalidInputError(f"{len(labels)} labels {list(labels)} for an output with {channels} channels "
                                f"({first.describe()})", code="labels_mismatch")
    activation = options.activation
    if activation is None and task is Task.CLASSIFICATION and conversion.output_activation(model, first.name) is None:
        raise InvalidInputError(
            "cds reads classification outputs as probabilities, and the graph does not end in a sigmoid or softmax; "
            "pass --activation sigmoid (independent labels), softmax (exactly one label) or none (the outputs "
            "already are probabilities)", code="activation_required")
    activation = activation or Activation.NONE
    update: dict[str, Any] = {}
    if channels is not None:  # a dynamic channel dimension is pinned to the labels
        update.update(channel_names=labels, shape=(DYNAMIC, len(labels), *first.shape[2:]))
    if task is Task.CLASSIFICATION or activation is not Activation.NONE:
        update["value_range"] = (0.0, 1.0)
    outputs = [first.model_copy(update=update), *signature.outputs[1:]]
    return {
        "task": task.value, "modality": (options.modality or found.modality or Modality.OT).value,
        "description": options.description or found.description or f"{task.value} model from {found.display}",
        "intended_use": options.intended_use or found.intended_use or DEFAULT_INTENDED_USE,
        "inputs": [_dump(t) for t in inputs], "outputs": [_dump(t) for t in outputs],
        "labels": list(labels), "thresholds": dict(options.thresholds),
        "max_batch_size": 1 if signature.fixed_batch == 1 else 64, "activation": activation.value,
    }


def _dump(tensor: TensorSpec) -> dict[str, Any]:
    """The tensor as spec YAML, validated again (``model_copy`` does not validate)."""
    try:
        return TensorSpec.model_validate(tensor.model_dump()).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        raise InvalidInputError(f"tensor {tensor.name}: {_problems(exc)}", code="spec_invalid") from exc


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())


def _pinned(inputs: list[TensorSpec], shape: tuple[int, ...]) -> TensorSpec:
    graph = inputs[0].shape[1:]
    fits = len(inputs) == 1 and len(shape) == len(graph)
    if not fits or any(g not in (DYNAMIC, s) for g, s in zip(graph, shape, strict=True)):
        raise InvalidInputError(f"input shape {list(shape)} does not fit the graph's input {inputs[0].describe()} "
                                "(one input, same rank, equal fixed dimensions)", code="input_shape_mismatch")
    return inputs[0].model_copy(update={"shape": (DYNAMIC, *shape)})


def _task_from_shape(output: tuple[int, ...], image: tuple[int, ...]) -> Task:
    if len(output) == 2:
        return Task.CLASSIFICATION
    if len(output) == len(image) >= 3:
        return Task.SEGMENTATION
    raise InvalidInputError(f"cannot tell the task from an output of rank {len(output)}; pass --task",
                            code="task_required")


def _read_bundle(folder: Path) -> _Source:
    """What a MONAI bundle's ``configs/metadata.json`` says, and how to build its network."""
    path = folder / "configs" / "metadata.json"
    try:
        meta = _BundleMetadata.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise InvalidInputError(f"{path} is not valid bundle metadata: {_problems(exc)}",
                                code="bundle_metadata_invalid") from exc
    data = meta.network_data_format
    if len(data.inputs) != 1 or len(data.outputs) != 1:
        raise InvalidInputError(f"cds imports networks with one input and one output; {path} declares inputs "
                                f"{list(data.inputs)} and outputs {list(data.outputs)}", code="unsupported_bundle")
    (input_name, image), (output_name, pred) = next(iter(data.inputs.items())), next(iter(data.outputs.items()))
    if image.dtype not in set(DType):
        raise InvalidInputError(f"{path}: input dtype {image.dtype!r} is not one of {[d.value for d in DType]}",
                                code="bundle_metadata_invalid")
    dims = [d for d in image.spatial_shape if isinstance(d, int)]
    labels = tuple(pred.channel_def.get(str(i), "") for i in range(pred.num_channels))
    notes = (("bundle", f"{meta.name or folder.name} {meta.version or ''}".strip()), ("authors", meta.authors),
             ("copyright", meta.copyright), ("data source, as the bundle states it", meta.data_source))
    return _Source(
        format=SourceFormat.MONAI_BUNDLE, file=conversion.bundle_weights(folder),
        load=lambda: conversion.load_bundle_network(folder),
        name=re.sub(r"[^a-z0-9._-]+", "-", meta.name.lower()).strip("-._")[:63] or None if meta.name else None,
        version=meta.version, task=_TASKS.get(pred.format.lower()),
        modality=_MODALITIES.get(re.sub(r"[^a-z]", "", image.modality.lower())),
        labels=labels if all(labels) else (), description=meta.description, intended_use=meta.intended_use,
        input_shape=(image.num_channels, *dims) if len(dims) == len(image.spatial_shape) else None,
        input_dtype=DType(image.dtype), input_range=image.value_range or None, names=(input_name, output_name),
        notes=tuple((k, ", ".join(v) if isinstance(v, list) else v) for k, v in notes if v),
    )
