import numpy as np
import pytest

from cds.errors import BackendUnavailableError, InvalidInputError, InvalidSpecError
from cds.models.spec import BackendKind, ModelSpec
from cds.serving.backends import OnnxRuntimeBackend, OnnxRuntimeOptions, create_backend
from cds.serving.backends.onnxruntime import CPU, CUDA, TENSORRT, Precision, select_providers


def test_runs_on_cpu_and_reports_identity(spec: ModelSpec, held_out: np.ndarray) -> None:
    with OnnxRuntimeBackend(spec, OnnxRuntimeOptions(intra_op_threads=1)) as backend:
        out = backend.infer({"image": held_out[:5]})
        meta = backend.metadata()
    assert out["probabilities"].shape == (5, 1)
    assert ((out["probabilities"] >= 0) & (out["probabilities"] <= 1)).all()
    assert meta.model.sha256 == spec.artifacts.onnx.sha256
    assert meta.model.backend is BackendKind.ONNXRUNTIME
    assert meta.device == "cpu" and meta.details["providers"] == CPU


def test_gpu_providers_are_skipped_without_a_gpu() -> None:
    available = [TENSORRT, CUDA, CPU]
    assert select_providers((TENSORRT, CUDA, CPU), available, gpus=0) == [CPU]
    assert select_providers((CUDA, CPU), available, gpus=1) == [CUDA, CPU]


def test_unknown_or_unusable_providers_are_refused() -> None:
    with pytest.raises(BackendUnavailableError, match="unknown ONNX Runtime providers") as err:
        select_providers(("CUDAExecutonProvider",), [CPU], gpus=0)
    assert err.value.code == "unknown_provider"
    with pytest.raises(BackendUnavailableError) as err:
        select_providers((CUDA,), [CUDA, CPU], gpus=0)
    assert err.value.code == "no_provider"


def test_io_binding_path_gives_the_same_outputs(spec: ModelSpec, held_out: np.ndarray) -> None:
    with OnnxRuntimeBackend(spec, OnnxRuntimeOptions(io_binding=False)) as plain:
        expected = plain.infer({"image": held_out})["probabilities"]
    with OnnxRuntimeBackend(spec, OnnxRuntimeOptions(io_binding=True)) as bound:
        actual = bound.infer({"image": held_out})["probabilities"]
        assert bound.metadata().details["io_binding"] == "true"
    np.testing.assert_array_equal(actual, expected)


def test_fp16_model_needs_a_gpu_provider(spec: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(spec, OnnxRuntimeOptions(precision=Precision.FP16, providers=(CPU,)))
    with pytest.raises(BackendUnavailableError) as err:
        backend.load()
    assert err.value.code == "fp16_needs_gpu"


def test_wrong_input_is_refused_before_inference(spec: ModelSpec) -> None:
    with OnnxRuntimeBackend(spec) as backend:
        with pytest.raises(InvalidInputError, match="'image' has shape \\[1, 1, 32, 32\\]"):
            backend.infer({"image": np.zeros((1, 1, 32, 32), np.float32)})
        with pytest.raises(InvalidInputError, match="'image' has dtype float64"):
            backend.infer({"image": np.zeros((1, 1, 64, 64), np.float64)})
        assert backend.health().ready  # a refused request leaves the backend serving


def test_closed_backend_refuses_work(spec: ModelSpec) -> None:
    backend = create_backend("onnxruntime", spec)
    backend.load()
    backend.close()
    assert backend.health().reason == "closed"
    with pytest.raises(BackendUnavailableError, match="closed"):
        backend.infer({"image": np.zeros((1, 1, 64, 64), np.float32)})


def test_graph_that_does_not_match_spec_is_refused(spec: ModelSpec) -> None:
    renamed = spec.model_copy(
        update={"inputs": (spec.inputs[0].model_copy(update={"name": "pixels"}),)}
    )
    with pytest.raises(InvalidSpecError) as err:
        OnnxRuntimeBackend(renamed).load()
    assert err.value.code == "spec_graph_mismatch"


def test_factory_rejects_unknown_kind_and_foreign_options(spec: ModelSpec) -> None:
    with pytest.raises(InvalidInputError, match="allowed: onnxruntime, torch, triton"):
        create_backend("tflite", spec)
    from cds.serving.backends import TorchOptions

    with pytest.raises(TypeError, match="OnnxRuntimeOptions"):
        create_backend("onnxruntime", spec, TorchOptions())


def test_batches_above_max_batch_size_run_in_chunks(spec: ModelSpec, held_out: np.ndarray) -> None:
    with OnnxRuntimeBackend(spec) as whole:
        expected = whole.infer({"image": held_out})["probabilities"]
    small = spec.model_copy(update={"max_batch_size": 5})
    with OnnxRuntimeBackend(small) as chunked:
        calls = []
        run = chunked._run
        chunked._run = lambda inputs: calls.append(len(inputs["image"])) or run(inputs)  # type: ignore[method-assign]
        actual = chunked.infer({"image": held_out})["probabilities"]
    assert max(calls) == 5 and sum(calls) == len(held_out)
    np.testing.assert_allclose(actual, expected, atol=1e-6)


def test_tensorrt_gets_an_optimisation_profile_and_fp16_from_the_fp32_model(spec: ModelSpec) -> None:
    backend = OnnxRuntimeBackend(spec, OnnxRuntimeOptions(tensorrt_fp16=True, tensorrt_max_batch=256))
    trt = backend._provider_options(TENSORRT)
    (tensor,) = spec.inputs
    tail = "x".join(str(d) for d in tensor.shape[1:])
    assert trt["trt_fp16_enable"] is True  # engines in fp16 although the fp32 artifact is loaded
    assert trt["trt_profile_min_shapes"] == f"{tensor.name}:1x{tail}"
    assert trt["trt_profile_opt_shapes"] == f"{tensor.name}:32x{tail}"
    assert trt["trt_profile_max_shapes"] == f"{tensor.name}:256x{tail}"
    default = OnnxRuntimeBackend(spec)._provider_options(TENSORRT)
    assert default["trt_fp16_enable"] is False
    assert default["trt_profile_max_shapes"] == f"{tensor.name}:{spec.max_batch_size}x{tail}"
    assert OnnxRuntimeBackend(spec)._provider_options(CUDA) == {"device_id": 0}


def test_spinning_setting_does_not_change_results(spec: ModelSpec, held_out: np.ndarray) -> None:
    outputs = []
    for spinning in (True, False):
        with OnnxRuntimeBackend(spec, OnnxRuntimeOptions(providers=(CPU,), allow_spinning=spinning)) as backend:
            outputs.append(backend.infer({"image": held_out[:4]})["probabilities"])
    np.testing.assert_array_equal(outputs[0], outputs[1])
