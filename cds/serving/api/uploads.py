"""Request bodies streamed to disk: uploads never sit whole in memory (the body cap is the middleware's)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from cds.errors import InvalidInputError


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
