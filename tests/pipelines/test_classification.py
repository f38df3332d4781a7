import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.models.spec import ModelSpec
from cds.pipelines.classification import TensorClassificationPipeline, findings_from_probabilities
from cds.results.identity import hash_arrays
from cds.serving.backends import OnnxRuntimeBackend
from training.data.lesions import generate


@pytest.fixture(scope="module")
def pipeline(spec: ModelSpec):  # noqa: ANN201
    with OnnxRuntimeBackend(spec) as backend:
        yield TensorClassificationPipeline(backend)


def test_single_item_and_batch_give_one_result_per_item(pipeline, held_out: np.ndarray) -> None:  # noqa: ANN001
    single = pipeline(held_out[0])
    batch = pipeline(held_out[:4])
    assert len(single) == 1 and len(batch) == 4
    assert single[0].findings == batch[0].findings
    assert single[0].input_sha256 == batch[0].input_sha256 != batch[1].input_sha256
    assert batch[0].model.sha256 == pipeline.backend.spec.artifacts.onnx.sha256
    assert "not for diagnostic use" in batch[0].warnings


def test_model_separates_generated_classes(pipeline) -> None:  # noqa: ANN001
    data = generate(200, seed=777)
    results = pipeline(data.images)
    called = np.array([r.findings[0].positive for r in results])
    accuracy = (called == data.labels.ravel().astype(bool)).mean()
    assert accuracy > 0.75  # the model card reports ~0.86 sensitivity and specificity on its test split


def test_thresholding_is_inclusive_and_per_label(spec: ModelSpec) -> None:
    threshold = spec.thresholds["lesion"]
    at, below = (findings_from_probabilities(spec, np.array([p]))[0] for p in (threshold, threshold - 1e-6))
    assert at.positive and not below.positive


def test_input_hash_covers_dtype_and_shape() -> None:
    a = np.zeros((1, 4), np.float32)
    assert hash_arrays({"x": a}) != hash_arrays({"x": a.reshape(1, 2, 2)})
    assert hash_arrays({"x": a}) != hash_arrays({"x": a.astype(np.float64)})


def test_wrong_dtype_is_refused(pipeline) -> None:  # noqa: ANN001
    with pytest.raises(InvalidInputError, match="float64"):
        pipeline(np.zeros((1, 64, 64), np.float64)[None])
