import asyncio
import threading

import numpy as np
import pytest

from benchmarks.harness.batcher import BatcherOptions, MicroBatcher
from cds.errors import BackendUnavailableError, InferenceError, InvalidInputError, OverloadedError
from tests.conftest import POISON, EchoBackend


def request(value: float, items: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.full((items, 4), value, np.float32)}


async def test_concurrent_callers_share_batched_calls_and_get_their_own_slice(echo: EchoBackend) -> None:
    callers = 32
    async with MicroBatcher(echo, BatcherOptions(max_batch_size=16, max_delay_s=0.05)) as batcher:
        results = await asyncio.gather(*(batcher.infer(request(i, items=1 + i % 3)) for i in range(callers)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], np.full((1 + i % 3, 4), 2.0 * i, np.float32))
    assert len(echo.calls) < callers
    assert sum(echo.calls) == sum(1 + i % 3 for i in range(callers))
    assert max(echo.calls) <= 16
    assert batcher.stats.backend_calls == len(echo.calls) and batcher.stats.requests == callers


async def test_full_queue_refuses_at_once() -> None:
    gate = threading.Event()
    backend = EchoBackend(gate=gate)
    backend.load()
    options = BatcherOptions(max_batch_size=1, max_delay_s=0.0, max_queue_size=2)
    async with MicroBatcher(backend, options) as batcher:
        running = asyncio.ensure_future(batcher.infer(request(1)))
        await asyncio.sleep(0.05)  # the worker takes it and blocks on the gate
        queued = [asyncio.ensure_future(batcher.infer(request(v))) for v in (2, 3)]
        await asyncio.sleep(0.01)
        assert batcher.queue_depth == 2
        with pytest.raises(OverloadedError) as err:
            await asyncio.wait_for(batcher.infer(request(4)), timeout=0.5)  # refused, not queued, not hung
        assert err.value.code == "overloaded" and batcher.stats.refused == 1
        gate.set()
        done = await asyncio.gather(running, *queued)
    assert [float(r["y"][0, 0]) for r in done] == [2.0, 4.0, 6.0]


async def test_malformed_request_fails_alone_and_never_joins_a_batch(echo: EchoBackend) -> None:
    async with MicroBatcher(echo, BatcherOptions(max_batch_size=8, max_delay_s=0.05)) as batcher:
        bad = {"x": np.zeros((1, 5), np.float32)}
        outcomes = await asyncio.gather(
            batcher.infer(request(1)), batcher.infer(bad), batcher.infer(request(2)), return_exceptions=True
        )
    assert isinstance(outcomes[1], InvalidInputError) and "'x' has shape [1, 5]" in str(outcomes[1])
    assert float(outcomes[0]["y"][0, 0]) == 2.0 and float(outcomes[2]["y"][0, 0]) == 4.0
    assert sum(echo.calls) == 2


async def test_request_that_breaks_the_engine_fails_only_itself(echo: EchoBackend) -> None:
    async with MicroBatcher(echo, BatcherOptions(max_batch_size=8, max_delay_s=0.05)) as batcher:
        outcomes = await asyncio.gather(
            *(batcher.infer(request(POISON if i == 2 else i)) for i in range(5)), return_exceptions=True
        )
    assert isinstance(outcomes[2], InferenceError) and "poisoned" in str(outcomes[2])
    for i in (0, 1, 3, 4):
        assert float(outcomes[i]["y"][0, 0]) == 2.0 * i
    assert batcher.stats.failed == 1


async def test_requests_with_different_shapes_are_never_concatenated() -> None:
    from cds.models.spec import ModelSpec
    from tests.conftest import ECHO_SPEC

    class Flexible(EchoBackend):
        def __init__(self) -> None:
            super().__init__()
            spec = dict(ECHO_SPEC)
            spec["inputs"] = [{"name": "x", "dtype": "float32", "shape": [-1, -1]}]
            spec["outputs"] = [{"name": "y", "dtype": "float32", "shape": [-1, -1]}]
            self._spec = ModelSpec.model_validate(spec)

    backend = Flexible()
    backend.load()
    async with MicroBatcher(backend, BatcherOptions(max_batch_size=8, max_delay_s=0.05)) as batcher:
        small, wide = await asyncio.gather(
            batcher.infer({"x": np.ones((1, 4), np.float32)}), batcher.infer({"x": np.ones((1, 6), np.float32)})
        )
    assert small["y"].shape == (1, 4) and wide["y"].shape == (1, 6)
    assert backend.calls == [1, 1]


async def test_closing_fails_waiting_requests_and_refuses_new_ones() -> None:
    gate = threading.Event()
    backend = EchoBackend(gate=gate)
    backend.load()
    batcher = MicroBatcher(backend, BatcherOptions(max_batch_size=1, max_delay_s=0.0))
    batcher.start()
    first = asyncio.ensure_future(batcher.infer(request(1)))
    await asyncio.sleep(0.05)
    waiting = asyncio.ensure_future(batcher.infer(request(2)))
    await asyncio.sleep(0.01)
    await batcher.close()
    gate.set()
    with pytest.raises(BackendUnavailableError):
        await waiting
    with pytest.raises(BackendUnavailableError, match="not started"):
        await batcher.infer(request(3))
    first.cancel()


def test_invalid_options_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        BatcherOptions(max_batch_size=0)


async def test_batches_never_exceed_the_models_max_batch_size() -> None:
    backend = EchoBackend()
    backend._spec = backend.spec.model_copy(update={"max_batch_size": 4})
    backend.load()
    async with MicroBatcher(backend, BatcherOptions(max_batch_size=64, max_delay_s=0.05)) as batcher:
        results = await asyncio.gather(*(batcher.infer(request(i)) for i in range(10)), batcher.infer(request(7, 9)))
    assert max(backend.calls) <= 4 and sum(backend.calls) == 19
    np.testing.assert_array_equal(results[-1]["y"], np.full((9, 4), 14.0, np.float32))


async def test_real_onnxruntime_model_behind_the_batcher(spec, held_out: np.ndarray) -> None:  # noqa: ANN001
    from cds.serving.backends import OnnxRuntimeBackend

    with OnnxRuntimeBackend(spec) as backend:
        expected = backend.infer({"image": held_out})["probabilities"]
        async with MicroBatcher(backend, BatcherOptions(max_batch_size=16, max_delay_s=0.02)) as batcher:
            results = await asyncio.gather(*(batcher.infer({"image": item[None]}) for item in held_out))
    np.testing.assert_allclose(np.concatenate([r["probabilities"] for r in results]), expected, atol=1e-6)
    assert batcher.stats.backend_calls < len(held_out)
