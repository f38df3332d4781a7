"""Train → MLflow (params, metrics, environment, signature, model version) → promote into the cds registry."""

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from cds.cli.main import app
from cds.errors import ArtifactIntegrityError, ModelNotFoundError
from cds.models.promote import PROMOTED_TAG, VersionExistsError, promote
from cds.models.registry import ModelRegistry, sha256_file
from training.data.chest_xray import LABELS
from training.data.folder import write_generated_chest_xrays

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]

TINY = {
    "name": "cxr-tiny",
    "version": "0.0.1",
    "image_size": 64,
    "architecture": "monai.DenseNet",
    "network": {"spatial_dims": 2, "in_channels": 1, "out_channels": 18, "init_features": 8, "growth_rate": 4,
                "block_config": [2, 2], "bn_size": 2},
    "data": {"cache_workers": 0},  # the fixture points data.folder at DICOM and PNG files it writes
    "train": {"epochs": 2, "batch_size": 8, "lr": 0.003, "seed": 0},
    "parity_samples": 8,
    "torch_weights": True,
    "experiment": "tiny",
    "urgency": {"Pneumothorax": "critical", "Effusion": "urgent"},
    "critical_thresholds": {"Pneumothorax": 0.0},  # below any operating threshold: raised to the run's
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from training.chest_xray import main

    root = tmp_path_factory.mktemp("lifecycle")
    for split, count, image_format in (("train", 32, "dicom"), ("validation", 24, "png"), ("test", 24, "dicom")):
        write_generated_chest_xrays(root / "data" / split, count, seed=len(split), size=96, image_format=image_format,
                                    prevalence=0.3)
    config = root / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], "folder": str(root / "data")}}))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    evaluation = main(["--config", str(config), "--tracking-uri", uri, "--registry", str(root / "registry"),
                       "--cards", str(root / "cards"), "--set", f"train.checkpoint_dir={root / 'ckpt'}"])
    return {"root": root, "uri": uri, "evaluation": evaluation}


