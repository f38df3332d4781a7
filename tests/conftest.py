"""Shared fixtures: the repo's real registry and model, generated held-out data, and a fake backend."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.serving.backends.base import BaseBackend
from cds.serving.backends.devices import cuda_device_count
from cds.settings import REPO_ROOT
from training.data.lesions import generate

# The hundreds of in-process apps the tests start would each start (and import decoders into) their own decoder
# processes at start-up; they start them on first use instead. tests/pipelines/test_isolation.py tests prestart.
os.environ.setdefault("CDS_DECODE_PRESTART", "0")

REGISTRY = REPO_ROOT / "registry"
DEMO = "lesion-demo"
PIMA = "pima-diabetes-lr"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if cuda_device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def registry() -> ModelRegistry:
    return ModelRegistry.from_directory(REGISTRY)


@pytest.fixture(scope="session")
def spec(registry: ModelRegistry) -> ModelSpec:
    return registry.get(DEMO)


@pytest.fixture(scope="session")
def held_out() -> np.ndarray:
    """Patches from a seed that no training split used."""
    return generate(48, seed=4242).images


@pytest.fixture
def registry_copy(tmp_path: Path) -> Path:
    """A writable copy of the real registry, for tampering tests."""
    target = tmp_path / "registry"
    shutil.copytree(REGISTRY, target)
    return target


ECHO_SPEC = {
    "name": "echo",
    "version": "1.0.0",
    "task": "risk",
    "modality": "tabular",
    "description": "Doubles its input.",
    "intended_use": "Tests only.",
    "inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 4], "value_range": [-1000.0, 1000.0]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 4]}],
    "artifacts": {"onnx": {"path": "/nonexistent/echo.onnx", "sha256": "0" * 64}},
    "model_card": "/nonexistent/echo.md",
}
POISON = 666.0


class EchoBackend(BaseBackend):
    """Fake engine: ``y = 2 x``; fails a whole call if any element equals ``POISON``; can be held on a gate."""

    kind = BackendKind.ONNXRUNTIME

    def __init__(self, gate: threading.Event | None = None) -> None:
        super().__init__(ModelSpec.model_validate(ECHO_SPEC))
        self.calls: list[int] = []
        self.gate = gate

    def _load(self) -> str:
        return "0" * 64

    def _run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.gate is not None:
            self.gate.wait(timeout=10)
        x = inputs["x"]
        self.calls.append(len(x))
        if (x == POISON).any():
            raise RuntimeError("poisoned batch")
        return {"y": x * 2}

    def _close(self) -> None:
        pass

    def _device(self) -> str:
        return "cpu"

    def _precision(self) -> str:
        return "fp32"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server (127.0.0.1:5432, trust auth), dropped afterwards."""
    import uuid

    import psycopg

    admin = "postgresql://postgres@127.0.0.1:5432/test"
    name = f"cds_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def echo() -> EchoBackend:
    backend = EchoBackend()
    backend.load()
    return backend


@pytest.fixture(scope="session")
def triton_server(spec: ModelSpec, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A real Triton Inference Server (PyTriton's tritonserver, CPU) serving the exported demo model.

    Never skipped: if the server cannot start, the tests that use it fail with the server's log.
    """
    from cds.serving.triton.launcher import TritonServer
    from cds.serving.triton.repository import TritonRepositoryOptions, export_model_repository

    repository = tmp_path_factory.mktemp("triton-repo")
    export_model_repository(spec, repository, TritonRepositoryOptions(preferred_batch_sizes=(8,)))
    export_model_repository(ModelRegistry.from_directory(REGISTRY).get(PIMA), repository)
    with TritonServer(repository) as server:
        yield server
