"""The reader thread stays within its bound, passes errors on, and always stops."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from cds.errors import InvalidInputError
from cds.pipelines.pathology.stream import BoundedPrefetch


def wait_until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll ``condition()`` (a synchronisation aid, not a timing assertion)."""
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.001)


class Tracked:
    """An item that counts how many of its kind are alive (CPython frees it when its last reference goes)."""

    lock = threading.Lock()
    alive = 0
    most = 0

    def __init__(self, index: int) -> None:
        self.index = index
        self.pixels = np.full(1000, index)
        with Tracked.lock:
            Tracked.alive += 1
            Tracked.most = max(Tracked.most, Tracked.alive)
        weakref.finalize(self, Tracked._gone)

    @staticmethod
    def _gone() -> None:
        with Tracked.lock:
            Tracked.alive -= 1


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_never_more_than_depth_items_alive_and_the_reader_runs_ahead(depth: int) -> None:
    Tracked.alive = Tracked.most = 0
    prefetch = BoundedPrefetch((Tracked(i) for i in range(30)), depth=depth)
    seen: list[int] = []
    for item in prefetch:  # not enumerate(): it keeps the previous item in its reused result tuple
        position = len(seen)
        ahead = min(30, position + depth)
        wait_until(lambda ahead=ahead: prefetch.produced >= ahead)  # let the reader fill its slots
        assert prefetch.produced <= position + depth
        seen.append(item.index)
        del item  # as the pipeline does: the batch is dropped before the next is asked for
    assert seen == list(range(30))
    assert Tracked.most == depth  # the reader ran ahead, up to the bound and never past it
    assert prefetch.peak == depth and Tracked.alive == 0


def test_an_error_in_the_reader_reaches_the_consumer_and_the_thread_ends() -> None:
    def source() -> Iterator[int]:
        yield 1
        raise InvalidInputError("segment 3 does not decode", code="tile_decode_failed")

    prefetch = BoundedPrefetch(source(), depth=2, name="failing-reader")
    with pytest.raises(InvalidInputError) as caught:
        list(prefetch)
    assert caught.value.code == "tile_decode_failed"
    assert "failing-reader" not in {t.name for t in threading.enumerate()}


def test_a_consumer_that_stops_early_stops_the_reader() -> None:
    produced = []

    def endless() -> Iterator[int]:
        index = 0
        while True:
            produced.append(index)
            yield index
            index += 1

    with BoundedPrefetch(endless(), depth=3, name="endless-reader") as prefetch:
        for item in prefetch:
            if item == 5:
                break
    assert "endless-reader" not in {t.name for t in threading.enumerate()}
    assert len(produced) <= 6 + 3


def test_depth_must_be_positive() -> None:
    with pytest.raises(InvalidInputError) as caught:
        BoundedPrefetch(iter([]), depth=0)
    assert caught.value.code == "invalid_option"
