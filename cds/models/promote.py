"""Promote an MLflow model version into the cds registry: ONNX artifact + spec.yaml + sha256 + model card.

A training run (see ``training/tracking.py``) logs the ONNX model with the ``onnx`` flavour and registers it as an
MLflow model version, and logs beside it, under the run's ``cds/`` artifact folder, the parts of the cds spec that
MLflow does not know (``spec.json``), the evaluation (``evaluation.json``) and the card's prose (``card.json``).
Promotion copies the registered ONNX file into ``REGISTRY/<name>/<version>/``, checks that it is byte for byte the
file the run exported and parity-checked, writes the spec with the artifact's sha256, renders the card from the
spec and the evaluation, and tags the MLflow version with the cds version it became.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cds import REPO_ROOT
from cds.errors import ArtifactIntegrityError, CdsError, InvalidInputError, ModelNotFoundError
from cds.models.card import CardContent, Evaluation, figure_name, write_card
from cds.models.registry import load_spec, sha256_file, verify_artifact
from cds.models.spec import ModelSpec

RUN_FOLDER = "cds"
SPEC_FILE = "spec.json"
EVALUATION_FILE = "evaluation.json"
CARD_FILE = "card.json"
FP16_FILE = "model_fp16.onnx"
ONNX_SHA_KEY = "exported_onnx_sha256"
FP16_SHA_KEY = "exported_onnx_fp16_sha256"
TORCH_FILE = "model.pt"
TORCH_SHA_KEY = "exported_torch_sha256"
TORCH_NETWORK_KEY = "torch_network"
PROMOTED_TAG = "cds.registry_key"


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the repo-local SQLite store ``runs/mlflow/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{REPO_ROOT / 'runs' / 'mlflow' / 'mlflow.db'}"


class VersionExistsError(CdsError, ValueError):
    """The registry already holds this model version."""

    default_code = "version_exists"


@dataclass(frozen=True)
class Promoted:
    """What promotion wrote."""

    spec: ModelSpec
    folder: Path
    mlflow_run_id: str


def _download(uri: str, name: str, version: str, destination: Path) -> tuple[Path, Path, str]:
    """(model folder, run's cds folder, run id) of a registered model version."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        model_version = client.get_model_version(name, version)
    except MlflowException as exc:
        raise ModelNotFoundError(f"MLflow at {uri} has no model version {name}/{version}") from exc
    run_id = model_version.run_id
    if not run_id:
        raise InvalidInputError(f"model version {name}/{version} has no training run", code="no_training_run")
    mlflow.set_registry_uri(uri)
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{version}", dst_path=str(destination / "model"), tracking_uri=uri
        )
    )
    try:
        run_dir = Path(client.download_artifacts(run_id, RUN_FOLDER, str(destination)))
    except MlflowException as exc:
        raise InvalidInputError(
            f"run {run_id} has no '{RUN_FOLDER}/' artifacts: it was not logged by a cds training CLI",
            code="not_a_cds_run",
        ) from exc
    return model_dir, run_dir, run_id


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InvalidInputError(f"training run lacks {path.name}", code="not_a_cds_run")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _copy_checked(source: Path, target: Path, expected: str | None) -> str:
    shutil.copyfile(source, target)
    digest = sha256_file(target)
    if expected is not None and digest != expected:
        target.unlink()
        raise ArtifactIntegrityError(
            f"{source.name} in MLflow (sha256 {digest}) is not the file the run exported and checked ({expected})"
        )
    return digest


def promote(
    uri: str,
    name: str,
    version: str,
    *,
    registry_root: Path,
    cards_root: Path,
    as_version: str | None = None,
    force: bool = False,
) -> Promoted:
    """Import MLflow model version ``name``/``version`` into ``registry_root``; the card goes to ``cards_root``.

    Raises:
        ModelNotFoundError: No such model version in MLflow.
        InvalidInputError: The run was not logged by a cds training CLI.
        VersionExistsError: The cds version already exists (and ``force`` is not set).
        ArtifactIntegrityError: The registered ONNX file is not the one the run exported.
    """
    with tempfile.TemporaryDirectory(prefix="cds-promote-") as scratch:
        model_dir, run_dir, run_id = _download(uri, name, version, Path(scratch))
        document = _read_json(run_dir / SPEC_FILE)
        evaluation = Evaluation.model_validate(_read_json(run_dir / EVALUATION_FILE))
        content = CardContent.model_validate(_read_json(run_dir / CARD_FILE))
        cds_version = as_version or str(document["version"])
        folder = registry_root / name / cds_version
        if folder.exists() and not force:
            raise VersionExistsError(f"{folder} already exists; pass force to overwrite it")
        folder.mkdir(parents=True, exist_ok=True)
        onnx_files = sorted(model_dir.glob("*.onnx"))
        if len(onnx_files) != 1:
            raise InvalidInputError(f"model version {name}/{version} holds {len(onnx_files)} ONNX files, expected 1")
        artifacts: dict[str, Any] = {
            "onnx": {"path": "model.onnx",
                     "sha256": _copy_checked(onnx_files[0], folder / "model.onnx", document.pop(ONNX_SHA_KEY, None))}
        }
        fp16_expected, torch_expected = document.pop(FP16_SHA_KEY, None), document.pop(TORCH_SHA_KEY, None)
        network = document.pop(TORCH_NETWORK_KEY, None)
        if (run_dir / FP16_FILE).is_file():
            artifacts["onnx_fp16"] = {
                "path": FP16_FILE, "sha256": _copy_checked(run_dir / FP16_FILE, folder / FP16_FILE, fp16_expected)
            }
        if (run_dir / TORCH_FILE).is_file() and network is not None:
            artifacts["torch"] = {
                "path": TORCH_FILE,
                "sha256": _copy_checked(run_dir / TORCH_FILE, folder / TORCH_FILE, torch_expected),
                "network": network,
            }
        card_path = cards_root / f"{name}-{cds_version}.md"
        document.update(
            name=name,
            version=cds_version,
            artifacts=artifacts,
            model_card=os.path.relpath(card_path.resolve(), folder.resolve()),
            training_run=f"mlflow run {run_id} (registered model {name} version {version})",
        )
        spec_path = folder / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        spec = load_spec(spec_path)
        for figure in content.figures:
            source = run_dir / figure
            if not source.is_file() or source.suffix != ".png":
                raise InvalidInputError(f"the run's card names figure {figure!r}, which it did not log as PNG",
                                        code="not_a_cds_run")
            cards_root.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, cards_root / figure_name(spec, figure))
    verify_artifact(spec.artifacts.onnx)
    write_card(spec, evaluation, content)
    _tag(uri, name, version, spec.key)
    return Promoted(spec=spec, folder=folder, mlflow_run_id=run_id)


def _tag(uri: str, name: str, version: str, key: str) -> None:
    from mlflow.tracking import MlflowClient

    MlflowClient(tracking_uri=uri, registry_uri=uri).set_model_version_tag(name, version, PROMOTED_TAG, key)
