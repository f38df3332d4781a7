"""The Pima diabetes risk model: scikit-learn vs ONNX Runtime vs Triton parity, and equation-style scoring."""

import numpy as np
import pytest

from cds.errors import InvalidInputError, InvalidSpecError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind, ModelSpec
from cds.pipelines.risk.equation import EquationPipeline
from cds.pipelines.risk.model import ModelRiskEquation
from cds.results.risk import MethodKind, RiskStatus
from cds.serving.backends import OnnxRuntimeBackend, TritonBackend, TritonOptions
from tests.conftest import PIMA
from training.pima_diabetes import build_model, load_split

PATIENT = dict(npreg=2, glu=150, bp=70, skin=30, bmi=35, ped=0.5, age=40)


@pytest.fixture(scope="module")
def pima(registry: ModelRegistry) -> ModelSpec:
    return registry.get(PIMA)


@pytest.fixture(scope="module")
def test_split() -> tuple[np.ndarray, np.ndarray]:
    return load_split("Pima.te")


def test_sklearn_and_onnxruntime_agree(pima: ModelSpec, test_split: tuple[np.ndarray, np.ndarray]) -> None:
    x_train, y_train = load_split("Pima.tr")
    reference = build_model(seed=0).fit(x_train, y_train).predict_proba(test_split[0])
    with OnnxRuntimeBackend(pima) as backend:
        served = backend.infer({"features": test_split[0]})["probabilities"]
    np.testing.assert_allclose(served, reference, atol=1e-5)
    assert len(served) == 332


@pytest.mark.triton
def test_triton_serves_the_same_probabilities(triton_server, pima: ModelSpec, test_split) -> None:  # noqa: ANN001
    with OnnxRuntimeBackend(pima) as local:
        expected = local.infer({"features": test_split[0]})["probabilities"]
    with TritonBackend(pima, TritonOptions(url=triton_server.http_url)) as remote:
        np.testing.assert_allclose(remote.infer({"features": test_split[0]})["probabilities"], expected, atol=1e-6)
        assert remote.metadata().details["server_sha256"] == "verified"


def test_model_scored_like_an_equation(pima: ModelSpec) -> None:
    with OnnxRuntimeBackend(pima) as backend:
        model = ModelRiskEquation(backend)
        result = EquationPipeline(model, model.method())(PATIENT)
        higher = EquationPipeline(model, model.method())(PATIENT | {"glu": 190})
    assert result.method.kind is MethodKind.MODEL and result.method.backend is BackendKind.ONNXRUNTIME
    assert result.method.sha256 == pima.artifacts.onnx.sha256
    assert 0 < result.score < higher.score < 1  # glucose raises the predicted risk
    glucose = next(c for c in result.contributions if c.field == "glu")
    assert glucose.reference == pytest.approx(123.97, abs=0.01) and glucose.contribution > 0
    threshold = pima.thresholds["diabetes"]
    assert (result.band.value == "high") == (result.score >= threshold)


def test_model_refuses_impossible_and_does_not_extrapolate(pima: ModelSpec) -> None:
    with OnnxRuntimeBackend(pima) as backend:
        model = ModelRiskEquation(backend)
        pipeline = EquationPipeline(model, model.method())
        with pytest.raises(InvalidInputError, match="glu is impossible \\(900\\)"):
            pipeline(PATIENT | {"glu": 900})
        old = pipeline(PATIENT | {"age": 70})
    assert old.status is RiskStatus.OUT_OF_RANGE and old.out_of_range_fields == ("age",) and old.score is None


def test_non_risk_model_is_refused(spec: ModelSpec) -> None:
    with OnnxRuntimeBackend(spec) as backend, pytest.raises(InvalidSpecError, match="not a tabular risk model"):
        ModelRiskEquation(backend)
