"""The ``cds`` command line: models, inference, Triton repositories, and the demo."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
import yaml

from cds.cli import batch, consortium, ecg, export, models_import, pathology, preread, risk, service
from cds.cli.common import out, run_command
from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines.classification import TensorClassificationPipeline
from cds.privacy import quiet_library_warnings
from cds.serving.backends import (
    BackendOptions,
    OnnxRuntimeOptions,
    TorchOptions,
    TritonOptions,
    create_backend,
)
from cds.serving.backends.triton import TritonProtocol
from cds.settings import Settings

app = typer.Typer(
    help="cds: AI clinical decision-support and imaging inference engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List and inspect registered models.", no_args_is_help=True)
triton_app = typer.Typer(help="Deploy models to a Triton Inference Server.", no_args_is_help=True)
app.add_typer(models_app, name="models")
models_app.command("import")(models_import.models_import)
app.add_typer(triton_app, name="triton")
app.add_typer(risk.app, name="risk")
app.add_typer(batch.app, name="batch")
app.add_typer(export.app, name="export")
app.add_typer(consortium.app, name="consortium")
app.add_typer(service.audit_app, name="audit")
app.add_typer(service.apikey_app, name="apikey")
app.registered_commands += service.serve_app.registered_commands
app.registered_commands += preread.app.registered_commands
app.registered_commands += pathology.app.registered_commands
app.registered_commands += ecg.app.registered_commands

RegistryOption = Annotated[
    Path | None, typer.Option("--registry", help="Model registry folder (default: $CDS_REGISTRY_DIR or ./registry).")
]


def _registry(path: Path | None) -> ModelRegistry:
    return ModelRegistry.from_directory(path or Settings().registry_dir)


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False) -> None:
    """Set up logging for every command."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    quiet_library_warnings()  # the DICOM libraries warn with the values they found: patient names, UIDs


@models_app.command("list")
def models_list(
    registry: RegistryOption = None,
    verify: Annotated[bool, typer.Option(help="Check every artifact's sha256 (reads each file).")] = True,
) -> None:
    """List registered models with their task, modality and whether their artifacts match their sha256."""

    def body() -> None:
        reg = _registry(registry)
        out(f"{'NAME':<22} {'VERSION':<10} {'TASK':<16} {'MODALITY':<9} {'ONNX SHA256':<16} INTEGRITY")
        for spec in reg:
            status = "not checked"
            if verify:
                try:
                    status = "verified (" + ", ".join(reg.verify(spec)) + ")"
                except CdsError as exc:
                    status = f"FAILED: {exc}"
            out(
                f"{spec.name:<22} {spec.version:<10} {spec.task.value:<16} {spec.modality.value:<9} "
                f"{spec.artifacts.onnx.sha256[:12]:<16} {status}"
            )
        if len(reg) == 0:
            out("(no models registered)")

    run_command(body)


@models_app.command("promote")
def models_promote(
    name: Annotated[str, typer.Argument(help="Registered MLflow model name.")],
    version: Annotated[str, typer.Argument(help="MLflow model version number.")],
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or runs/mlflow/mlflow.db).")
    ] = None,
    registry: RegistryOption = None,
    cards: Annotated[
        Path | None, typer.Option(help="Model card folder (default: model_cards next to the registry).")
    ] = None,
    as_version: Annotated[str | None, typer.Option(help="cds version to register as (default: the run's).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing cds version.")] = False,
) -> None:
    """Import an MLflow model version into the cds registry: ONNX + spec.yaml (sha256) + generated model card."""

    def body() -> None:
        from cds.models.promote import default_tracking_uri, promote

        root = registry or Settings().registry_dir
        promoted = promote(
            tracking_uri or default_tracking_uri(), name, version, registry_root=root,
            cards_root=cards or root.resolve().parent / "model_cards", as_version=as_version, force=force,
        )
        out(f"promoted MLflow {name}/{version} (run {promoted.mlflow_run_id}) to {promoted.spec.key}")
        out(f"registry entry: {promoted.folder}")
        out(f"model card: {promoted.spec.model_card}")

    run_command(body)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="Model name, as `cds models list` shows it.")],
    version: Annotated[str | None, typer.Option(help="Version (default: newest).")] = None,
    registry: RegistryOption = None,
    card: Annotated[bool, typer.Option(help="Also print the model card.")] = False,
) -> None:
    """Show a model's spec (contract, labels, thresholds, artifacts) and where its model card is."""

    def body() -> None:
        spec = _registry(registry).get(name, version)
        out(yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False).rstrip())
        if card:
            out("\n" + spec.model_card.read_text(encoding="utf-8"))

    run_command(body)


def _backend_options(
    backend: BackendKind, providers: str | None, triton_url: str | None, protocol: TritonProtocol, device: str
) -> BackendOptions | None:
    if backend is BackendKind.ONNXRUNTIME:
        return OnnxRuntimeOptions(providers=tuple(providers.split(","))) if providers else OnnxRuntimeOptions()
    if backend is BackendKind.TORCH:
        return TorchOptions(device=device)
    default_url = "127.0.0.1:8001" if protocol is TritonProtocol.GRPC else "127.0.0.1:8000"
    return TritonOptions(url=triton_url or default_url, protocol=protocol)


