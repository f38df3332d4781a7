"""Bring your own model: ONNX, TorchScript and MONAI bundles imported, served by ONNX Runtime, compared to torch."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from monai.networks.nets import DenseNet, UNet
from typer.testing import CliRunner

from cds.cli.main import app
from cds.errors import InvalidInputError
from cds.models.importer import ImportedModel, ImportOptions, SourceFormat, import_model
from cds.models.registry import ModelRegistry
from cds.models.spec import Activation, Modality, ModelSpec, Task
from cds.serving.backends import OnnxRuntimeOptions, create_backend

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]
LABELS = ("effusion", "nodule", "normal")
DENSENET = {"spatial_dims": 2, "in_channels": 1, "out_channels": 3, "init_features": 4, "growth_rate": 4,
            "block_config": [1, 1], "bn_size": 2}
UNET = {"spatial_dims": 2, "in_channels": 1, "out_channels": 2, "channels": [4, 8], "strides": [2],
        "num_res_units": 0}
SHAPE = (1, 32, 32)


def _net(factory: type[torch.nn.Module], params: dict[str, Any], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = factory(**params).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so eval mode differs from identity
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
    return net


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    return _net(DenseNet, DENSENET, seed=0)


@pytest.fixture(scope="module")
def segmenter() -> torch.nn.Module:
    return _net(UNet, UNET, seed=1)


def _metadata(task_format: str, channels: dict[str, str], modality: str, **extra: Any) -> dict[str, Any]:
    return {
        "version": "0.3.1",
        "name": "Tiny Bundle Model",
        "description": "A tiny network built in a test.",
        "intended_use": "Engine testing only.",
        "authors": ["Test Author"],
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "modality": modality, "num_channels": 1,
                                 "spatial_shape": list(SHAPE[1:]), "dtype": "float32", "value_range": [0, 1]}},
            "outputs": {"pred": {"type": "probabilities" if task_format == "classes" else "image",
                                 "format": task_format, "num_channels": len(channels), "spatial_shape": [],
                                 "dtype": "float32", "value_range": [], "channel_def": channels}},
        },
        **extra,
    }


def _bundle(root: Path, metadata: dict[str, Any] | None, *, network: Any = None, weights: torch.nn.Module | None = None,
            script: torch.nn.Module | None = None) -> Path:
    (root / "configs").mkdir(parents=True)
    (root / "models").mkdir()
    if metadata is not None:
        (root / "configs" / "metadata.json").write_text(json.dumps(metadata))
    if network is not None:  # plus entries a real bundle has; none of them may be evaluated on import
        config = {"imports": ["$import os"], "device": "$torch.device('cpu')", "features": 4, "network_def": network,
                  "network": "$@network_def.to(@device)", "run": ["$os.remove('/nonexistent')"]}
        (root / "configs" / "inference.json").write_text(json.dumps(config))
    if weights is not None:
        torch.save(weights.state_dict(), root / "models" / "model.pt")
    if script is not None:
        torch.jit.save(torch.jit.trace(script, torch.rand(2, *SHAPE)), str(root / "models" / "model.ts"))
    return root


def _onnx_file(net: torch.nn.Module, path: Path) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(2, *SHAPE),), str(path), dynamo=False, opset_version=18,
                          input_names=["x"], output_names=["logits"], dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}})
    return path


def _import(source: Path, tmp_path: Path, **options: Any) -> ImportedModel:
    return import_model(source, ImportOptions(**options), registry_root=tmp_path / "registry",
                        cards_root=tmp_path / "cards")


def _served(tmp_path: Path, imported: ImportedModel, x: np.ndarray) -> tuple[ModelSpec, np.ndarray]:
    """The entry loaded back from disk and run on ONNX Runtime."""
    spec = ModelRegistry.from_directory(tmp_path / "registry").get(imported.spec.name, imported.spec.version)
    options = OnnxRuntimeOptions(providers=("CPUExecutionProvider",))
    with create_backend("onnxruntime", spec, options) as engine:
        outputs = engine.infer({spec.inputs[0].name: x})
    return spec, outputs[spec.outputs[0].name]


def _torch(net: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        result: torch.Tensor = net(torch.from_numpy(x))
    return result


def _x(batch: int = 5) -> np.ndarray:
    return np.random.default_rng(7).uniform(0, 1, (batch, *SHAPE)).astype(np.float32)


def test_onnx_file_with_sigmoid_appended(tmp_path: Path, classifier: torch.nn.Module) -> None:
    source = _onnx_file(classifier, tmp_path / "user.onnx")
    imported = _import(source, tmp_path, name="user-cxr", version="2.0.0", labels=LABELS,
                       activation=Activation.SIGMOID, thresholds={"nodule": 0.4})
    spec, probabilities = _served(tmp_path, imported, _x())
    np.testing.assert_allclose(probabilities, torch.sigmoid(_torch(classifier, _x())).numpy(), atol=1e-4)
    assert imported.source_format is SourceFormat.ONNX and imported.parity_max_abs is None
    assert spec.task is Task.CLASSIFICATION and spec.modality is Modality.OT and spec.labels == LABELS
    assert [t.name for t in spec.inputs] == ["x"] and spec.inputs[0].shape == (-1, *SHAPE)
    assert spec.outputs[0].shape == (-1, 3) and spec.outputs[0].channel_names == LABELS
    assert spec.thresholds == {"nodule": 0.4} and spec.not_for_diagnostic_use
    assert spec.training_run == f"imported from user.onnx (sha256 {imported.source_sha256})"
    card = spec.model_card.read_text()
    assert "cds did not train or evaluate this model" in card and "Metrics: none measured by cds" in card
    assert spec.artifacts.onnx.sha256 in card and (tmp_path / "cards" / "user-cxr-2.0.0.md") == spec.model_card


def test_torchscript_converted_with_parity(tmp_path: Path, classifier: torch.nn.Module) -> None:
    source = tmp_path / "user.ts"
    torch.jit.save(torch.jit.script(classifier), str(source))
    imported = _import(source, tmp_path, name="ts-model", version="1.0.0", labels=LABELS, input_shape=SHAPE,
                       activation=Activation.SOFTMAX, intended_use="Research use in a test.")
    spec, probabilities = _served(tmp_path, imported, _x())
    np.testing.assert_allclose(probabilities, torch.softmax(_torch(classifier, _x()), dim=1).numpy(), atol=1e-4)
    assert imported.source_format is SourceFormat.TORCHSCRIPT
    assert imported.parity_max_abs is not None and imported.parity_max_abs <= 1e-4
    assert spec.intended_use == "Research use in a test." and spec.outputs[0].value_range == (0.0, 1.0)
    assert "max absolute difference between torch and ONNX Runtime" in spec.model_card.read_text()


def test_bundle_with_state_dict_builds_network_def(tmp_path: Path, classifier: torch.nn.Module) -> None:
    labels = {"0": "effusion", "1": "nodule", "2": "normal"}
    network = {"_target_": "DenseNet", **DENSENET, "init_features": "@features"}
    bundle = _bundle(tmp_path / "bundle", _metadata("classes", labels, "xray"), network=network, weights=classifier)
    imported = _import(bundle, tmp_path, activation=Activation.SIGMOID)
    spec, probabilities = _served(tmp_path, imported, _x())
    np.testing.assert_allclose(probabilities, torch.sigmoid(_torch(classifier, _x())).numpy(), atol=1e-4)
    assert spec.key == "tiny-bundle-model:0.3.1" and imported.source_format is SourceFormat.MONAI_BUNDLE
    assert spec.task is Task.CLASSIFICATION and spec.modality is Modality.DX and spec.labels == LABELS
    assert spec.intended_use == "Engine testing only." and spec.description == "A tiny network built in a test."
    assert spec.inputs[0].name == "image" and spec.inputs[0].value_range == (0.0, 1.0)
    assert spec.outputs[0].name == "pred" and spec.outputs[0].shape == (-1, 3)
    assert spec.training_run is not None and spec.training_run.startswith("imported from MONAI bundle bundle: models/model.pt")
    assert "authors: Test Author" in spec.model_card.read_text()


def test_bundle_with_torchscript_segmentation(tmp_path: Path, segmenter: torch.nn.Module) -> None:
    metadata = _metadata("segmentation", {"0": "background", "1": "lesion"}, "MRI")
    bundle = _bundle(tmp_path / "seg", metadata, script=segmenter)
    imported = _import(bundle, tmp_path, name="seg", version="1.0.0")
    spec, logits = _served(tmp_path, imported, _x(3))
    np.testing.assert_allclose(logits, _torch(segmenter, _x(3)).numpy(), atol=1e-4)
    assert spec.task is Task.SEGMENTATION and spec.modality is Modality.MR
    assert spec.labels == ("background", "lesion") and spec.outputs[0].shape == (-1, 2, *SHAPE[1:])
    assert imported.activation is Activation.NONE and spec.outputs[0].value_range is None


def test_existing_version_needs_force(tmp_path: Path, classifier: torch.nn.Module) -> None:
    source = _onnx_file(classifier, tmp_path / "user.onnx")
    options = {"name": "m", "version": "1.0.0", "labels": LABELS, "activation": Activation.SIGMOID}
    _import(source, tmp_path, **options)
    with pytest.raises(InvalidInputError) as error:
        _import(source, tmp_path, **options)
    assert error.value.code == "version_exists"
    forced = import_model(source, ImportOptions(**options, modality=Modality.CT), registry_root=tmp_path / "registry",
                          cards_root=tmp_path / "cards", force=True)
    assert forced.spec.modality is Modality.CT


def _code(tmp_path: Path, source: Path, **options: Any) -> str:
    with pytest.raises(InvalidInputError) as error:
        _import(source, tmp_path, **options)
    assert not (tmp_path / "registry").exists()  # nothing is written on a refusal
    return error.value.code


def test_refusals_name_the_problem(tmp_path: Path, classifier: torch.nn.Module) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    weights = tmp_path / "weights.pt"
    torch.save(classifier.state_dict(), weights)
    scripted = tmp_path / "user.ts"
    torch.jit.save(torch.jit.script(classifier), str(scripted))
    onnx_file = _onnx_file(classifier, tmp_path / "user.onnx")
    named = {"name": "m", "version": "1"}
    assert _code(tmp_path, text, **named) == "unsupported_model_format"
    assert _code(tmp_path, weights, **named) == "unsupported_model_format"
    assert _code(tmp_path, tmp_path / "missing.onnx", **named) == "source_missing"
    assert _code(tmp_path, scripted, **named, labels=LABELS) == "input_shape_required"
    assert _code(tmp_path, onnx_file, labels=LABELS) == "import_options_missing"
    assert _code(tmp_path, onnx_file, **named, activation=Activation.SIGMOID) == "import_options_missing"
    assert _code(tmp_path, onnx_file, **named, labels=("a", "b")) == "labels_mismatch"
    assert _code(tmp_path, onnx_file, **named, labels=LABELS) == "activation_required"
    assert _code(tmp_path, onnx_file, **named, labels=LABELS, activation=Activation.NONE, input_shape=(1, 8, 8)) == (
        "input_shape_mismatch")
    assert _code(tmp_path, onnx_file, **named, labels=LABELS, activation=Activation.SIGMOID,
                 thresholds={"pneumonia": 0.5}) == "spec_invalid"
    options = {**named, "labels": LABELS, "input_shape": SHAPE, "activation": Activation.SIGMOID}
    assert _code(tmp_path, scripted, **options, parity_atol=1e-12) == "parity_failed"


def test_bundle_refusals(tmp_path: Path, classifier: torch.nn.Module) -> None:
    labels = {"0": "a", "1": "b", "2": "c"}
    good = _metadata("classes", labels, "CT")
    assert _code(tmp_path, _bundle(tmp_path / "no-meta", None, script=classifier)) == "bundle_incomplete"
    assert _code(tmp_path, _bundle(tmp_path / "no-model", good)) == "bundle_incomplete"
    assert _code(tmp_path, _bundle(tmp_path / "no-config", good, weights=classifier)) == "bundle_incomplete"
    bad = json.loads(json.dumps(good))
    bad["network_data_format"]["inputs"]["image"]["num_channels"] = "one"
    assert _code(tmp_path, _bundle(tmp_path / "bad-type", bad, script=classifier)) == "bundle_metadata_invalid"
    bad["network_data_format"]["inputs"]["image"] = {"spatial_shape": [32, 32]}
    assert _code(tmp_path, _bundle(tmp_path / "bad-missing", bad, script=classifier)) == "bundle_metadata_invalid"
    for folder, network in (
        ("expression", {"_target_": "DenseNet", **DENSENET, "spatial_dims": "$__import__('os').getpid() and 2"}),
        ("foreign", {"_target_": "os.system", "command": "true"}),
        ("not-a-network", {"_target_": "monai.networks.utils.one_hot", "labels": 1}),
    ):
        bundle = _bundle(tmp_path / folder, good, network=network, weights=classifier)
        assert _code(tmp_path, bundle, activation=Activation.SIGMOID) == "bundle_network_refused", folder
    other = {"_target_": "DenseNet", **DENSENET, "out_channels": 2}
    bundle = _bundle(tmp_path / "mismatch", good, network=other, weights=classifier)
    assert _code(tmp_path, bundle, activation=Activation.SIGMOID) == "bundle_network_invalid"


def test_cli_imports_and_reports(tmp_path: Path, classifier: torch.nn.Module) -> None:
    runner = CliRunner()
    scripted = tmp_path / "user.ts"
    torch.jit.save(torch.jit.script(classifier), str(scripted))
    registry, cards = tmp_path / "registry", tmp_path / "cards"
    common = ["--name", "cli-model", "--version", "1.0.0", "--registry", str(registry), "--cards", str(cards)]
    result = runner.invoke(app, ["models", "import", str(scripted), *common, "--labels", ",".join(LABELS)])
    assert result.exit_code == 2 and "input_shape_required" in result.output
    result = runner.invoke(app, ["models", "import", str(scripted), *common, "--labels", ",".join(LABELS),
                                 "--input-shape", "1,32,32", "--activation", "sigmoid", "--thresholds", "normal=0.5"])
    assert result.exit_code == 0, result.output
    assert "as cli-model:1.0.0" in result.output and "input  image: float32[-1, 1, 32, 32]" in result.output
    assert "parity: max abs diff" in result.output and f"registry entry: {registry / 'cli-model' / '1.0.0'}" in result.output
    listed = runner.invoke(app, ["models", "list", "--registry", str(registry)])
    assert "cli-model" in listed.output and "verified (onnx)" in listed.output
