"""``cds batch``: archive re-reads and population risk scoring on a Ray cluster (a local one by default)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cds.batch.store import BatchSummary
from cds.cli.common import out, run_command
from cds.settings import Settings

app = typer.Typer(help="Batch runs on a Ray cluster: re-read an archive, score a population. Resumable.",
                  no_args_is_help=True)  # fmt: skip
AddressOption = Annotated[str | None, typer.Option(
    "--address", help="The Ray cluster (auto, host:port or ray://host:port); default: start a local one.")]
OutOption = Annotated[str, typer.Option("--out", help="Output folder or URI (e.g. s3://bucket/run).")]


def _report(summary: BatchSummary) -> None:
    cluster = summary.cluster
    out(f"{summary.inputs} inputs ({summary.skipped} done before): {summary.done} done, {summary.refused} refused "
        f"{dict(sorted(summary.reasons.items())) if summary.reasons else ''}".rstrip())
    if cluster is not None:
        out(f"cluster: {cluster.nodes} node(s), {cluster.cpus} CPUs, {cluster.gpus} GPUs; index: {summary.index}")


@app.command("preread")
def batch_preread(
    source: Annotated[str, typer.Argument(help="A folder, file or URI of DICOM radiographs.")],
    output: OutOption = "batch-preread",
    model: Annotated[str, typer.Option(help="Registered chest radiograph model.")] = "chest-xray-demo",
    version: Annotated[str | None, typer.Option(help="Its version (default: newest).")] = None,
    saliency_grid: Annotated[int, typer.Option(help="Occlusion grid per side for heatmaps (0: none).")] = 7,
    actors: Annotated[int | None, typer.Option(help="Model actors (default: one per GPU, else half the CPUs).")] = None,
    address: AddressOption = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder (the same on every node).")] = None,
) -> None:
    """Pre-read every radiograph under SOURCE on a Ray cluster; outputs per image, index.json, resumable."""
    from cds.batch.preread import PrereadJob, run_preread_batch

    def body() -> None:
        settings = Settings()
        job = PrereadJob(registry=str((registry or settings.registry_dir).resolve()), model=model, version=version,
                         saliency_grid=saliency_grid, patient_system=settings.patient_id_system)  # fmt: skip
        with tqdm(desc="pre-read", unit="image") as bar:
            summary = run_preread_batch(source, output, job, address=address, actors=actors, progress=bar.update)
        _report(summary)
        if summary.done == 0 and summary.inputs:
            raise typer.Exit(2)

    run_command(body)


@app.command("risk")
def batch_risk(
    source: Annotated[str, typer.Argument(help="A folder, file or URI of cohort files (CSV or Parquet).")],
    method: Annotated[str, typer.Option(help="Equation (cds risk list) or registered risk model.")] = "pce",
    output: OutOption = "batch-risk",
    address: AddressOption = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder (the same on every node).")] = None,
) -> None:
    """Score every cohort file under SOURCE on a Ray cluster; one scored Parquet file each, index.json, resumable."""
    from cds.batch.risk import run_risk_batch

    def body() -> None:
        folder = str((registry or Settings().registry_dir).resolve())
        with tqdm(desc=method, unit="file") as bar:
            summary = run_risk_batch(source, output, method, registry=folder, address=address, progress=bar.update)
        _report(summary)
        if summary.done == 0 and summary.inputs:
            raise typer.Exit(2)

    run_command(body)
