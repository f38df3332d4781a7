"""``cds preread PATH``: AI pre-read of a DICOM file or a folder of them.

Files are read defensively, grouped into series, and each series goes to the model whose imaging contract accepts
its modality: radiographs (CR/DX) image by image to the chest model (plus the plausibility gate its contract
names), CT series whole to the CT segmentation model. A file or series that cannot be read, fits no model or is
refused is listed with its reason code and the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from tqdm import tqdm

from cds.cli.common import out, run_command
from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import ModelSpec
from cds.settings import Settings

if TYPE_CHECKING:
    from cds.pipelines.ct_segmentation import CtSegmentationPipeline
    from cds.pipelines.dicom_reader import DicomInstance
    from cds.pipelines.radiograph_preread import RadiographPrereadPipeline

app = typer.Typer()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    raise InvalidInputError(f"{path} does not exist", code="input_missing")


def _findings_table(findings: list[dict[str, object]]) -> str:
    lines = [f"  {'FINDING':<28} {'PROBABILITY':>11} {'THRESHOLD':>9}  CALL"]
    for f in findings:
        threshold = f["threshold"]
        call = "POSITIVE" if f["positive"] else "-"
        lines.append(f"  {f['label']!s:<28} {f['probability']:>11.3f} "
                     f"{threshold if threshold is None else format(threshold, '.3f')!s:>9}  {call}")
    return "\n".join(lines)


def _structures_table(structures: list[dict[str, object]]) -> str:
    lines = [f"  {'STRUCTURE':<20} {'VOLUME (mL)':>11} {'VOXELS':>10}"]
    lines += [f"  {s['label']!s:<20} {s['volume_ml']:>11.1f} {s['voxels']:>10}" for s in structures]
    return "\n".join(lines)


class _Run:
    """Per-run state: outputs folder, refusals, counts, lazily opened pipelines."""

    def __init__(self, models: ModelRegistry, radiograph: ModelSpec, ct: ModelSpec | None, output: Path,
                 stack: ExitStack, saliency_grid: int) -> None:
        self.models, self.radiograph_spec, self.ct_spec = models, radiograph, ct
        self.output, self.stack, self.saliency_grid = output, stack, saliency_grid
        self.refused: list[dict[str, str]] = []
        self.done = 0
        self._radiograph: RadiographPrereadPipeline | None = None
        self._ct: CtSegmentationPipeline | None = None

    def refuse(self, where: str, exc: CdsError) -> None:
        self.refused.append({"file": where, "reason": exc.code, "message": exc.message})
        tqdm.write(f"refused {where}: {exc.code}: {exc.message}")

    def radiograph(self, instance: DicomInstance) -> None:
        from cds.pipelines.preread_outputs import write_preread
        from cds.serving.preread import radiograph_pipeline

        if self._radiograph is None:
            self._radiograph = radiograph_pipeline(self.models, self.radiograph_spec, self.stack,
                                                   saliency_grid=self.saliency_grid)
        result = self._radiograph(instance)
        folder = self.output / (result.source.sop_instance_uid or Path(instance.source).stem)
        spec = self.radiograph_spec
        write_preread(result, folder, title=f"AI pre-read: {spec.name} {spec.version}")
        tqdm.write(f"{instance.source} -> {folder}\n"
                   f"{_findings_table([f.model_dump() for f in result.result.findings])}")
        self.done += 1

    def ct(self, spec: ModelSpec, instances: Sequence[DicomInstance]) -> None:
        from cds.pipelines.ct_segmentation import CtSegmentationPipeline
        from cds.pipelines.segmentation_outputs import write_segmentation
        from cds.serving.backends import create_backend

        if self._ct is None:
            self._ct = CtSegmentationPipeline(self.stack.enter_context(create_backend("onnxruntime", spec)))
        segmentation = self._ct(instances)
        folder = self.output / (segmentation.volume.series_uid or "series")
        write_segmentation(segmentation, instances, folder, title=f"AI segmentation: {spec.name} {spec.version}",
                           not_for_diagnostic_use=spec.not_for_diagnostic_use)
        structures = [s.model_dump() for s in segmentation.result.structures]
        tqdm.write(f"CT series of {len(instances)} slices -> {folder}\n{_structures_table(structures)}")
        self.done += 1


def _route(run: _Run, instances: list[DicomInstance]) -> Callable[[], None]:
    """The work for one series: whole CT series, radiographs one by one, or a refusal naming what fits."""
    modality = str(instances[0].dataset.get("Modality", "") or "").upper()
    accepts = {name: {m.value for m in spec.imaging.modalities} if spec and spec.imaging else set()
               for name, spec in (("radiograph", run.radiograph_spec), ("ct", run.ct_spec))}
    if run.ct_spec is not None and modality in accepts["ct"]:
        ct_spec = run.ct_spec
        return lambda: run.ct(ct_spec, instances)
    if modality in accepts["radiograph"] or not accepts["ct"]:
        def each() -> None:
            for instance in instances:
                try:
                    run.radiograph(instance)
                except CdsError as exc:  # one bad image never stops the series
                    run.refuse(instance.source, exc)
        return each
    wanted = "/".join(sorted(accepts["radiograph"] | accepts["ct"]))
    raise InvalidInputError(f"no model for modality {modality or 'none'}; the models expect {wanted}",
                            code="wrong_modality")


@app.command("preread")
def preread(
    path: Annotated[Path, typer.Argument(help="A DICOM file, or a folder searched recursively.")],
    output: Annotated[Path, typer.Option("--out", help="Output folder (one subfolder per image or series).")] = Path(
        "preread-output"
    ),
    model: Annotated[str, typer.Option(help="Registered chest radiograph model.")] = "chest-xray-demo",
    version: Annotated[str | None, typer.Option(help="Its version (default: newest).")] = None,
    ct_model: Annotated[str, typer.Option(help="Registered CT segmentation model ('' for none).")] = "ct-organs-demo",
    saliency_grid: Annotated[int, typer.Option(help="Occlusion grid per side for heatmaps (0: none).")] = 7,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
) -> None:
    """Pre-read radiographs (findings, heatmaps) and CT series (organ segmentation) from DICOM files.

    Per image or series under --out: result.json, diagnostic-report.json (FHIR), report-sr.dcm (DICOM SR), and
    heatmap PNG + secondary capture per positive finding (radiographs) or segmentation-seg.dcm (DICOM SEG) and an
    overlay (CT). Refusals, with their reasons, are listed in --out/refused.json; the run goes on past them.
    """
    from cds.pipelines.dicom_reader import read_instance
    from cds.pipelines.dicom_series import group_series

    def body() -> None:
        models = ModelRegistry.from_directory(registry or Settings().registry_dir)
        radiograph = models.get(model, version)
        ct = models.get(ct_model) if ct_model else None
        files = _files(path)
        with ExitStack() as stack:
            run = _Run(models, radiograph, ct, output, stack, saliency_grid)
            instances = []
            for file in tqdm(files, desc="read", unit="file", disable=len(files) < 2):
                try:
                    instances.append(read_instance(file, name=str(file)))
                except CdsError as exc:
                    run.refuse(str(file), exc)
            series = list(group_series(instances).values())
            for members in tqdm(series, desc="pre-read", unit="series", disable=len(series) < 2):
                try:
                    _route(run, members)()
                except CdsError as exc:  # one bad series never stops the run
                    run.refuse(members[0].source if len(members) == 1 else f"series of {len(members)} files "
                               f"starting {members[0].source}", exc)
        output.mkdir(parents=True, exist_ok=True)
        (output / "refused.json").write_text(json.dumps(run.refused, indent=2), encoding="utf-8")
        out(f"{run.done} pre-read, {len(run.refused)} refused (reasons in {output / 'refused.json'})")
        if run.done == 0:
            raise typer.Exit(2)

    run_command(body)
