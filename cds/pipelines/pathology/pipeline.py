"""Whole-slide tumour read-out: slide → tissue → patches at the model's µm/px → probabilities → slide answer.

:class:`SlidePipeline` runs a patch classifier (input [-1, 3, S, S], e.g. ``pathology-demo``) over a slide:

1. open the slide lazily in a decoder process of its own, refusing bad input before decoding
   (:func:`~cds.pipelines.pathology.isolated_slide.open_isolated_slide`),
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
from cds.pipelines.pathology.isolated_slide import open_isolated_slide
from cds.pipelines.pathology.preprocess import TilePreprocessor
from cds.pipelines.pathology.slide import DEFAULT_MAX_IMAGE_PIXELS, DEFAULT_MAX_PIXELS, Slide
from cds.pipelines.pathology.stream import BoundedPrefetch
from cds.pipelines.pathology.tiling import TileCoord, TileGrid, TileSpec, iter_tiles, plan_grid, read_tiles
from cds.pipelines.pathology.tissue import TissueMask, TissueOptions, tissue_from_thumbnail, tissue_mask
from cds.pipelines.timing import StageTimer
from cds.results.classification import Finding
from cds.results.identity import hash_path
from cds.results.phrase import Phrase, phrase
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
Caveat = tuple[str, Phrase]  # a warning or reason, in English and as a phrase for other languages


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
    timer: StageTimer  # read and preprocess, in the reader thread


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
        self.preprocessing, shipped = load_preprocessing(spec, preprocessing)
        self._model_warnings: tuple[Caveat, ...] = tuple(
            (text, phrase("slide.no_preprocessing_file", model=spec.key)) for text in shipped)
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
            self._model_warnings += ((f"model {spec.key} states no operating threshold for {wanted}; 0.5 was used",
                                      phrase("slide.no_threshold", model=spec.key, label=wanted)),)
        self._preprocess = TilePreprocessor(self.preprocessing)

    def __call__(self, path: str | Path, *, progress: ProgressFn | None = None) -> SlideAnalysis:
        """Read one slide or tile; raises :class:`InvalidInputError` (with its reason code) when refused."""
        path, options, timer = Path(path), self.options, StageTimer()
        with timer.stage("open"):
            slide = open_isolated_slide(path, max_pixels=options.max_pixels,
                                        max_image_pixels=options.max_image_pixels)
        with slide:
            with timer.stage("hash"):
                digest = hash_path(path)
            self.backend.load()
            if slide.single_image:
                analysis = self._tile(slide, digest, timer, progress)
            else:
                analysis = self._slide(slide, digest, timer, progress)
        timings = dict(analysis.result.stage_ms, total_ms=round(timer.total_ms(), 3))
        analysis.result = analysis.result.model_copy(update={"stage_ms": timings})
        return analysis

    def _slide(self, slide: Slide, digest: str, timer: StageTimer, progress: ProgressFn | None) -> SlideAnalysis:
        options, warnings = self.options, list(self._model_warnings)
        with timer.stage("tissue"):
            thumbnail = slide.thumbnail(options.tissue.thumbnail_side)
            tissue = tissue_from_thumbnail(thumbnail, slide.dimensions, options.tissue)
        source = self._source(slide, tissue.fraction)
        if tissue.empty:
            return self._no_tissue(digest, source, None, timer, ("no tissue found: the slide shows only glass",
                                                                 phrase("slide.no_tissue_glass")))
        spec = TileSpec(mpp=self.preprocessing.mpp, size=self.preprocessing.size,
                        tissue_threshold=options.tissue_threshold)
        grid = plan_grid(slide, spec, slide_mpp=options.slide_mpp)
        if slide.mpp is None and options.slide_mpp is not None:  # without either, plan_grid refused the slide
            warnings.append((f"the slide does not state its resolution; {options.slide_mpp} µm/px was assumed",
                             phrase("slide.assumed_resolution", mpp=options.slide_mpp)))
        total = sum(1 for _ in self._coords(grid, tissue))
        if total == 0:
            return self._no_tissue(digest, source, _summary(grid, options, 0, 0), timer,
                                   (f"no tissue found: no patch is at least {options.tissue_threshold:.0%} tissue",
                                    phrase("slide.no_tissue_patch", percent=round(options.tissue_threshold * 100))))
        probabilities = ProbabilityGrid.empty(grid.rows, grid.columns, grid.extent0, slide.dimensions)
        unnormalised = self._stream(slide, grid, tissue, probabilities, timer, total, progress)
        return self._scored(digest, source, _summary(grid, options, total, unnormalised), probabilities,
                            thumbnail, timer, warnings)

    def _coords(self, grid: TileGrid, tissue: TissueMask) -> Iterator[TileCoord]:
        return iter_tiles(grid, tissue, tissue_threshold=self.options.tissue_threshold)

    def _batches(self, slide: Slide, grid: TileGrid, tissue: TissueMask) -> Iterator[_Batch]:
        """Runs in the reader thread: read a batch of patches, preprocess it."""
        batches = read_tiles(slide, self._coords(grid, tissue), size=grid.size, batch_size=self.options.batch_size)
        while True:
            timer = StageTimer()
            with timer.stage("read"):
                read = next(batches, None)
            if read is None:
                return
            coords, pixels = read
            with timer.stage("preprocess"):
                prepared = self._preprocess(pixels)
            yield _Batch(coords, prepared.pixels, int(prepared.unnormalised.sum()), timer)
            del read, coords, pixels, prepared  # the consumer may be done with them: hold nothing past its slot

    def _stream(self, slide: Slide, grid: TileGrid, tissue: TissueMask, probabilities: ProbabilityGrid,
                timer: StageTimer, total: int, progress: ProgressFn | None) -> int:
        """Score every tissue patch into ``probabilities``; returns how many were not stain-normalised.

        ``read`` and ``preprocess`` ran in the reader thread, overlapped with ``infer``; ``wait`` is how long
        inference waited for patches; ``stream`` the whole.
        """
        name, output = self.backend.spec.inputs[0].name, self.backend.spec.outputs[0].name
        done = unnormalised = 0
        for stage in ("read", "preprocess", "infer", "wait"):
            timer.add(stage, 0.0)
        with timer.stage("stream"), BoundedPrefetch(self._batches(slide, grid, tissue),
                                                    depth=self.options.prefetch) as prefetch:  # fmt: skip
            batches = iter(prefetch)
            while True:
                with timer.stage("wait"):
                    batch = next(batches, None)
                if batch is None:
                    break
                with timer.stage("infer"):
                    scores = self.backend.infer({name: batch.pixels})[output][:, self._column]
                for coord, value in zip(batch.coords, scores, strict=True):
                    probabilities.values[coord.row, coord.column] = value
                done += len(batch.coords)
                unnormalised += batch.unnormalised
                for stage in ("read", "preprocess"):  # measured in the reader thread
                    timer.add(stage, batch.timer.ms[f"{stage}_ms"] / 1000.0)
                if progress is not None:
                    progress(done, total)
                del batch  # before the next is asked for: the prefetch bound counts on it
        return unnormalised

    def _tile(self, slide: Slide, digest: str, timer: StageTimer, progress: ProgressFn | None) -> SlideAnalysis:
        """One PNG/JPEG tile: one patch, resized to the model's size."""
        warnings = list(self._model_warnings)
        width, height = slide.dimensions
        with timer.stage("tissue"):
            pixels = slide.read_region(0, 0, 0, width, height)
            mask, _ = tissue_mask(pixels, self.options.tissue)
        source = self._source(slide, float(mask.mean()))
        summary = TileSummary(level=0, level_mpp=self.options.slide_mpp, read_size=max(width, height),
                              grid_columns=1, grid_rows=1, tissue_threshold=0.0, scored=0, unnormalised=0)
        if not mask.any():
            return self._no_tissue(digest, source, summary, timer, ("no tissue found: the tile shows only glass",
                                                                    phrase("slide.no_tissue_tile_glass")))
        if self.options.slide_mpp is None:
            warnings.append((f"a single tile states no resolution; it is taken to be at the model's "
                             f"{self.preprocessing.mpp} µm/px", phrase("slide.tile_resolution_assumed",
                                                                      mpp=self.preprocessing.mpp)))
        if width != height:
            warnings.append((f"the {width} × {height} tile was resized to a {self.preprocessing.size}-pixel square",
                             phrase("slide.tile_resized", width=width, height=height, size=self.preprocessing.size)))
        with timer.stage("preprocess"):
            prepared = self._preprocess(pixels[None])
        spec = self.backend.spec
        with timer.stage("infer"):
            value = self.backend.infer({spec.inputs[0].name: prepared.pixels})[spec.outputs[0].name][0, self._column]
        if progress is not None:
            progress(1, 1)
        grid = ProbabilityGrid.empty(1, 1, float(max(width, height)), (width, height))
        grid.values[0, 0] = value
        summary = summary.model_copy(update={"scored": 1, "unnormalised": int(prepared.unnormalised.sum())})
        thumbnail = slide.thumbnail(min(self.options.tissue.thumbnail_side, max(width, height)))
        return self._scored(digest, source, summary, grid, thumbnail, timer, warnings)

    def _scored(self, digest: str, source: SlideSource, summary: TileSummary, grid: ProbabilityGrid,
                thumbnail: np.ndarray, timer: StageTimer, warnings: list[Caveat]) -> SlideAnalysis:
        with timer.stage("aggregate"):
            score = aggregate(grid.values, threshold=self.threshold, top_k=self.options.top_k)
        with timer.stage("heatmap"):
            heat = heatmap_at(grid, thumbnail.shape[1], thumbnail.shape[0])
            image = overlay(thumbnail, heat, threshold=self.threshold)
        if summary.unnormalised:
            warnings.append((f"{summary.unnormalised} of {summary.scored} patches could not be stain-normalised "
                             "(too little stain or one colour) and were scored as they were",
                             phrase("slide.unnormalised", unnormalised=summary.unnormalised, scored=summary.scored)))
        finding = Finding(label=self.label, probability=score.top_k_mean, threshold=self.threshold,
                          positive=score.positive)
        result = self._result(digest, source, SlideStatus.SCORED, None, summary, timer, warnings,
                              finding=finding, score=score)
        return SlideAnalysis(result=result, grid=grid, heatmap=image,
                             not_for_diagnostic_use=self.backend.spec.not_for_diagnostic_use)

    def _no_tissue(self, digest: str, source: SlideSource, summary: TileSummary | None, timer: StageTimer,
                   reason: Caveat) -> SlideAnalysis:
        result = self._result(digest, source, SlideStatus.NO_TISSUE, reason, summary, timer,
                              list(self._model_warnings))
        return SlideAnalysis(result=result, not_for_diagnostic_use=self.backend.spec.not_for_diagnostic_use)

    def _result(self, digest: str, source: SlideSource, status: SlideStatus, reason: Caveat | None,
                summary: TileSummary | None, timer: StageTimer, warnings: list[Caveat], *,
                finding: Finding | None = None, score: SlideScore | None = None) -> SlideResult:
        spec = self.backend.spec
        if spec.not_for_diagnostic_use:
            warnings = [("not for diagnostic use", phrase("slide.not_for_diagnostic_use")), *warnings]
        return SlideResult.model_validate({
            "model": self.backend.metadata().model, "input_sha256": digest, "preprocessing": self.preprocessing,
            "preprocessing_sha256": self.preprocessing.sha256, "source": source, "status": status,
            "reason": reason[0] if reason else "", "reason_phrase": reason[1] if reason else None,
            "label": self.label, "finding": finding, "score": score, "tiles": summary,
            "intended_use": spec.intended_use, "warnings": tuple(text for text, _ in warnings),
            "warning_phrases": tuple(said for _, said in warnings),
            "stage_ms": {k: round(v, 3) for k, v in timer.ms.items()}, "inference_ms": timer.ms.get("infer_ms", 0.0)})

    def _source(self, slide: Slide, tissue_fraction: float) -> SlideSource:
        width, height = slide.dimensions
        return SlideSource(name=slide.source, reader=slide.reader, width=width, height=height,
                           levels=len(slide.levels), mpp=slide.mpp if slide.mpp is not None else self.options.slide_mpp,
                           tissue_fraction=min(max(tissue_fraction, 0.0), 1.0))


def _summary(grid: TileGrid, options: SlideOptions, scored: int, unnormalised: int) -> TileSummary:
    return TileSummary(level=grid.level, level_mpp=grid.level_mpp, read_size=grid.read_size,
                       grid_columns=grid.columns, grid_rows=grid.rows, tissue_threshold=options.tissue_threshold,
                       scored=scored, unnormalised=unnormalised)
