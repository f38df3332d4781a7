"""Decoder-pool limits for one test: set, then the defaults put back whatever happens."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cds.pipelines import isolation


@contextmanager
def isolation_limits(**limits: float) -> Iterator[isolation.IsolationLimits]:
    """The process-wide decoder pool under ``IsolationLimits(**limits)`` for the block."""
    chosen = isolation.IsolationLimits(**limits)  # type: ignore[arg-type]
    isolation.configure(chosen)
    try:
        yield chosen
    finally:
        isolation.configure(isolation.IsolationLimits())
