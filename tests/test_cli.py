import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cds.cli.main import app
from cds.models.spec import ModelSpec
from cds.settings import REPO_ROOT

runner = CliRunner()


def test_models_list_shows_verified_model() -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "lesion-demo" in result.output and "verified (onnx, onnx_fp16, torch)" in result.output


def test_models_list_flags_tampered_artifact(registry_copy: Path) -> None:
    (registry_copy / "lesion-demo" / "1.1.0" / "model.pt").write_bytes(b"x")
    result = runner.invoke(app, ["models", "list", "--registry", str(registry_copy)])
    assert "FAILED: artifact_hash_mismatch" in result.output


def test_models_show_unknown_lists_known() -> None:
    result = runner.invoke(app, ["models", "show", "chest-xray"])
    assert result.exit_code == 2
    assert ("registered models: chest-xray-demo, chest-xray-plausibility, ct-organs-demo, lesion-demo, pathology-demo, "
            "pima-diabetes-lr") in result.output


def test_infer_prints_results_with_identity(spec: ModelSpec) -> None:
    sample = REPO_ROOT / "samples" / "lesion-demo-positive.npy"
    for backend, sha in (("onnxruntime", spec.artifacts.onnx.sha256), ("torch", spec.artifacts.torch.sha256)):  # type: ignore[union-attr]
        result = runner.invoke(app, ["infer", "lesion-demo", str(sample), "--backend", backend])
        assert result.exit_code == 0, result.output
        (item,) = json.loads(result.output)
        assert item["model"] == {"name": "lesion-demo", "version": "1.1.0", "sha256": sha, "backend": backend}
        assert item["findings"][0]["positive"] is True


def test_infer_with_wrong_dtype_names_the_tensor(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((1, 64, 64)))
    result = runner.invoke(app, ["infer", "lesion-demo", str(bad)])
    assert result.exit_code == 2
    assert "input 'image' has dtype float64, expected float32" in result.output


def test_infer_refuses_pickles_and_missing_files(tmp_path: Path) -> None:
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    result = runner.invoke(app, ["infer", "lesion-demo", str(pickled)])
    assert result.exit_code == 2 and "input_unreadable" in result.output
    result = runner.invoke(app, ["infer", "lesion-demo", str(tmp_path / "none.npy")])
    assert result.exit_code == 2 and "input_missing" in result.output


def test_export_repo_writes_config(tmp_path: Path) -> None:
    result = runner.invoke(app, ["triton", "export-repo", "lesion-demo", str(tmp_path), "--preferred-batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "preferred_batch_size: 4" in (tmp_path / "lesion-demo" / "config.pbtxt").read_text()
