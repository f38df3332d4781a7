"""``cds preread PATH``: AI pre-read of a DICOM file or a folder of them.

Files are read defensively, grouped into series, and each series goes to the model whose imaging contract accepts
its modality: radiographs (CR/DX) image by image to the chest model (plus the plausibility gate its contract
names), CT series whole to the CT segmentation model. A file or series that cannot be read, fits no model or is
refused is listed with its reason code and the run goes on.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from tqdm import tqdm

from cds.cli.common import out, run_command
from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.pipelines.imaging.plausibility import PlausibilityPolicy
from cds.pipelines.imaging.saliency import HeatmapMethod
from cds.results.classification import Finding
from cds.results.jobs import OutcomeKind, PrereadOutcome, PrereadReport, Refusal
from cds.results.segmentation import StructureVolume
from cds.settings import Settings

app = typer.Typer()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    raise InvalidInputError(f"{path} does not exist", code="input_missing")


def _findings_table(findings: Sequence[Finding]) -> str:
    lines = [f"  {'FINDING':<28} {'PROBABILITY':>11} {'THRESHOLD':>9}  CALL"]
    for f in findings:
        threshold = "None" if f.threshold is None else format(f.threshold, ".3f")
        lines.append(f"  {f.label:<28} {f.probability:>11.3f} {threshold:>9}  {'POSITIVE' if f.positive else '-'}")
    return "\n".join(lines)


def _structures_table(structures: Sequence[StructureVolume]) -> str:
    lines = [f"  {'STRUCTURE':<20} {'VOLUME (mL)':>11} {'VOXELS':>10}"]
    lines += [f"  {s.label:<20} {s.volume_ml:>11.1f} {s.voxels:>10}" for s in structures]
    return "\n".join(lines)


def _table(outcome: PrereadOutcome) -> str:
    return _structures_table(outcome.structures) if outcome.kind is OutcomeKind.CT else _findings_table(
        outcome.findings)


@app.command("preread")
def preread(
    path: Annotated[Path, typer.Argument(help="A DICOM file, or a folder searched recursively.")],
    output: Annotated[Path, typer.Option("--out", help="Output folder (one subfolder per image or series).")] = Path(
        "preread-output"
    ),
    model: Annotated[str, typer.Option(help="Registered chest radiograph model.")] = "chest-xray-demo",
    version: Annotated[str | None, typer.Option(help="Its version (default: newest).")] = None,
    ct_model: Annotated[str, typer.Option(help="Registered CT segmentation model ('' for none).")] = "ct-organs-demo",
    heatmaps: Annotated[HeatmapMethod, typer.Option(
        help="auto: class activation maps from the model's forward pass when it exports them, else occlusion.")
    ] = HeatmapMethod.AUTO,
    saliency_grid: Annotated[int, typer.Option(help="Occlusion grid per side for heatmaps (0: none).")] = 7,
    plausibility_policy: Annotated[PlausibilityPolicy | None, typer.Option(
        help="Below the plausibility gate's threshold: refuse, or warn (out_of_distribution on every output); "
             "default: the site's CDS_PLAUSIBILITY_POLICY.")] = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
) -> None:
    """Pre-read radiographs (findings, heatmaps) and CT series (organ segmentation) from DICOM files.

    Per image or series under --out: result.json, diagnostic-report.json (FHIR), report-sr.dcm (DICOM SR), and
    heatmap PNG + secondary capture per positive finding (radiographs) or segmentation-seg.dcm (DICOM SEG) and an
    overlay (CT). Refusals, with their reasons, are listed in --out/refused.json; the run goes on past them.
    """
    from cds.models.spec import BackendKind
    from cds.pipelines.imaging.dicom_reader import read_instance
    from cds.services.preread import PrereadRunner, RadiographOptions
    from cds.serving.backends import create_backend

    def body() -> None:
        settings = Settings()
        models = ModelRegistry.from_directory(registry or settings.registry_dir)
        radiograph = models.get(model, version)
        ct = models.get(ct_model) if ct_model else None
        files = _files(path)
        report = PrereadReport()
        site = RadiographOptions.from_settings(settings)
        options = RadiographOptions(heatmaps=heatmaps, saliency_grid=saliency_grid,
                                    plausibility_policy=plausibility_policy or site.plausibility_policy,
                                    refuse_below=site.refuse_below)
        with PrereadRunner(models, radiograph, ct, output, options=options,
                           backends=functools.partial(create_backend, BackendKind.ONNXRUNTIME),
                           patient_system=settings.patient_id_system) as runner:
            instances = []
            for file in tqdm(files, desc="read", unit="file", disable=len(files) < 2):
                try:
                    instances.append(read_instance(file, name=str(file)))
                except CdsError as exc:
                    report.refusals.append(Refusal(source=str(file), reason=exc.code, message=exc.message,
                                                   files=(str(file),)))
            series = runner.group(instances, report)
            for members in tqdm(series, desc="pre-read", unit="series", disable=len(series) < 2):
                done, refused = len(report.outcomes), len(report.refusals)
                runner.run_series(members, report)
                for outcome in report.outcomes[done:]:
                    tqdm.write(f"{outcome.kind.value} {outcome.uid} -> {runner.layout(outcome).folder}\n"
                               f"{_table(outcome)}")
                for refusal in report.refusals[refused:]:
                    tqdm.write(f"refused {refusal.source}: {refusal.reason}: {refusal.message}")
        output.mkdir(parents=True, exist_ok=True)
        refusals = [{"file": r.source, "files": list(r.files or (r.source,)), "reason": r.reason, "message": r.message}
                    for r in report.refusals]  # fmt: skip
        (output / "refused.json").write_text(json.dumps(refusals, indent=2), encoding="utf-8")
        out(f"{len(report.outcomes)} pre-read, {len(refusals)} refused (reasons in {output / 'refused.json'})")
        if not report.outcomes:
            raise typer.Exit(2)

    run_command(body)
