"""A test-only patch "model" that needs no weights: it scores the share of dark (nuclear) pixels.

Generated tumour has larger, denser, darker nuclei than generated normal tissue, so the share of dark pixels
separates the two; that makes pipeline tests meaningful (the heatmap must follow the ground truth) while staying
fast and independent of the shipped model. It runs through :class:`~cds.serving.backends.base.BaseBackend`, so
the input contract is checked exactly as for a real engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cds.models.registry import sha256_file
from cds.models.spec import BackendKind, ModelSpec
from cds.models.tile_preprocessing import PREPROCESSING_FILE, TilePreprocessing
from cds.pipelines.pathology.preprocess import fit_stain_target
from cds.serving.backends.base import BaseBackend
from training.data.he_tiles import he_tile


def patch_spec(folder: Path, *, size: int = 64, labels: tuple[str, ...] = ("tumour",), threshold: float = 0.5,
               preprocessing: TilePreprocessing | None = None) -> ModelSpec:
    """A classification spec for [-1, 3, size, size] patches, with a dummy artifact and (optionally) its
    preprocessing.json beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / "model.onnx"
    artifact.write_bytes(b"darkness model: no weights")
    if preprocessing is not None:
        preprocessing.write(folder / PREPROCESSING_FILE)
    return ModelSpec.model_validate({
        "name": "darkness-test", "version": "0.0.1", "task": "classification", "modality": "SM",
        "description": "Share of dark pixels, squashed to a probability (test only).",
        "intended_use": "Tests only.",
        "inputs": [{"name": "image", "dtype": "float32", "shape": [-1, 3, size, size], "value_range": [0.0, 1.0]}],
        "outputs": [{"name": "probabilities", "dtype": "float32", "shape": [-1, len(labels)],
                     "value_range": [0.0, 1.0], "channel_names": list(labels)}],
        "labels": list(labels), "thresholds": {labels[-1]: threshold}, "max_batch_size": 16,
        "artifacts": {"onnx": {"path": str(artifact), "sha256": sha256_file(artifact)}},
        "model_card": str(folder / "card.md"),
    })


def macenko_preprocessing(size: int = 64, mpp: float = 0.5) -> TilePreprocessing:
    """Macenko to a generated normal tile, the way the shipped model's preprocessing is made."""
    return TilePreprocessing(mpp=mpp, size=size, stain=fit_stain_target("macenko", he_tile(0, seed=77)))


class DarknessBackend(BaseBackend):
    """Probability of the last label = sigmoid(40 · (share of pixels darker than 0.6 - 0.12)).

    Attributes:
        batches: Batch sizes it was called with.
        seen: Every input batch, when ``keep_inputs`` (for tests that compare what the model saw).
    """

    kind = BackendKind.ONNXRUNTIME

    def __init__(self, spec: ModelSpec, *, keep_inputs: bool = False) -> None:
        super().__init__(spec)
        self.keep_inputs = keep_inputs
        self.batches: list[int] = []
        self.seen: list[np.ndarray] = []

    def _load(self) -> str:
        return self.spec.artifacts.onnx.sha256

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        image = inputs["image"]
        self.batches.append(len(image))
        if self.keep_inputs:
            self.seen.append(image.copy())
        dark = (image.mean(axis=1) < 0.6).mean(axis=(1, 2))
        tumour = 1.0 / (1.0 + np.exp(-40.0 * (dark - 0.12)))
        columns = [1.0 - tumour] * (len(self.spec.labels) - 1) + [tumour]
        return {"probabilities": np.stack(columns, axis=1).astype(np.float32)}

    def _close(self) -> None:
        self.seen.clear()

    def _device(self) -> str:
        return "cpu"

    def _precision(self) -> str:
        return "fp32"
