from pathlib import Path

import pytest

from cds.errors import ArtifactIntegrityError, InvalidInputError
from cds.models.registry import ModelRegistry, sha256_file
from cds.models.spec import ModelSpec
from cds.serving.triton.repository import (
    InstanceKind,
    TritonRepositoryOptions,
    export_model_repository,
    read_model_config,
)


def test_written_config_parses_as_triton_model_config(spec: ModelSpec, tmp_path: Path) -> None:
    options = TritonRepositoryOptions(
        max_batch_size=32,
        preferred_batch_sizes=(8, 16),
        instances=2,
        instance_kind=InstanceKind.GPU,
        tensorrt_fp16=True,
    )
    folder = export_model_repository(spec, tmp_path, options)
    config = read_model_config(folder)
    assert config.platform == "onnxruntime_onnx" and config.name == "lesion-demo"
    assert config.max_batch_size == 32
    assert [(t.name, list(t.dims)) for t in config.input] == [("image", [1, 64, 64])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("probabilities", [1])]
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 16]
    assert config.instance_group[0].count == 2 and config.instance_group[0].kind == 1  # KIND_GPU
    accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    assert config.parameters["cds_sha256"].string_value == spec.artifacts.onnx.sha256
    assert sha256_file(folder / "1" / "model.onnx") == spec.artifacts.onnx.sha256


@pytest.mark.parametrize(
    "options",
    [
        TritonRepositoryOptions(preferred_batch_sizes=(512,)),
        TritonRepositoryOptions(instances=0),
        TritonRepositoryOptions(tensorrt_fp16=True),  # CPU instances
    ],
)
def test_contradictory_options_are_refused(spec: ModelSpec, tmp_path: Path, options: TritonRepositoryOptions) -> None:
    with pytest.raises(InvalidInputError):
        export_model_repository(spec, tmp_path, options)
    assert not (tmp_path / spec.name).exists()


def test_existing_folder_needs_overwrite(spec: ModelSpec, tmp_path: Path) -> None:
    export_model_repository(spec, tmp_path)
    with pytest.raises(InvalidInputError, match="already exists"):
        export_model_repository(spec, tmp_path)
    export_model_repository(spec, tmp_path, overwrite=True)


def test_tampered_artifact_is_not_exported(registry_copy: Path, tmp_path: Path) -> None:
    spec = ModelRegistry.from_directory(registry_copy).get("lesion-demo")
    spec.artifacts.onnx.path.write_bytes(b"not a model")
    with pytest.raises(ArtifactIntegrityError):
        export_model_repository(spec, tmp_path / "repo")


@pytest.mark.parametrize(("model", "extra", "instances", "delay"), [
    ("chest-xray-demo", [], 2, 2000),  # measured: registry/chest-xray-demo/1.0.0/triton.yaml
    ("lesion-demo", [], 1, 0),  # measured: registry/lesion-demo/1.1.0/triton.yaml
    ("lesion-demo", ["--instances", "3", "--max-queue-delay-us", "750"], 3, 750),  # explicit options win
    ("lesion-demo", ["--gpu"], 1, 2000),  # CPU measurements do not carry over to GPU instances
    ("pima-diabetes-lr", [], 1, 2000),  # never measured: built-in defaults
])  # fmt: skip
def test_export_repo_takes_the_measured_deployment_settings(tmp_path: Path, model: str, extra: list[str],
                                                            instances: int, delay: int) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from cds.cli.main import app

    result = CliRunner().invoke(app, ["triton", "export-repo", model, str(tmp_path), *extra])
    assert result.exit_code == 0, result.output
    config = read_model_config(tmp_path / model)
    assert config.instance_group[0].count == instances
    assert config.dynamic_batching.max_queue_delay_microseconds == delay
