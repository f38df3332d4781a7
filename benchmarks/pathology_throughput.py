"""Whole-slide throughput and memory: a generated 50,000 × 50,000 H&E slide through the full pathology pipeline.

    python -m benchmarks.pathology_throughput [--size 50000] [--seed 17] [--batch-size 32] [--prefetch 2]

The slide (a pyramidal tiled TIFF at 0.5 µm/px with tissue and tumour areas, ``training/data/he_slide.py``) is
generated once, in a child process, and cached with its ground truth under ``data/benchmarks/pathology/`` (ignored by
git; ``--cache`` moves it): writing 50k × 50k takes several minutes. Then this process runs what ``cds pathology``
runs (open, hash, tissue, patches streamed through a bounded reader thread into ONNX Runtime, aggregation, heatmap,
JSON + FHIR + PNG outputs) and reports patches/s, time per stage, the process's peak resident memory (the child
that generated the slide is not counted) and how the predicted tumour area agrees with the generator's truth.
Writes ``benchmarks/results/<device>-<date>-pathology-throughput.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.reporting import RESULTS, command_line, device_name, stage_table, write_results
from cds.interop.outputs.slide import write_slide_outputs
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.pathology.pipeline import SlideOptions, SlidePipeline
from cds.pipelines.pathology.tissue import TissueMask
from cds.results.slide import SlideAnalysis
from cds.serving.backends import create_backend
from cds.settings import REPO_ROOT

CACHE = REPO_ROOT / "data" / "benchmarks" / "pathology"


def _generate(path: str, size: int, seed: int) -> None:
    """Child process: write the slide and its ground truth (``.npz`` beside it), the TIFF last renamed into place."""
    from training.data.he_slide import write_slide

    scratch = Path(path).with_suffix(".partial.tif")
    slide = write_slide(scratch, size, size, seed=seed, mpp=0.5)
    np.savez_compressed(Path(path).with_suffix(".npz"), tissue=slide.tissue_mask, tumour=slide.tumour_mask,
                        scale=slide.mask_scale)
    scratch.rename(path)


def cached_slide(folder: Path, size: int, seed: int) -> tuple[Path, float]:
    """The cached slide (generated first when missing) and the seconds spent generating it (0 when reused)."""
    path = folder / f"he-{size}x{size}-seed{seed}.tif"
    if path.is_file() and path.with_suffix(".npz").is_file():
        return path, 0.0
    folder.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    child = multiprocessing.get_context("spawn").Process(target=_generate, args=(str(path), size, seed))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"generating the slide failed (exit code {child.exitcode})")
    return path, time.perf_counter() - tic


def agreement(analysis: SlideAnalysis, truth_file: Path) -> dict[str, float]:
    """Predicted vs generated tumour: patch-level AUC, sensitivity, specificity, Dice; area fractions."""
    from sklearn.metrics import roc_auc_score

    truth = np.load(truth_file)
    scale = float(truth["scale"])
    tumour = TissueMask(mask=truth["tumour"], scale=(scale, scale), threshold=0.0)
    table = tumour.integral()
    grid, score = analysis.grid, analysis.result.score
    assert grid is not None and score is not None
    rows, columns = np.nonzero(~np.isnan(grid.values))
    fractions = np.array([tumour.box_fraction(table, c * grid.extent0, r * grid.extent0, grid.extent0, grid.extent0)
                          for r, c in zip(rows, columns, strict=True)])
    probabilities, real = grid.values[rows, columns], fractions >= 0.5
    called = probabilities >= score.threshold
    return {
        "patches": int(len(real)),
        "true_tumour_patches": int(real.sum()),
        "patch_auc": float(roc_auc_score(real, probabilities)) if 0 < real.sum() < len(real) else float("nan"),
        "patch_sensitivity": float((called & real).sum() / max(real.sum(), 1)),
        "patch_specificity": float((~called & ~real).sum() / max((~real).sum(), 1)),
        "patch_dice": float(2 * (called & real).sum() / max(called.sum() + real.sum(), 1)),
        "predicted_area_fraction": score.tumour_area_fraction,
        "true_area_fraction_patches": float(real.mean()),
        "true_area_fraction_pixels": float(truth["tumour"].sum() / max(truth["tissue"].sum(), 1)),
    }


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and write its results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=50_000, help="slide side in level-0 pixels")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--model", default="pathology-demo")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the generated slide is kept")
    parser.add_argument("--registry", type=Path, default=REPO_ROOT / "registry")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and Markdown go")
    args = parser.parse_args(argv)
    path, generate_s = cached_slide(args.cache, args.size, args.seed)
    spec = ModelRegistry.from_directory(args.registry).get(args.model)
    options = SlideOptions(batch_size=args.batch_size, prefetch=args.prefetch)
    with create_backend(BackendKind.ONNXRUNTIME, spec) as backend, \
            tempfile.TemporaryDirectory(prefix="cds-bench-") as scratch:
        pipeline = SlidePipeline(backend, options=options)
        tic = time.perf_counter()
        analysis = pipeline(path)
        write_tic = time.perf_counter()
        write_slide_outputs(analysis, Path(scratch), title="benchmark")
        write_ms, wall_s = (time.perf_counter() - write_tic) * 1000, time.perf_counter() - tic
    result = analysis.result
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    scored = result.tiles.scored if result.tiles else 0
    stages = dict(result.stage_ms, write_ms=write_ms)
    row = {"backend": BackendKind.ONNXRUNTIME.value, "tiles_per_second": scored / (stages["stream_ms"] / 1000),
           "stage_ms": stages}
    report = {
        "device": device_name(), "date": dt.date.today().isoformat(),
        "command": command_line("benchmarks.pathology_throughput", argv), "model": spec.key,
        "slide": {"width": result.source.width, "height": result.source.height, "mpp": result.source.mpp,
                  "levels": result.source.levels, "file_bytes": path.stat().st_size,
                  "tissue_fraction": result.source.tissue_fraction, "generate_s": round(generate_s, 1)},
        "options": {"batch_size": args.batch_size, "prefetch": args.prefetch},
        "patches": {"grid": [result.tiles.grid_columns, result.tiles.grid_rows] if result.tiles else None,
                    "scored": scored, "unnormalised": result.tiles.unnormalised if result.tiles else 0},
        "tiles_per_second_stream": row["tiles_per_second"], "tiles_per_second_end_to_end": scored / wall_s,
        "wall_s": wall_s, "peak_rss_mib": peak_mib,
        "slide_score": result.score.model_dump() if result.score else None,
        "agreement": agreement(analysis, path.with_suffix(".npz")),
        "results": [row],
    }
    title = (f"Pathology throughput: {spec.key} on a generated {result.source.width:,} × {result.source.height:,} "
             f"slide ({scored:,} tissue patches of {spec.inputs[0].shape[-1]} px at "
             f"{pipeline.preprocessing.mpp:g} µm/px)")
    table = stage_table(title, report, [row], "backend", "tiles_per_second")
    a = report["agreement"]
    assert isinstance(a, dict)
    table += (f"\nEnd to end {report['tiles_per_second_end_to_end']:.1f} patches/s over {wall_s:.0f} s; "
              f"peak resident memory of the process {peak_mib:.0f} MiB (read_ms, preprocess_ms ran in the reader "
              "thread, overlapped with infer_ms).\n\n"
              "| agreement with the generator's truth | value |\n| --- | --- |\n"
              + "".join(f"| {key.replace('_', ' ')} | {value:.4g} |\n" for key, value in a.items()))
    write_results("pathology-throughput", report, table, results_dir=args.results)


if __name__ == "__main__":
    main()
