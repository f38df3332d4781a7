"""MLflow tracking for every training CLI: parameters, per-epoch metrics, environment, ONNX model with signature,
model card and evaluation, and registration as an MLflow model version that ``cds models promote`` imports.

The default store is local: ``sqlite:///runs/mlflow/mlflow.db`` with artifacts in ``runs/mlflow/artifacts``
(both ignored by git). ``--tracking-uri`` or ``MLFLOW_TRACKING_URI`` points elsewhere (a server, PostgreSQL).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from cds.models.card import CardContent, Evaluation
from cds.models.promote import (
    CARD_FILE,
    EVALUATION_FILE,
    FP16_FILE,
    FP16_SHA_KEY,
    ONNX_SHA_KEY,
    RUN_FOLDER,
    SPEC_FILE,
    TORCH_FILE,
    TORCH_SHA_KEY,
    default_tracking_uri,
)
from cds.models.registry import sha256_file
from cds.settings import REPO_ROOT

log = logging.getLogger("training.tracking")

def environment() -> dict[str, str]:
    """Versions and hardware the run used (logged as ``environment.json`` and as tags)."""
    import monai
    import onnxruntime
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=10
        ).stdout.strip()
    except OSError:
        commit = ""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "monai": monai.__version__,
        "onnxruntime": onnxruntime.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else (platform.processor() or "cpu"),
        "cpu_count": str(os.cpu_count()),
        "git_commit": commit or "unknown",
    }


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = str(value)[:6000]


def _requirements() -> list[str]:
    import onnx
    import onnxruntime

    return [f"onnx=={onnx.__version__}", f"onnxruntime=={onnxruntime.__version__}"]


class Run:
    """One MLflow run (used as a context manager on the main process only)."""

    def __init__(self, experiment: str, run_name: str, uri: str | None = None) -> None:
        self.uri = uri or default_tracking_uri()
        self.experiment = experiment
        self.run_name = run_name
        self.run_id = ""

    def __enter__(self) -> Run:
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        if mlflow.get_experiment_by_name(self.experiment) is None:
            location = None
            if self.uri.startswith("sqlite:///"):  # keep artifacts next to the database, not in the cwd
                location = (Path(self.uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
            mlflow.create_experiment(self.experiment, artifact_location=location)
        mlflow.set_experiment(self.experiment)
        self.run_id = mlflow.start_run(run_name=self.run_name).info.run_id
        env = environment()
        mlflow.log_dict(env, "environment.json")
        mlflow.set_tags({f"env.{k}": v for k, v in env.items()})
        log.info("MLflow run %s in %s (%s)", self.run_id, self.experiment, self.uri)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        import mlflow

        mlflow.end_run(status="FAILED" if exc_type else "FINISHED")

    def log_params(self, params: dict[str, Any]) -> None:
        """Nested parameters, flattened to ``a.b.c`` keys."""
        import mlflow

        flat: dict[str, str] = {}
        _flatten("", params, flat)
        mlflow.log_params(flat)

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        """Metrics at ``step`` (the epoch for training curves)."""
        import mlflow

        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)}, step=step)

    def log_artifact(self, path: Path, folder: str = RUN_FOLDER) -> None:
        """Attach a file to the run."""
        import mlflow

        mlflow.log_artifact(str(path), folder)

    def log_model(
        self,
        onnx_path: Path,
        *,
        registered_name: str,
        spec_document: dict[str, Any],
        evaluation: Evaluation,
        card: CardContent,
        input_example: np.ndarray,
        output_example: np.ndarray,
        fp16_path: Path | None = None,
        torch_path: Path | None = None,
        figures: list[Path] | None = None,
    ) -> str:
        """Log the ONNX model (with signature), the cds run files and the card; register; return the version."""
        import mlflow
        import onnx
        from mlflow.models import infer_signature

        document = dict(spec_document, **{ONNX_SHA_KEY: sha256_file(onnx_path)})
        extras = {FP16_FILE: (fp16_path, FP16_SHA_KEY), TORCH_FILE: (torch_path, TORCH_SHA_KEY)}
        for _, (path, key) in extras.items():
            if path is not None:
                document[key] = sha256_file(path)
        with tempfile.TemporaryDirectory(prefix="cds-run-") as scratch:
            folder = Path(scratch) / RUN_FOLDER
            folder.mkdir()
            (folder / SPEC_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
            (folder / EVALUATION_FILE).write_text(evaluation.model_dump_json(indent=2), encoding="utf-8")
            (folder / CARD_FILE).write_text(card.model_dump_json(indent=2), encoding="utf-8")
            for name, (path, _) in extras.items():
                if path is not None:
                    (folder / name).write_bytes(path.read_bytes())
            for figure in figures or []:
                (folder / figure.name).write_bytes(figure.read_bytes())
            mlflow.log_artifacts(str(folder), RUN_FOLDER)
        info = mlflow.onnx.log_model(
            onnx.load(str(onnx_path)),
            name="model",
            signature=infer_signature(input_example, output_example),
            registered_model_name=registered_name,
            save_as_external_data=False,
            pip_requirements=_requirements(),  # explicit: MLflow's inference imports the model in a subprocess
            metadata={"cds_name": registered_name, "cds_version": str(spec_document["version"])},
        )
        version = str(info.registered_model_version)
        log.info("registered MLflow model %s version %s", registered_name, version)
        return version
