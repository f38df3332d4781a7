"""The verdicts on a read as an HTTP entity tag, so that a stale tab cannot overwrite what it never saw.

A view loads a read's verdicts (``GET .../feedback``, ``GET .../reviews``) with an ``ETag``, the verdicts' version
(``"v<n>"``: the newest verdict's id); it sends the tag back as ``If-Match`` when it saves a verdict or signs. A save
from a view of an older version is refused with 412 ``stale_verdicts`` (:func:`cds.store.feedback.hold_version`) and
the view says so, instead of one tab or reader silently deciding over another's verdicts. Without ``If-Match`` (an
API client that does not care) nothing is checked; ``If-Match: *`` asks for nothing either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

from fastapi import Request

from cds.errors import PreconditionFailedError

TAG = re.compile(r'\s*(?:W/)?"v(\d{1,18})"\s*')


class Versioned(Protocol):
    """A verdict row: its id is the version it makes."""

    id: int


def etag(version: int) -> str:
    """The entity tag of verdicts at ``version``."""
    return f'"v{version}"'


def version_of(rows: Iterable[Versioned]) -> int:
    """The version the verdicts ``rows`` make (0: none yet)."""
    return max((row.id for row in rows), default=0)


def if_match(request: Request) -> int | None:
    """The version the caller saw, from ``If-Match``; ``None`` when they name none (or ``*``).

    Raises:
        PreconditionFailedError: ``invalid_if_match``: not a tag this service gives.
    """
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    match = TAG.fullmatch(header)
    if match is None:
        raise PreconditionFailedError('If-Match takes the ETag of the verdicts you loaded, e.g. "v12"',
                                      code="invalid_if_match")  # fmt: skip
    return int(match.group(1))


def hold(request: Request, now: int) -> None:
    """Refuse a signature made from a view of older verdicts than version ``now`` (the read's verdicts now).

    Raises:
        PreconditionFailedError: ``stale_verdicts`` (412), ``invalid_if_match``.
    """
    expected = if_match(request)
    if expected is not None and expected != now:
        raise PreconditionFailedError("the verdicts on this read changed since you loaded them (another tab or "
                                      f"reader saved version {now}, you had {expected}); reload before signing",
                                      code="stale_verdicts")  # fmt: skip
