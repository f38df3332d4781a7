"""Micro-batching: many concurrent small requests become few batched backend calls (the benchmark's batcher ratio).

It is not in the product's serving path: measured on the 2-core CPU this project runs on, batching bought latency,
not throughput (``python -m benchmarks run``: 0.78x-1.52x), and a deployment that wants batching on a GPU gets it
from Triton's dynamic batcher (``cds triton export-repo``, tuned from ``benchmarks.triton_tuning``).

Callers ``await batcher.infer(inputs)``. A worker gathers queued requests until ``max_batch_size`` items are
waiting or ``max_delay_s`` has passed since the first, concatenates them along the batch axis, runs one backend
call in a thread, and hands each caller its slice. Guarantees:

- Every request is checked against the model's input contract before it is queued, so a malformed request
  fails alone and never joins a batch.
- The queue is bounded: when ``max_queue_size`` requests are waiting, the next is refused at once with
  :class:`~cds.errors.OverloadedError` (no unbounded memory, no hang).
- If a batched call fails, each request of that batch is retried on its own, so only the request that causes
  the failure fails; the other batches are never affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from cds.errors import BackendUnavailableError, InvalidInputError, OverloadedError
from cds.models.backend import Backend
from cds.models.tensors import batch_size, check_tensors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatcherOptions:
    """Batching policy.

    Attributes:
        max_batch_size: Most items in one backend call, capped by the model's own ``max_batch_size`` (a request
            larger than this runs alone, and the backend splits it).
        max_delay_s: Longest time the first request of a batch waits for company.
        max_queue_size: Most requests waiting; beyond it requests are refused.
    """

    max_batch_size: int = 32
    max_delay_s: float = 0.005
    max_queue_size: int = 1024

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue_size < 1 or self.max_delay_s < 0:
            raise InvalidInputError(
                f"batcher needs max_batch_size >= 1, max_queue_size >= 1, max_delay_s >= 0; got {self}",
                code="invalid_batcher_options",
            )


@dataclass
class BatcherStats:
    """Counters since start: requests taken, refused and failed, backend calls, items run, largest batch."""

    requests: int = 0
    refused: int = 0
    failed: int = 0
    backend_calls: int = 0
    items: int = 0
    largest_batch: int = 0
    batch_sizes: dict[int, int] = field(default_factory=dict)  # batch size -> number of calls (bounded)


@dataclass
class _Pending:
    inputs: Mapping[str, np.ndarray]
    items: int
    signature: tuple[tuple[str, str, tuple[int, ...]], ...]
    future: asyncio.Future[dict[str, np.ndarray]]


class MicroBatcher:
    """Gathers concurrent requests to one backend into batched calls.

    Use as ``async with MicroBatcher(backend, options) as batcher: await batcher.infer(x)``.

    Args:
        backend: A loaded backend (any engine).
        options: Batching policy.
    """

    def __init__(self, backend: Backend, options: BatcherOptions | None = None) -> None:
        self.backend = backend
        self.options = options or BatcherOptions()
        self._max_items = min(self.options.max_batch_size, backend.spec.max_batch_size)
        self.stats = BatcherStats()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._carry: _Pending | None = None

    async def __aenter__(self) -> MicroBatcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch."""
        return self._queue.qsize() if self._queue is not None else 0

    def start(self) -> None:
        """Start the worker on the running event loop."""
        if self._worker is None:
            self._queue = asyncio.Queue(maxsize=self.options.max_queue_size)
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="cds-micro-batcher")

    async def close(self) -> None:
        """Stop the worker; requests still waiting fail with :class:`BackendUnavailableError`."""
        if self._worker is None:
            return
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None
        leftovers = [self._carry] if self._carry is not None else []
        self._carry = None
        while self._queue is not None and not self._queue.empty():
            leftovers.append(self._queue.get_nowait())
        for pending in leftovers:
            if not pending.future.done():
                pending.future.set_exception(BackendUnavailableError("micro-batcher closed before the request ran"))

    async def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Queue one request (one or more items) and wait for its outputs.

        Raises:
            InvalidInputError: The request breaks the input contract (it is never queued).
            OverloadedError: The queue is full.
            BackendUnavailableError: The batcher is not running.
            InferenceError: The backend failed on this request.
        """
        if self._worker is None or self._queue is None:
            raise BackendUnavailableError("micro-batcher is not started")
        check_tensors(self.backend.spec.inputs, inputs, role="input")
        signature = tuple((n, str(a.dtype), a.shape[1:]) for n, a in sorted(inputs.items()))
        future: asyncio.Future[dict[str, np.ndarray]] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Pending(inputs, batch_size(inputs), signature, future))
        except asyncio.QueueFull:
            self.stats.refused += 1
            raise OverloadedError(
                f"{self.options.max_queue_size} requests already waiting for {self.backend.spec.key}; retry later"
            ) from None
        self.stats.requests += 1
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            batch = await self._gather()
            await self._execute(batch)

    async def _gather(self) -> list[_Pending]:
        """Collect requests of one tensor signature, up to the size or delay limit."""
        assert self._queue is not None
        first = self._carry or await self._queue.get()
        self._carry = None
        batch, items = [first], first.items
        deadline = time.monotonic() + self.options.max_delay_s
        while items < self._max_items:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    nxt = self._queue.get_nowait()
                else:
                    nxt = await asyncio.wait_for(self._queue.get(), remaining)
            except (asyncio.QueueEmpty, TimeoutError):
                break
            if nxt.signature != first.signature or items + nxt.items > self._max_items:
                self._carry = nxt  # starts the next batch
                break
            batch.append(nxt)
            items += nxt.items
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.cancelled()]
        if not live:
            return
        try:
            outputs = await self._call([p.inputs for p in live])
        except Exception as exc:  # noqa: BLE001 - isolate the failing request below
            if len(live) == 1:
                self._fail(live[0], exc)
                return
            log.warning("batch of %d requests failed (%s); retrying each alone", len(live), type(exc).__name__)
            for pending in live:
                try:
                    self._deliver(pending, await self._call([pending.inputs]))
                except Exception as single_exc:  # noqa: BLE001 - delivered to that caller only
                    self._fail(pending, single_exc)
            return
        start = 0
        for pending in live:
            self._deliver(pending, {name: out[start : start + pending.items] for name, out in outputs.items()})
            start += pending.items

    async def _call(self, requests: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        merged = (
            dict(requests[0])
            if len(requests) == 1
            else {name: np.concatenate([r[name] for r in requests]) for name in requests[0]}
        )
        items = batch_size(merged)
        self.stats.backend_calls += 1
        self.stats.items += items
        self.stats.largest_batch = max(self.stats.largest_batch, items)
        self.stats.batch_sizes[items] = self.stats.batch_sizes.get(items, 0) + 1
        return await asyncio.to_thread(self.backend.infer, merged)

    @staticmethod
    def _deliver(pending: _Pending, outputs: dict[str, np.ndarray]) -> None:
        if not pending.future.done():
            pending.future.set_result(outputs)

    def _fail(self, pending: _Pending, exc: BaseException) -> None:
        self.stats.failed += 1
        if not pending.future.done():
            pending.future.set_exception(exc)
