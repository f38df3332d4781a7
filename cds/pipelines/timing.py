"""Wall time per pipeline stage, in milliseconds: the one way pipelines time their stages.

``with timer.stage("decode"): ...`` adds the block's wall time to ``decode_ms``; :meth:`StageTimer.add` adds time
measured elsewhere (e.g. in a reader thread). A stage run twice accumulates. Results carry :attr:`StageTimer.ms`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageTimer:
    """Milliseconds per stage, named ``<stage>_ms``."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}
        self._start = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` block as stage ``name`` (also when it raises)."""
        tic = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - tic)

    def add(self, name: str, seconds: float) -> None:
        """Add ``seconds`` to stage ``name``."""
        key = f"{name}_ms"
        self.ms[key] = self.ms.get(key, 0.0) + seconds * 1000.0

    def total_ms(self) -> float:
        """Milliseconds since the timer was made."""
        return (time.perf_counter() - self._start) * 1000.0
