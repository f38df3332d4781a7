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
    assert ("registered models: chest-xray-demo, chest-xray-plausibility, ct-organs-demo, ecg-rhythm, lesion-demo, "
            "pathology-demo, pima-diabetes-lr") in result.output


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


def test_cli_scores_a_real_record_at_a_date_and_refuses_a_primary_prevention_score_after_an_mi(tmp_path: Path) -> None:
    from tests.interop.test_fhir_records import condition, obs, record

    runner = CliRunner()
    bundle = tmp_path / "record.json"
    bundle.write_text(json.dumps(record(obs("cr", "14682-9", 97, "umol/L"), birth="1966")), encoding="utf-8")
    answer = runner.invoke(app, ["risk", "score", "ckd_epi_2021", str(bundle), "--as-of", "2026-11-20"])
    assert answer.exit_code == 0, answer.output
    result = json.loads(answer.output)
    assert result["inputs"]["age"] == 60 and any("59-60 years" in w for w in result["warnings"])
    mi = condition("mi", "http://hl7.org/fhir/sid/icd-10", "I25.2", status="inactive")
    bundle.write_text(json.dumps(record(mi)), encoding="utf-8")
    refused = runner.invoke(app, ["risk", "score", "pce", str(bundle), "--set", "bp_treated=true", "--set",
                                  "diabetes=false", "--set", "smoker=false"])  # fmt: skip
    assert refused.exit_code != 0 and "established_ascvd" in refused.output and "Condition/mi" in refused.output
