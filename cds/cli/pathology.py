"""``cds pathology PATH``: tumour read-out of whole-slide images, single tiles, or a folder of them.

Each input goes through :class:`~cds.pipelines.pathology.pipeline.SlidePipeline` with the registered patch
classifier (``pathology-demo`` by default) and gets a subfolder of ``--output`` with ``result.json``,
``diagnostic-report.json`` (FHIR R4) and ``heatmap.png``. A progress bar counts patches (done/total and
patches/s). An input that cannot be read or is refused is listed with its reason code in
``--output/refused.json`` and the run goes on; the exit code is 2 only when no input could be read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from cds.cli.common import folder_name, out, run_command
from cds.errors import CdsError, InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.pathology.slide import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_PIXELS
from cds.results.slide import SlideResult
from cds.settings import Settings

app = typer.Typer()
_DICOM_SUFFIXES = (".dcm", ".dicom")


def slide_inputs(path: Path) -> list[Path]:
    """The slides under ``path``.

    ``path`` itself when it is a file or a DICOM WSI folder (one holding ``.dcm`` files); otherwise its files and
    subfolders (each subfolder taken as one DICOM WSI), hidden ones skipped.
    """
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InvalidInputError(f"{path} does not exist", code="input_missing")
    entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    if any(p.is_file() and p.suffix.lower() in _DICOM_SUFFIXES for p in entries):
        return [path]
    return entries


def _summary(result: SlideResult) -> str:
    score, tiles = result.score, result.tiles
    if score is None or tiles is None:
        return f"no tissue ({result.reason})"
    call = "POSITIVE" if score.positive else "negative"
    return (f"{result.label} {call}: top-{score.top_k} mean {score.top_k_mean:.3f} (threshold "
            f"{score.threshold:.3f}), area {score.tumour_area_fraction:.1%} of {tiles.scored} tissue patches")


def _progress(bar: tqdm[Any]) -> Callable[[int, int], None]:
    """Moves ``bar`` to (patches done, patches in all); tqdm shows the rate in patches/s."""

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return update


@app.command("pathology")
def pathology(
    path: Annotated[Path, typer.Argument(help="A slide (TIFF/SVS/NDPI/...), a PNG/JPEG tile, a DICOM WSI folder, "
                                              "or a folder of them.")],
    output: Annotated[Path, typer.Option("--output", "--out", "-o", help="Output folder (one subfolder per slide).")
                      ] = Path("pathology-output"),
    model: Annotated[str, typer.Option(help="Registered patch classifier.")] = "pathology-demo",
    version: Annotated[str | None, typer.Option(help="Its version (default: newest).")] = None,
    backend: Annotated[BackendKind, typer.Option(help="Inference engine.")] = BackendKind.ONNXRUNTIME,
    batch_size: Annotated[int, typer.Option(min=1, help="Patches per backend call.")] = 32,
    top_k: Annotated[int, typer.Option(min=1, help="Patches averaged into the slide score.")] = 10,
    tissue_threshold: Annotated[float, typer.Option(min=0.0, max=1.0, help="Least tissue share of a scored patch."
                                                    )] = 0.5,
    mpp: Annotated[float | None, typer.Option(help="Level-0 µm/px to assume when a file does not state it.")
                   ] = None,
    max_pixels: Annotated[int, typer.Option(help="Refuse slides with more level-0 pixels (checked from the header)."
                                            )] = DEFAULT_MAX_PIXELS,
    max_image_pixels: Annotated[int, typer.Option(help="Refuse PNG/JPEG tiles with more pixels.")
                                ] = DEFAULT_MAX_IMAGE_PIXELS,
    preprocessing: Annotated[Path | None, typer.Option(help="preprocessing.json to use instead of the model's.")
                             ] = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
) -> None:
    """Tumour read-out of slides: per-patch probabilities, slide score, tumour area, heatmap.

    Per slide under --output: result.json (typed result with model identity and input sha256),
    diagnostic-report.json (FHIR R4 DiagnosticReport) and heatmap.png (probabilities over the thumbnail). A slide
    without tissue is reported as such, unscored. Refusals are listed, with reason codes, in
    --output/refused.json; the run goes on past them.
    """
    from cds.interop.outputs.slide import write_slide_outputs
    from cds.models.tile_preprocessing import TilePreprocessing
    from cds.pipelines.pathology.pipeline import SlideOptions, SlidePipeline
    from cds.serving.backends import create_backend

    def body() -> None:
        spec = ModelRegistry.from_directory(registry or Settings().registry_dir).get(model, version)
        inputs = slide_inputs(path)
        options = SlideOptions(batch_size=batch_size, top_k=top_k, tissue_threshold=tissue_threshold,
                               max_pixels=max_pixels, max_image_pixels=max_image_pixels, slide_mpp=mpp)
        prep = TilePreprocessing.read(preprocessing) if preprocessing is not None else None
        refusals: list[dict[str, str]] = []
        done, taken = 0, set[str]()
        output.mkdir(parents=True, exist_ok=True)
        with create_backend(backend, spec) as engine:
            pipeline = SlidePipeline(engine, preprocessing=prep, options=options)
            for source in tqdm(inputs, desc="slides", unit="slide", disable=len(inputs) < 2, position=0):
                with tqdm(desc=source.name, unit="tile", leave=False, position=1) as bar:
                    try:
                        analysis = pipeline(source, progress=_progress(bar))
                        folder = output / folder_name(source, taken)
                        write_slide_outputs(analysis, folder, title=f"AI slide read-out ({spec.key})")
                    except CdsError as exc:  # one bad slide never stops the others
                        refusals.append({"file": str(source), "reason": exc.code, "message": exc.message})
                        tqdm.write(f"refused {source}: {exc.code}: {exc.message}")
                        continue
                done += 1
                tqdm.write(f"{source.name}: {_summary(analysis.result)} -> {folder}")
        (output / "refused.json").write_text(json.dumps(refusals, indent=2), encoding="utf-8")
        out(f"{done} read, {len(refusals)} refused (reasons in {output / 'refused.json'})")
        if not done:
            raise typer.Exit(2)

    run_command(body)
