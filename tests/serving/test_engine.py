"""The composition root: one engine from the settings, one way to make a backend, metered; the engine it serves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from cds.errors import BackendUnavailableError, ModelNotFoundError
from cds.models.spec import BackendKind
from cds.serving.backends import TritonBackend
from cds.serving.engine import build_engine
from cds.settings import Settings


def test_the_service_runs_models_on_onnxruntime_or_triton_only() -> None:
    assert Settings(backend="triton").backend is BackendKind.TRITON
    with pytest.raises(ValidationError, match="onnxruntime or triton"):
        Settings(backend="torch")


def test_every_backend_the_engine_makes_reports_its_engine_calls(tmp_path: Path) -> None:
    engine = build_engine(Settings(data_dir=tmp_path))
    spec = engine.registry.get("lesion-demo")
    backend = engine.backends(spec)
    try:
        backend.infer({spec.inputs[0].name: np.zeros((3, *spec.inputs[0].shape[1:]), np.float32)})
    finally:
        backend.close()
    (sizes,) = engine.metrics.batch_size.collect()
    counts = {s.labels["model"]: s.value for s in sizes.samples if s.name.endswith("_sum")}
    assert counts == {"lesion-demo": 3.0}


def test_an_unreachable_triton_model_is_reported_and_not_served(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, backend="triton", triton_url="127.0.0.1:9", triton_timeout_s=1)
    engine = build_engine(settings)
    assert isinstance(engine.backends(engine.registry.get("pima-diabetes-lr")), TritonBackend)
    engine.load_models()
    assert "pima-diabetes-lr:1.0.0" in engine.load_errors and "pima-diabetes-lr" not in engine.served
    with pytest.raises(BackendUnavailableError) as down:
        engine.risk_method("pima-diabetes-lr")
    assert down.value.code == "backend_unreachable"
    with pytest.raises(ModelNotFoundError, match="available: .*ckd_epi_2021"):
        engine.risk_method("qrisk3")
    assert engine.risk_method("pce")[1].key.startswith("pce@")
    engine.close()
