"""``cds models import``: bring your own model (ONNX, TorchScript or MONAI bundle) into the registry."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cds.cli.common import out, run_command
from cds.errors import InvalidInputError
from cds.models.spec import Activation, Modality, Task
from cds.settings import Settings


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise InvalidInputError(f"--input-shape {text!r} must be positive integers separated by commas, without the "
                                "batch dimension, e.g. 1,224,224", code="invalid_option")
    return shape


def _thresholds(text: str) -> dict[str, float]:
    thresholds = {}
    for pair in filter(None, text.split(",")):
        label, _, value = pair.partition("=")
        try:
            thresholds[label.strip()] = float(value)
        except ValueError:
            raise InvalidInputError(f"--thresholds {text!r} must be label=value pairs separated by commas, e.g. "
                                    "normal=0.5,abnormal=0.3", code="invalid_option") from None
    return thresholds


def models_import(
    path: Annotated[Path, typer.Argument(help="ONNX file, TorchScript file (torch.jit.save) or MONAI bundle folder.")],
    name: Annotated[str | None, typer.Option(help="Registry name (default: the bundle's name).")] = None,
    version: Annotated[str | None, typer.Option(help="Registry version (default: the bundle's version).")] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="Input shape without the batch dimension, e.g. 1,224,224 (TorchScript needs it).")
    ] = None,
    labels: Annotated[str | None, typer.Option(help="One label per output channel, comma-separated.")] = None,
    thresholds: Annotated[str | None, typer.Option(help="Operating thresholds, e.g. normal=0.5,abnormal=0.3.")] = None,
    task: Annotated[Task | None, typer.Option(help="Default: the bundle's output format, else the output.")] = None,
    modality: Annotated[Modality | None, typer.Option(help="Default: the bundle's, else OT.")] = None,
    activation: Annotated[
        Activation | None, typer.Option(help="Append to the output; classification needs probabilities.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the model outputs.")] = None,
    intended_use: Annotated[str | None, typer.Option(help="Who may use the output, for what.")] = None,
    not_for_diagnostic_use: Annotated[
        bool, typer.Option("--not-for-diagnostic-use/--diagnostic-use", help="Results carry the caveat.")
    ] = True,
    atol: Annotated[float, typer.Option(help="Largest torch vs ONNX Runtime difference accepted.")] = 1e-4,
    registry: Annotated[
        Path | None, typer.Option(help="Model registry folder (default: $CDS_REGISTRY_DIR or ./registry).")
    ] = None,
    cards: Annotated[
        Path | None, typer.Option(help="Model card folder (default: model_cards next to the registry).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing version.")] = False,
) -> None:
    """Import your own model: convert it to ONNX (parity-checked), write spec.yaml and a model card.

    cds did not train or evaluate an imported model; its card says so. TorchScript files are code: import only
    models you trust. A bundle's network_def may only name torch.nn.Module classes from monai.networks.
    """

    def body() -> None:
        from cds.models.importer import ImportOptions, import_model

        root = registry or Settings().registry_dir
        options = ImportOptions(
            name=name, version=version, task=task, modality=modality,
            labels=tuple(x.strip() for x in labels.split(",") if x.strip()) if labels else (),
            thresholds=_thresholds(thresholds) if thresholds else {},
            input_shape=_shape(input_shape) if input_shape else None, activation=activation,
            description=description, intended_use=intended_use, not_for_diagnostic_use=not_for_diagnostic_use,
            parity_atol=atol,
        )
        imported = import_model(path, options, registry_root=root,
                                cards_root=cards or root.resolve().parent / "model_cards", force=force)
        spec = imported.spec
        out(f"imported {imported.source_file} ({imported.source_format.value}, sha256 {imported.source_sha256[:12]}) "
            f"as {spec.key}")
        out(f"task: {spec.task.value}; modality: {spec.modality.value}; labels: {', '.join(spec.labels) or '-'}")
        for role, tensors in (("input ", spec.inputs), ("output", spec.outputs)):
            for tensor in tensors:
                out(f"{role} {tensor.name}: {tensor.describe()}" + (f" in {tensor.value_range}"
                                                                     if tensor.value_range else ""))
        if imported.parity_max_abs is None:
            out(f"parity: not applicable (ONNX registered as given); activation: {imported.activation.value}")
        else:
            out(f"parity: max abs diff {imported.parity_max_abs:.2e} torch vs ONNX Runtime (tolerance {atol:g}); "
                f"activation: {imported.activation.value}")
        out(f"registry entry: {imported.folder}")
        out(f"model card: {spec.model_card}")

    run_command(body)
