"""Write a Triton model repository for a registered model, and read one back.

Layout written::

    <repo>/<model name>/config.pbtxt
    <repo>/<model name>/1/model.onnx

``config.pbtxt`` is built as Triton's own ``ModelConfig`` protobuf message (from ``tritonclient``), so what is
written is what Triton parses. The sha256 of the ONNX file is recorded as the ``cds_sha256`` parameter, which
:class:`~cds.serving.backends.triton.TritonBackend` checks against the registry when it connects.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cds.errors import InvalidInputError, MissingDependencyError
from cds.models.registry import verify_artifact
from cds.models.spec import ModelSpec
from cds.serving.backends.triton import SHA256_PARAMETER, TRITON_DTYPES

CONFIG_FILENAME = "config.pbtxt"


class InstanceKind(StrEnum):
    """Where Triton places model instances."""

    CPU = "KIND_CPU"
    GPU = "KIND_GPU"


@dataclass(frozen=True)
class TritonRepositoryOptions:
    """Deployment settings for one model.

    Attributes:
        max_batch_size: Largest batch Triton forms; defaults to the spec's ``max_batch_size``.
        preferred_batch_sizes: Batch sizes the dynamic batcher aims for; empty lets it fill up to the maximum.
        max_queue_delay_us: Longest a request waits for company in the dynamic batcher.
        instances: Model instances (parallel executions) per device.
        instance_kind: CPU or GPU instances.
        tensorrt_fp16: Add the TensorRT execution accelerator with FP16 precision (GPU instances only).
    """

    max_batch_size: int | None = None
    preferred_batch_sizes: tuple[int, ...] = field(default_factory=tuple)
    max_queue_delay_us: int = 2000
    instances: int = 1
    instance_kind: InstanceKind = InstanceKind.CPU
    tensorrt_fp16: bool = False


TUNED_FILENAME = "triton.yaml"
TUNED_KEYS = ("instances", "max_queue_delay_us")


def tuned_options(spec: ModelSpec) -> dict[str, Any]:
    """The deployment settings measured for ``spec`` (``triton.yaml`` beside its ONNX file), or none.

    Written by ``python -m benchmarks.triton_tuning --save``; only ``instances`` and ``max_queue_delay_us`` are
    taken, as the measurement chose them. Explicit options given to ``cds triton export-repo`` override them.
    """
    path = Path(spec.artifacts.onnx.path).parent / TUNED_FILENAME
    if not path.is_file():
        return {}
    import yaml

    recorded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {key: int(recorded[key]) for key in TUNED_KEYS if key in recorded}


def _model_config_pb2() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise MissingDependencyError("writing Triton configs needs tritonclient[grpc]") from exc
    return model_config_pb2


def build_model_config(spec: ModelSpec, options: TritonRepositoryOptions) -> Any:
    """The ``ModelConfig`` protobuf message for ``spec``.

    Raises:
        InvalidInputError: Options that contradict each other or the spec.
    """
    pb = _model_config_pb2()
    max_batch = options.max_batch_size or spec.max_batch_size
    too_big = [b for b in options.preferred_batch_sizes if not 1 <= b <= max_batch]
    if too_big or options.instances < 1 or options.max_queue_delay_us < 0:
        raise InvalidInputError(
            f"preferred batch sizes must lie in [1, {max_batch}] (got {list(options.preferred_batch_sizes)}), "
            f"instances >= 1 (got {options.instances}), queue delay >= 0 (got {options.max_queue_delay_us})",
            code="invalid_triton_options",
        )
    if options.tensorrt_fp16 and options.instance_kind is not InstanceKind.GPU:
        raise InvalidInputError("the TensorRT accelerator needs GPU instances", code="invalid_triton_options")
    config = pb.ModelConfig(name=spec.name, platform="onnxruntime_onnx", max_batch_size=max_batch)
    for tensors, target in ((spec.inputs, config.input), (spec.outputs, config.output)):
        for tensor in tensors:
            target.add(
                name=tensor.name,
                data_type=pb.DataType.Value("TYPE_" + TRITON_DTYPES[tensor.dtype.value]),
                dims=list(tensor.shape[1:]),  # Triton's dims exclude the batch dimension
            )
    config.dynamic_batching.max_queue_delay_microseconds = options.max_queue_delay_us
    config.dynamic_batching.preferred_batch_size.extend(options.preferred_batch_sizes)
    group = config.instance_group.add(count=options.instances)
    group.kind = pb.ModelInstanceGroup.Kind.Value(options.instance_kind.value)
    if options.tensorrt_fp16:
        accelerator = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
        accelerator.parameters["precision_mode"] = "FP16"
    config.parameters[SHA256_PARAMETER].string_value = spec.artifacts.onnx.sha256
    config.parameters["cds_model_version"].string_value = spec.version
    return config


def export_model_repository(
    spec: ModelSpec, repository: Path, options: TritonRepositoryOptions | None = None, *, overwrite: bool = False
) -> Path:
    """Write ``spec``'s model into ``repository``; return the model's folder.

    The ONNX artifact is verified against its sha256 before it is copied.

    Raises:
        ArtifactIntegrityError: The artifact is missing or altered.
        InvalidInputError: The model folder exists and ``overwrite`` is false.
    """
    from google.protobuf import text_format

    options = options or TritonRepositoryOptions()
    source = verify_artifact(spec.artifacts.onnx)
    config = build_model_config(spec, options)
    folder = repository / spec.name
    if folder.exists():
        if not overwrite:
            raise InvalidInputError(f"{folder} already exists; pass overwrite to replace it", code="exists")
        shutil.rmtree(folder)
    (folder / "1").mkdir(parents=True)
    shutil.copyfile(source, folder / "1" / "model.onnx")
    header = f"# Triton config for {spec.key}, written by `cds triton export-repo`.\n"
    (folder / CONFIG_FILENAME).write_text(header + text_format.MessageToString(config), encoding="utf-8")
    return folder


def read_model_config(folder: Path) -> Any:
    """Parse ``<folder>/config.pbtxt`` into a ``ModelConfig`` message (raises on any unknown field)."""
    from google.protobuf import text_format

    pb = _model_config_pb2()
    return text_format.Parse((folder / CONFIG_FILENAME).read_text(encoding="utf-8"), pb.ModelConfig())