def load_input(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """An array from ``.npy``, or named arrays from ``.npz``; no pickled objects are ever loaded."""
    if not path.is_file():
        raise InvalidInputError(f"input file {path} does not exist", code="input_missing")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {name: archive[name] for name in archive.files}
        array: np.ndarray = np.load(path, allow_pickle=False)
        return array
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidInputError(f"{path} is not a readable .npy/.npz file: {exc}", code="input_unreadable") from exc


@app.command("infer")
def infer(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help=".npy array (one item or a batch) or .npz.")],
    backend: Annotated[BackendKind, typer.Option(help="Inference engine.")] = BackendKind.ONNXRUNTIME,
    version: Annotated[str | None, typer.Option(help="Model version (default: newest).")] = None,
    providers: Annotated[
        str | None, typer.Option(help="ONNX Runtime providers in order, comma-separated (default: best present).")
    ] = None,
    device: Annotated[str, typer.Option(help="torch device: auto, cpu, cuda, cuda:N.")] = "auto",
    triton_url: Annotated[str | None, typer.Option(help="Triton host:port (default 127.0.0.1:8000/8001).")] = None,
    triton_protocol: Annotated[TritonProtocol, typer.Option(help="Triton wire protocol.")] = TritonProtocol.HTTP,
    registry: RegistryOption = None,
) -> None:
    """Classify the tensor(s) in INPUT with MODEL and print one JSON result per item.

    The array must already match the model's input contract (see `cds models show MODEL`): dtype, shape (with
    or without the batch dimension) and value range. Each result names the model, version, artifact sha256,
    backend and the input's sha256.
    """

    def body() -> None:
        spec = _registry(registry).get(model, version)
        options = _backend_options(backend, providers, triton_url, triton_protocol, device)
        with create_backend(backend, spec, options) as engine:
            results = TensorClassificationPipeline(engine)(load_input(input_path))
        out(json.dumps([r.model_dump(mode="json") for r in results], indent=2))

    run_command(body)


@triton_app.command("export-repo")
def triton_export_repo(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    directory: Annotated[Path, typer.Argument(help="Model repository folder (created if missing).")],
    version: Annotated[str | None, typer.Option(help="Model version (default: newest).")] = None,
    max_batch_size: Annotated[int | None, typer.Option(help="Triton max_batch_size (default: the spec's).")] = None,
    preferred_batch_size: Annotated[
        list[int] | None, typer.Option(help="Preferred dynamic-batch size; repeat for several.")
    ] = None,
    max_queue_delay_us: Annotated[int | None, typer.Option(
        help="Dynamic batcher's longest wait, microseconds (default: the model's measured triton.yaml, else 2000).")
    ] = None,
    instances: Annotated[int | None, typer.Option(
        help="Model instances per device (default: the model's measured triton.yaml, else 1).")] = None,
    gpu: Annotated[bool, typer.Option(help="Place instances on GPUs (KIND_GPU) instead of CPUs.")] = False,
    tensorrt_fp16: Annotated[bool, typer.Option(help="Add the TensorRT FP16 accelerator (needs --gpu).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace the model's folder if it exists.")] = False,
    registry: RegistryOption = None,
) -> None:
    """Write DIRECTORY/MODEL/config.pbtxt and DIRECTORY/MODEL/1/model.onnx for Triton's ONNX Runtime backend."""
    from cds.serving.triton.repository import (
        InstanceKind,
        TritonRepositoryOptions,
        export_model_repository,
        tuned_options,
    )

    def body() -> None:
        spec: ModelSpec = _registry(registry).get(model, version)
        tuned = tuned_options(spec) if not gpu else {}  # measured on CPU instances; a GPU deployment starts fresh
        options = TritonRepositoryOptions(
            max_batch_size=max_batch_size,
            preferred_batch_sizes=tuple(preferred_batch_size or ()),
            max_queue_delay_us=max_queue_delay_us if max_queue_delay_us is not None
            else tuned.get("max_queue_delay_us", 2000),
            instances=instances if instances is not None else tuned.get("instances", 1),
            instance_kind=InstanceKind.GPU if gpu else InstanceKind.CPU,
            tensorrt_fp16=tensorrt_fp16,
        )
        folder = export_model_repository(spec, directory, options, overwrite=overwrite)
        out(f"wrote {folder}/config.pbtxt and {folder}/1/model.onnx ({options.instances} instance(s), "
            f"max_queue_delay_us {options.max_queue_delay_us}{', measured' if tuned else ''})")

    run_command(body)


@triton_app.command("serve")
def triton_serve(
    directory: Annotated[Path, typer.Argument(help="Model repository written by `cds triton export-repo`.")],
    http_port: Annotated[int, typer.Option(help="HTTP port on 127.0.0.1.")] = 8000,
    grpc_port: Annotated[int, typer.Option(help="gRPC port on 127.0.0.1.")] = 8001,
    metrics_port: Annotated[int, typer.Option(help="Metrics port on 127.0.0.1.")] = 8002,
) -> None:
    """Run a local Triton Inference Server (through PyTriton, CPU) on DIRECTORY until Ctrl-C.

    For development and tests on machines without a Triton deployment; creates .venv-triton on first use.
    """
    from cds.serving.triton.launcher import TritonPorts, TritonServer

    def body() -> None:
        server = TritonServer(directory, ports=TritonPorts(http_port, grpc_port, metrics_port))
        with server:
            out(f"Triton serving {directory} on http {server.http_url}, grpc {server.grpc_url}; Ctrl-C stops it")
            try:
                signal.pause()
            except KeyboardInterrupt:
                out("stopping")

    run_command(body)


@app.command("demo")
def demo(registry: RegistryOption = None) -> None:
    """Verify the registry and classify the bundled sample patches on ONNX Runtime and torch."""
    from cds.demo import run_demo

    run_command(lambda: run_demo(_registry(registry), out))


if __name__ == "__main__":
    app()
