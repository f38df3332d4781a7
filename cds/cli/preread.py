"""``cds preread PATH``: AI pre-read of chest radiographs (a DICOM file or a folder of them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cds.cli.common import out, run_command
from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.settings import Settings

app = typer.Typer()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    raise InvalidInputError(f"{path} does not exist", code="input_missing")


def _table(findings: list[dict[str, object]]) -> str:
    lines = [f"  {'FINDING':<28} {'PROBABILITY':>11} {'THRESHOLD':>9}  CALL"]
    for f in findings:
        threshold = f["threshold"]
        call = "POSITIVE" if f["positive"] else "-"
        lines.append(f"  {f['label']!s:<28} {f['probability']:>11.3f} "
                     f"{threshold if threshold is None else format(threshold, '.3f')!s:>9}  {call}")
    return "\n".join(lines)


@app.command("preread")
def preread(
    path: Annotated[Path, typer.Argument(help="A DICOM file, or a folder searched recursively.")],
    output: Annotated[Path, typer.Option("--out", help="Output folder (one subfolder per image).")] = Path(
        "preread-output"
    ),
    model: Annotated[str, typer.Option(help="Registered chest radiograph model.")] = "chest-xray-demo",
    version: Annotated[str | None, typer.Option(help="Model version (default: newest).")] = None,
    saliency_grid: Annotated[int, typer.Option(help="Occlusion grid per side for heatmaps (0: none).")] = 7,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
) -> None:
    """Pre-read chest radiographs: findings table, result.json, FHIR report and heatmap PNGs per image.

    Outputs go to one subfolder of --out per image.
    A file that cannot be read or does not fit the model is reported with its reason (also in
    --out/refused.json) and the run goes on.
    """
    from cds.pipelines.dicom_reader import read_instance
    from cds.pipelines.preread_outputs import write_preread
    from cds.pipelines.radiograph_preread import RadiographPrereadPipeline
    from cds.serving.backends import create_backend

    def body() -> None:
        spec = ModelRegistry.from_directory(registry or Settings().registry_dir).get(model, version)
        files = _files(path)
        refused: list[dict[str, str]] = []
        done = 0
        with create_backend(BackendKind.ONNXRUNTIME, spec) as engine:
            pipeline = RadiographPrereadPipeline(engine, saliency_grid=saliency_grid)
            for file in tqdm(files, desc="pre-read", unit="image", disable=len(files) < 2):
                try:
                    result = pipeline(read_instance(file, name=str(file)))
                except CdsError as exc:  # one bad file never stops the run
                    refused.append({"file": str(file), "reason": exc.code, "message": exc.message})
                    tqdm.write(f"refused {file}: {exc.code}: {exc.message}")
                    continue
                folder = output / (result.source.sop_instance_uid or file.stem)
                write_preread(result, folder, title=f"AI pre-read: {spec.name} {spec.version}")
                findings = [f.model_dump() for f in result.result.findings]
                tqdm.write(f"{file} -> {folder}\n{_table(findings)}")
                done += 1
        output.mkdir(parents=True, exist_ok=True)
        (output / "refused.json").write_text(json.dumps(refused, indent=2), encoding="utf-8")
        out(f"{done} pre-read, {len(refused)} refused (reasons in {output / 'refused.json'})")
        if done == 0:
            raise typer.Exit(2)

    run_command(body)
