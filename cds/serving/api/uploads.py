"""Request bodies streamed to disk, never whole in memory; a refused upload leaves nothing behind.

The body cap is the middleware's; an upload that is cut off, empty or cannot be queued is removed again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fastapi import Request

from cds.errors import InvalidInputError


@contextmanager
def discarded_on_failure(*paths: Path) -> Iterator[None]:
    """Remove ``paths`` (files or folders) if the block raises, whatever it raises; keep them if it succeeds."""
    try:
        yield
    except BaseException:
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        raise


async def save_upload(request: Request, target: Path, *, what: str) -> int:
    """Stream the request body into ``target``; return its size.

    Raises:
        InvalidInputError: The body is empty (``empty_input``; nothing is left on disk).
    """
    size = 0
    with target.open("wb") as sink:
        async for chunk in request.stream():
            size += len(chunk)
            sink.write(chunk)
    if size == 0:
        target.unlink()
        raise InvalidInputError(f"the {what} is empty", code="empty_input")
    return size