def test_run_logs_params_per_epoch_metrics_environment_and_a_registered_model(trained: dict[str, Any]) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=trained["uri"], registry_uri=trained["uri"])
    version = client.get_model_version("cxr-tiny", "1")
    run = client.get_run(version.run_id)
    assert run.data.params["train.epochs"] == "2" and run.data.params["network.growth_rate"] == "4"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [m.step for m in history] == [1, 2]
    assert "test.macro_auc" in run.data.metrics and run.data.tags["env.torch"].startswith("2.13")
    env = json.loads(Path(client.download_artifacts(run.info.run_id, "environment.json",
                                                    str(trained["root"]))).read_text())
    assert env["git_commit"] and env["onnxruntime"]
    mlflow.set_registry_uri(trained["uri"])
    info = mlflow.models.get_model_info("models:/cxr-tiny/1")
    assert info.signature is not None
    assert list(info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"]) == [-1, 1, 64, 64]
    assert version.tags[PROMOTED_TAG] == "cxr-tiny:0.0.1"


def test_promoted_entry_matches_the_run_and_serves(trained: dict[str, Any]) -> None:
    root = trained["root"]
    registry = ModelRegistry.from_directory(root / "registry")
    spec = registry.get("cxr-tiny")
    assert set(registry.verify(spec)) == {"onnx", "torch"}
    assert spec.labels == LABELS and set(spec.thresholds) == set(LABELS)
    assert {label: urgency.value for label, urgency in spec.urgency.items()} == TINY["urgency"]  # carried through
    assert spec.critical_thresholds == {"Pneumothorax": spec.thresholds["Pneumothorax"]}  # never below positive
    assert spec.training_run is not None and "registered model cxr-tiny version 1" in spec.training_run
    card = spec.model_card.read_text()
    assert spec.artifacts.onnx.sha256 in card and "# Model card: cxr-tiny 0.0.1" in card
    assert "Images and labels from" in card and "Test split by `sex`" in card  # labels.csv's extra column
    test_auc = trained["evaluation"].splits["test"]["Effusion"].auc
    assert "| Effusion | " in card and (test_auc is None or f"{test_auc:.4f}" in card)

    from cds.models.spec import BackendKind
    from cds.pipelines.classification import TensorClassificationPipeline
    from cds.serving.backends import create_backend

    for kind in (BackendKind.ONNXRUNTIME, BackendKind.TORCH):  # the state_dict loads into the spec's network too
        backend = create_backend(kind, spec)
        backend.load()
        try:
            results = TensorClassificationPipeline(backend)(np.zeros((1, 1, 64, 64), np.float32))
        finally:
            backend.close()
        assert len(results[0].findings) == 18


def test_promote_refuses_duplicates_unknown_versions_and_tampered_artifacts(trained: dict[str, Any]) -> None:
    root, uri = trained["root"], trained["uri"]
    with pytest.raises(VersionExistsError):
        promote(uri, "cxr-tiny", "1", registry_root=root / "registry", cards_root=root / "cards")
    with pytest.raises(ModelNotFoundError):
        promote(uri, "cxr-tiny", "7", registry_root=root / "registry", cards_root=root / "cards")
    stored = next((root / "artifacts").rglob("model.onnx"))
    original = stored.read_bytes()
    try:
        stored.write_bytes(original[:-8] + b"tampered")
        with pytest.raises(ArtifactIntegrityError, match="not the file the run exported"):
            promote(uri, "cxr-tiny", "1", registry_root=root / "other", cards_root=root / "cards")
    finally:
        stored.write_bytes(original)


def test_cli_promotes_under_a_new_version(trained: dict[str, Any]) -> None:
    root = trained["root"]
    result = CliRunner().invoke(app, ["models", "promote", "cxr-tiny", "1", "--tracking-uri", trained["uri"],
                                      "--registry", str(root / "registry"), "--cards", str(root / "cards"),
                                      "--as-version", "0.0.2"])
    assert result.exit_code == 0, result.output
    spec = ModelRegistry.from_directory(root / "registry").get("cxr-tiny", "0.0.2")
    first = ModelRegistry.from_directory(root / "registry").get("cxr-tiny", "0.0.1")
    assert spec.artifacts.onnx.sha256 == first.artifacts.onnx.sha256 == sha256_file(spec.artifacts.onnx.path)
    again = CliRunner().invoke(app, ["models", "promote", "cxr-tiny", "1", "--tracking-uri", trained["uri"],
                                     "--registry", str(root / "registry"), "--cards", str(root / "cards")])
    assert again.exit_code == 2 and "version_exists" in again.output


def test_smoke_configuration_trains_the_real_network_end_to_end(tmp_path: Path) -> None:
    """The README's small configuration: DenseNet-121 at 224x224, a few images, one epoch, on CPU."""
    from training.chest_xray import main

    evaluation = main(["--config", str(REPO / "training/configs/chest_xray_smoke.yaml"),
                       "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--registry", str(tmp_path / "r"),
                       "--cards", str(tmp_path / "c"), "--set", f"train.checkpoint_dir={tmp_path / 'ckpt'}"])
    spec = ModelRegistry.from_directory(tmp_path / "r").get("chest-xray-smoke")
    assert spec.inputs[0].shape == (-1, 1, 224, 224) and spec.outputs[0].shape == (-1, 18)
    assert evaluation.parity is not None and evaluation.parity.max_abs < 1e-4
    assert spec.artifacts.onnx.path.stat().st_size > 25e6  # the full DenseNet-121, not a stand-in
    shutil.rmtree(tmp_path / "r")


def test_torchrun_trains_the_cli_with_two_gloo_processes(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    config = tmp_path / "ddp.yaml"
    generated = {"train": 32, "validation": 16, "test": 16, "seed": 3, "prevalence": 0.3}
    config.write_text(yaml.safe_dump({**TINY, "name": "cxr-ddp", "data": {"generated": generated, "cache_workers": 0}}))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    completed = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(port),
         "-m", "training.chest_xray", "--config", str(config), "--tracking-uri", uri, "--no-promote",
         "--set", f"train.checkpoint_dir={tmp_path / 'ckpt'}"],
        cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.get_run(client.get_model_version("cxr-ddp", "1").run_id)
    assert run.data.metrics["world_size"] == 2
    assert run.data.metrics["samples_seen_rank0"] == 2 * 16  # half of 32 images in each of 2 epochs
    assert not (tmp_path / "registry").exists()  # --no-promote: MLflow only
