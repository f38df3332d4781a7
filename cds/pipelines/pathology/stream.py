"""Decoding overlapped with inference: a reader thread that stays at most ``depth`` batches ahead.

Reading a batch of patches (decompressing TIFF tiles, resizing, stain normalisation) is CPU work that numpy and the
codecs do largely outside the GIL, and so is the inference engine's: running them in two threads keeps both busy.
The reader must never run away from a slow engine, though, or a 100,000 × 100,000 slide would pile up in memory.
So :class:`BoundedPrefetch` gives the reader ``depth`` slots: it takes one *before* producing a batch and the
consumer hands it back when it asks for the next one. At any moment at most ``depth`` batches exist (being built,
queued or being consumed), whatever the slide's size, provided the consumer drops its reference to a batch before
asking for the next (``del batch`` at the end of the loop body); :attr:`BoundedPrefetch.peak` records the most
slots taken at once.

An error in the reader is raised in the consumer; a consumer that stops early (an error in inference, a ``break``)
stops the reader and joins it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

from cds.errors import InvalidInputError

T = TypeVar("T")
_POLL_S = 0.05


class BoundedPrefetch(Generic[T]):
    """Iterate ``source`` in a background thread, holding at most ``depth`` items at once.

    Use as a context manager (or exhaust the iterator) so the thread is always joined::

        with BoundedPrefetch(read_batches(), depth=2) as batches:
            for batch in batches:
                infer(batch)

    Args:
        source: The items; it is advanced only in the reader thread.
        depth: Most items alive at once (1 = no overlap between producing one and consuming the previous).
        name: Thread name, for debugging.

    Attributes:
        peak: The most items that were alive at the same time.
        produced: Items the reader has produced so far.
    """

    def __init__(self, source: Iterable[T], *, depth: int = 2, name: str = "cds-prefetch") -> None:
        if depth < 1:
            raise InvalidInputError(f"prefetch depth {depth}; allowed: 1 or more", code="invalid_option")
        self.depth = depth
        self.peak = 0
        self.produced = 0
        self._source = iter(source)
        self._slots = threading.Semaphore(depth)
        self._queue: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._live = 0
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._started = False

    def _take_slot(self) -> bool:
        while not self._slots.acquire(timeout=_POLL_S):
            if self._stop.is_set():
                return False
        if self._stop.is_set():
            self._slots.release()
            return False
        with self._lock:
            self._live += 1
            self.peak = max(self.peak, self._live)
        return True

    def _give_slot(self) -> None:
        with self._lock:
            self._live -= 1
        self._slots.release()

    def _produce(self) -> None:
        try:
            while self._take_slot():
                try:
                    item = next(self._source)
                except StopIteration:
                    self._give_slot()
                    break
                self.produced += 1
                self._queue.put(("item", item))
                del item  # the queue and then the consumer hold it; the slot accounts for it
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._give_slot()
            self._queue.put(("error", exc))
            return
        self._queue.put(("end", None))

    def __iter__(self) -> Iterator[T]:
        if not self._started:
            self._started = True
            self._thread.start()
        held = False
        try:
            while True:
                kind, value = self._queue.get()
                if kind == "end":
                    return
                if kind == "error":
                    assert isinstance(value, BaseException)
                    raise value
                held = True
                yield value  # type: ignore[misc]
                value = None  # no reference of ours outlives the slot
                held = False
                self._give_slot()
        finally:
            if held:
                self._give_slot()
            self.close()

    def close(self) -> None:
        """Stop the reader, drop what it queued and join it (idempotent)."""
        self._stop.set()
        if self._started:
            self._thread.join()
        while True:
            try:
                kind, _ = self._queue.get_nowait()
            except queue.Empty:
                break
            if kind == "item":
                self._give_slot()

    def __enter__(self) -> BoundedPrefetch[T]:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
