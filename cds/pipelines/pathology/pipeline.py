"""Whole-slide tumour read-out: slide → tissue → patches at the model's µm/px → probabilities → slide answer.

:class:`SlidePipeline` runs a patch classifier (input [-1, 3, S, S], e.g. ``pathology-demo``) over a slide:

1. open the slide lazily, refusing bad input before decoding (:func:`~cds.pipelines.pathology.slide.open_slide`),
   and hash the file in chunks;
2. read one thumbnail; find the tissue on it (the same thumbnail becomes the heatmap's background);
3. plan the patch grid at the model's resolution and keep the patches with enough tissue;
4. stream them: a reader thread decodes, resizes and preprocesses batches (stain normalisation and scaling,
   :class:`~cds.pipelines.pathology.preprocess.TilePreprocessor`) at most ``prefetch`` batches ahead of the
   backend (:class:`~cds.pipelines.pathology.stream.BoundedPrefetch`), so decoding overlaps inference and memory
   stays bounded whatever the slide's size;
5. aggregate per-patch probabilities into the slide answer (:mod:`~cds.pipelines.pathology.aggregate`) and paint
   the heatmap (:mod:`~cds.pipelines.pathology.heatmap`).

A slide without tissue gets a ``no_tissue`` result, never a score. A single PNG or JPEG tile is classified as one
patch (resized to the model's size). Refusals are :class:`~cds.errors.InvalidInputError` with reason codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cds.errors import InvalidInputError
from cds.models.backend import Backend
from cds.models.spec import Task
from cds.models.tile_preprocessing import TilePreprocessing, load_preprocessing
from cds.pipelines.pathology.aggregate import aggregate
from cds.pipelines.pathology.heatmap import heatmap_at, overlay
from cds.pipelines.pathology.image_tile import ImageTile
from cds.pipelines.pathology.preprocess import TilePreprocessor
from cds.pipelines.pathology.slide import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_PIXELS, Slide, open_slide
from cds.pipelines.pathology.stream import BoundedPrefetch
from cds.pipelines.pathology.tiling import TileCoord, TileGrid, TileSpec, iter_tiles, plan_grid, read_tiles
from cds.pipelines.pathology.tissue import TissueMask, TissueOptions, tissue_from_thumbnail, tissue_mask
from cds.results.classification import Finding
from cds.results.identity import hash_path
from cds.results.slide import (
    ProbabilityGrid,
    SlideAnalysis,
    SlideResult,
    SlideScore,
    SlideSource,
    SlideStatus,
    TileSummary,
)

ProgressFn = Callable[[int, int], None]  # (patches scored so far, patches to score)


@dataclass(frozen=True)
class SlideOptions:
    """How slides are read.

    Attributes:
        batch_size: Patches per backend call.
        prefetch: Batches the reader may hold at once (being read, queued, or being inferred).
        top_k: Patches averaged into the slide score.
        tissue_threshold: Least tissue fraction for a patch to be scored.
        tissue: Tissue detection; its ``thumbnail_side`` is also the heatmap's size.
        max_pixels: Cap on a slide's level-0 pixels (checked from the header).
        max_image_pixels: Cap on a PNG/JPEG tile's pixels.
        slide_mpp: Level-0 µm/px to assume when the file does not say (a single tile defaults to the model's).
        label: The model label to score; default ``tumour``, or the model's only label.
    """

    batch_size: int = 32
    prefetch: int = 2
    top_k: int = 10
    tissue_threshold: float = 0.5
    tissue: TissueOptions = field(default_factory=TissueOptions)
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    slide_mpp: float | None = None
    label: str | None = None


@dataclass
class _Batch:
    coords: list[TileCoord]
    pixels: np.ndarray
    unnormalised: int
    read_s: float
    preprocess_s: float


class SlidePipeline:
    """Runs a patch classifier over slides (see the module docstring).

    Args:
        backend: A backend for a classification model with input [-1, 3, S, S].
        preprocessing: The patch preprocessing; default: the one shipped beside the model
            (:func:`~cds.pipelines.pathology.preprocess.load_preprocessing`).
        options: How slides are read.

    Raises:
        InvalidInputError: ``wrong_task`` (not an RGB patch classifier), ``preprocessing_mismatch``,
            ``unknown_label``, ``invalid_option``.
    """

    def __init__(self, backend: Backend, *, preprocessing: TilePreprocessing | None = None,
                 options: SlideOptions | None = None) -> None:
        spec = backend.spec
        if spec.task is not Task.CLASSIFICATION:
            raise InvalidInputError(f"model {spec.key} is a {spec.task.value} model, not a patch classifier",
                                    code="wrong_task")
        self.preprocessing, self._model_warnings = load_preprocessing(spec, preprocessing)
        self.options = options or SlideOptions()
        if self.options.batch_size < 1 or self.options.top_k < 1:
            raise InvalidInputError(f"batch_size and top_k must be positive, got {self.options}",
                                    code="invalid_option")
        wanted = self.options.label or ("tumour" if "tumour" in spec.labels or len(spec.labels) != 1
                                        else spec.labels[0])
        if wanted not in spec.labels:
            raise InvalidInputError(f"model {spec.key} has no label {wanted!r}; labels: {list(spec.labels)}",
                                    code="unknown_label")
        self.backend, self.label, self._column = backend, wanted, spec.labels.index(wanted)
        self.threshold = spec.thresholds.get(wanted, 0.5)
        if wanted not in spec.thresholds:
            self._model_warnings += (f"model {spec.key} states no operating threshold for {wanted}; 0.5 was used",)
        self._preprocess = TilePreprocessor(self.preprocessing)

    def __call__(self, path: str | Path, *, progress: ProgressFn | None = None) -> SlideAnalysis:
        """Read one slide or tile; raises :class:`InvalidInputError` (with its reason code) when refused."""
        path, options, stage = Path(path), self.options, {}
        start = tic = time.perf_counter()
        slide = open_slide(path, max_pixels=options.max_pixels, max_image_pixels=options.max_image_pixels)
        stage["open_ms"] = _ms(tic)
        with slide:
            tic = time.perf_counter()
            digest = hash_path(path)
            stage["hash_ms"] = _ms(tic)
            self.backend.load()
            if isinstance(slide, ImageTile):
                analysis = self._tile(slide, digest, stage, progress)
            else:
                analysis = self._slide(slide, digest, stage, progress)
        timings = dict(analysis.result.stage_ms, total_ms=round(_ms(start), 3))
        analysis.result = analysis.result.model_copy(update={"stage_ms": timings})
        return analysis

    def _slide(self, slide: Slide, digest: str, stage: dict[str, float], progress: ProgressFn | None
               ) -> SlideAnalysis:
        options, warnings = self.options, list(self._model_warnings)
        tic = time.perf_counter()
        thumbnail = slide.thumbnail(options.tissue.thumbnail_side)
        tissue = tissue_from_thumbnail(thumbnail, slide.dimensions, options.tissue)
        stage["tissue_ms"] = _ms(tic)
        source = self._source(slide, tissue.fraction)
        if tissue.empty:
            return self._no_tissue(digest, source, None, stage, "no tissue found: the slide shows only glass")
        spec = TileSpec(mpp=self.preprocessing.mpp, size=self.preprocessing.size,
                        tissue_threshold=options.tissue_threshold)
        grid = plan_grid(slide, spec, slide_mpp=options.slide_mpp)
        if slide.mpp is None:
            warnings.append(f"the slide does not state its resolution; {options.slide_mpp} µm/px was assumed")
        total = sum(1 for _ in self._coords(grid, tissue))
        if total == 0:
            return self._no_tissue(digest, source, _summary(grid, options, 0, 0), stage,
                                   f"no tissue found: no patch is at least {options.tissue_threshold:.0%} tissue")
        probabilities = ProbabilityGrid.empty(grid.rows, grid.columns, grid.extent0, slide.dimensions)
        unnormalised = self._stream(slide, grid, tissue, probabilities, stage, total, progress)
        return self._scored(digest, source, _summary(grid, options, total, unnormalised), probabilities,
                            thumbnail, stage, warnings)

    def _coords(self, grid: TileGrid, tissue: TissueMask) -> Iterator[TileCoord]:
        return iter_tiles(grid, tissue, tissue_threshold=self.options.tissue_threshold)

    def _batches(self, slide: Slide, grid: TileGrid, tissue: TissueMask) -> Iterator[_Batch]:
        """Runs in the reader thread: read a batch of patches, preprocess it."""
        batches = read_tiles(slide, self._coords(grid, tissue), size=grid.size, batch_size=self.options.batch_size)
        while True:
            tic = time.perf_counter()
            try:
                coords, pixels = next(batches)
            except StopIteration:
                return
            middle = time.perf_counter()
            prepared = self._preprocess(pixels)
            yield _Batch(coords, prepared.pixels, int(prepared.unnormalised.sum()), middle - tic,
                         time.perf_counter() - middle)
            del coords, pixels, prepared  # the consumer may be done with them: hold nothing past its slot

    def _stream(self, slide: Slide, grid: TileGrid, tissue: TissueMask, probabilities: ProbabilityGrid,
                stage: dict[str, float], total: int, progress: ProgressFn | None) -> int:
        """Score every tissue patch into ``probabilities``; returns how many were not stain-normalised."""
        name, output = self.backend.spec.inputs[0].name, self.backend.spec.outputs[0].name
        done = unnormalised = 0
        read_s = preprocess_s = infer_s = wait_s = 0.0
        start = tic = time.perf_counter()
        with BoundedPrefetch(self._batches(slide, grid, tissue), depth=self.options.prefetch) as batches:
            for batch in batches:
                wait_s += time.perf_counter() - tic
                tic = time.perf_counter()
                scores = self.backend.infer({name: batch.pixels})[output][:, self._column]
                infer_s += time.perf_counter() - tic
                for coord, value in zip(batch.coords, scores, strict=True):
                    probabilities.values[coord.row, coord.column] = value
                done += len(batch.coords)
                unnormalised += batch.unnormalised
                read_s, preprocess_s = read_s + batch.read_s, preprocess_s + batch.preprocess_s
                if progress is not None:
                    progress(done, total)
                del batch  # before the next is asked for: the prefetch bound counts on it
                tic = time.perf_counter()
        stage.update(read_ms=read_s * 1000, preprocess_ms=preprocess_s * 1000, infer_ms=infer_s * 1000,
                     wait_ms=wait_s * 1000, stream_ms=_ms(start))
        return unnormalised

    def _tile(self, slide: Slide, digest: str, stage: dict[str, float], progress: ProgressFn | None
              ) -> SlideAnalysis:
        """One PNG/JPEG tile: one patch, resized to the model's size."""
        warnings = list(self._model_warnings)
        width, height = slide.dimensions
        tic = time.perf_counter()
        pixels = slide.read_region(0, 0, 0, width, height)
        mask, _ = tissue_mask(pixels, self.options.tissue)
        stage["tissue_ms"] = _ms(tic)
        source = self._source(slide, float(mask.mean()))
        summary = TileSummary(level=0, level_mpp=self.options.slide_mpp, read_size=max(width, height),
                              grid_columns=1, grid_rows=1, tissue_threshold=0.0, scored=0, unnormalised=0)
        if not mask.any():
            return self._no_tissue(digest, source, summary, stage, "no tissue found: the tile shows only glass")
        if self.options.slide_mpp is None:
            warnings.append(f"a single tile states no resolution; it is taken to be at the model's "
                            f"{self.preprocessing.mpp} µm/px")
        if width != height:
            warnings.append(f"the {width} × {height} tile was resized to a {self.preprocessing.size}-pixel square")
        tic = time.perf_counter()
        prepared = self._preprocess(pixels[None])
        stage["preprocess_ms"] = _ms(tic)
        tic = time.perf_counter()
        spec = self.backend.spec
        value = self.backend.infer({spec.inputs[0].name: prepared.pixels})[spec.outputs[0].name][0, self._column]
        stage["infer_ms"] = _ms(tic)
        if progress is not None:
            progress(1, 1)
        grid = ProbabilityGrid.empty(1, 1, float(max(width, height)), (width, height))
        grid.values[0, 0] = value
        summary = summary.model_copy(update={"scored": 1, "unnormalised": int(prepared.unnormalised.sum())})
        thumbnail = slide.thumbnail(min(self.options.tissue.thumbnail_side, max(width, height)))
        return self._scored(digest, source, summary, grid, thumbnail, stage, warnings)

    def _scored(self, digest: str, source: SlideSource, summary: TileSummary, grid: ProbabilityGrid,
                thumbnail: np.ndarray, stage: dict[str, float], warnings: list[str]) -> SlideAnalysis:
        tic = time.perf_counter()
        score = aggregate(grid.values, threshold=self.threshold, top_k=self.options.top_k)
        stage["aggregate_ms"] = _ms(tic)
        tic = time.perf_counter()
        heat = heatmap_at(grid, thumbnail.shape[1], thumbnail.shape[0])
        image = overlay(thumbnail, heat, threshold=self.threshold)
        stage["heatmap_ms"] = _ms(tic)
        if summary.unnormalised:
            warnings.append(f"{summary.unnormalised} of {summary.scored} patches could not be stain-normalised "
                            "(too little stain or one colour) and were scored as they were")
        finding = Finding(label=self.label, probability=score.top_k_mean, threshold=self.threshold,
                          positive=score.positive)
        result = self._result(digest, source, SlideStatus.SCORED, "", summary, stage, warnings,
                              finding=finding, score=score)
        return SlideAnalysis(result=result, grid=grid, heatmap=image,
                             not_for_diagnostic_use=self.backend.spec.not_for_diagnostic_use)

    def _no_tissue(self, digest: str, source: SlideSource, summary: TileSummary | None, stage: dict[str, float],
                   reason: str) -> SlideAnalysis:
        result = self._result(digest, source, SlideStatus.NO_TISSUE, reason, summary, stage,
                              list(self._model_warnings))
        return SlideAnalysis(result=result, not_for_diagnostic_use=self.backend.spec.not_for_diagnostic_use)

    def _result(self, digest: str, source: SlideSource, status: SlideStatus, reason: str,
                summary: TileSummary | None, stage: dict[str, float], warnings: list[str], *,
                finding: Finding | None = None, score: SlideScore | None = None) -> SlideResult:
        spec = self.backend.spec
        if spec.not_for_diagnostic_use:
            warnings = ["not for diagnostic use", *warnings]
        return SlideResult.model_validate({
            "model": self.backend.metadata().model, "input_sha256": digest, "preprocessing": self.preprocessing,
            "preprocessing_sha256": self.preprocessing.sha256, "source": source, "status": status,
            "reason": reason, "label": self.label, "finding": finding, "score": score, "tiles": summary,
            "intended_use": spec.intended_use, "warnings": tuple(warnings),
            "stage_ms": {k: round(v, 3) for k, v in stage.items()}, "inference_ms": stage.get("infer_ms", 0.0)})

    def _source(self, slide: Slide, tissue_fraction: float) -> SlideSource:
        width, height = slide.dimensions
        return SlideSource(name=slide.source, reader=type(slide).__name__, width=width, height=height,
                           levels=len(slide.levels), mpp=slide.mpp if slide.mpp is not None else self.options.slide_mpp,
                           tissue_fraction=min(max(tissue_fraction, 0.0), 1.0))


def _ms(tic: float) -> float:
    return (time.perf_counter() - tic) * 1000


def _summary(grid: TileGrid, options: SlideOptions, scored: int, unnormalised: int) -> TileSummary:
    return TileSummary(level=grid.level, level_mpp=grid.level_mpp, read_size=grid.read_size,
                       grid_columns=grid.columns, grid_rows=grid.rows, tissue_threshold=options.tissue_threshold,
                       scored=scored, unnormalised=unnormalised)
