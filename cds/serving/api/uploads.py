"""Request bodies streamed to disk, never whole in memory; a refused upload leaves nothing behind.

The body cap is the middleware's; an upload that is cut off, empty or cannot be queued is removed again. An upload
refused for its input (too large, wrong type, unreadable) is audited as ``upload.refused`` with its reason code
(:func:`audit_refused_upload`, called by the error handlers and the body-size check).
A ``multipart/related`` body is split while it arrives (python-multipart's streaming parser), each part written to
its own file, so a body of any size costs one chunk of memory; a part over the per-part cap is dropped as it
streams and reported, not kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from cds.errors import InvalidInputError, NotAuthenticatedError, PayloadTooLargeError, UnsupportedMediaTypeError
from cds.serving.api.auth import verify_api_key
from cds.serving.api.state import AppState
from cds.store.audit import Actor
from cds.store.audit_policy import record_refused_upload


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


@dataclass(frozen=True)
class SavedPart:
    """One part of a multipart body: its file, or ``None`` when it was over the per-part cap (nothing kept)."""

    path: Path | None
    size: int


class _PartWriter:
    """python-multipart callbacks that write each part of ``part_type`` to its own file in ``folder``."""

    def __init__(self, folder: Path, part_type: str, max_part_bytes: int) -> None:
        self.folder, self.part_type, self.max_part_bytes = folder, part_type, max_part_bytes
        self.parts: list[SavedPart] = []
        self.ended = False
        self._field, self._value, self._headers = b"", b"", dict[bytes, bytes]()
        self._sink: IO[bytes] | None = None
        self._path: Path | None = None
        self._size = 0

    def callbacks(self) -> dict[str, object]:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._part_end, "on_end": self._end}  # fmt: skip

    def _begin(self) -> None:
        self._headers, self._size = {}, 0

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field, self._value = b"", b""

    def _headers_finished(self) -> None:
        declared = self._headers.get(b"content-type", self.part_type.encode())
        media = parse_options_header(declared)[0].decode("latin-1").lower()
        if media != self.part_type:
            raise UnsupportedMediaTypeError(f"part {len(self.parts) + 1} is {media[:100]}, expected {self.part_type}")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._path = self.folder / f"part-{len(self.parts) + 1}"
        self._sink = self._path.open("wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        self._size += end - start
        if self._sink is None:
            return  # already over the cap: dropped
        if self._size > self.max_part_bytes:
            self._drop()
            return
        self._sink.write(memoryview(data)[start:end])

    def _drop(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        if self._path is not None:
            self._path.unlink(missing_ok=True)
            self._path = None

    def _part_end(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        self.parts.append(SavedPart(self._path, self._size))
        self._path = None

    def _end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


async def save_parts(request: Request, folder: Path, *, part_type: str, max_part_bytes: int) -> list[SavedPart]:
    """Stream a ``multipart/related`` body whose parts are ``part_type`` into one file per part under ``folder``.

    The caller removes ``folder`` when this raises (see :func:`discarded_on_failure`).

    Raises:
        UnsupportedMediaTypeError: The body is not ``multipart/related; type=<part_type>``, or a part is another type.
        InvalidInputError: ``invalid_multipart`` (no boundary, malformed, or no closing boundary) or ``empty_input``.
    """
    media, options = parse_options_header(request.headers.get("content-type", ""))
    declared_type = options.get(b"type", part_type.encode()).decode("latin-1").lower()
    if media.decode("latin-1").lower() != "multipart/related" or declared_type != part_type:
        raise UnsupportedMediaTypeError(f'send multipart/related; type="{part_type}"')
    boundary = options.get(b"boundary", b"")
    if not boundary:
        raise InvalidInputError("the multipart Content-Type has no boundary", code="invalid_multipart")
    writer = _PartWriter(folder, part_type, max_part_bytes)
    parser = MultipartParser(boundary, writer.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInputError(f"the multipart body is malformed ({exc})", code="invalid_multipart") from exc
    finally:
        writer.close()
    if not writer.ended:
        raise InvalidInputError("the multipart body has no closing boundary (cut off, or the boundary is wrong)",
                                code="invalid_multipart")
    if not writer.parts:
        raise InvalidInputError("the request holds no part", code="empty_input")
    return writer.parts


# Upload routes (POST, path template) -> what they take, for the audit of refused uploads.
UPLOADS = {"/dicomweb/studies": "dicom", "/v1/pathology/jobs": "slide", "/v1/ecg/jobs": "ecg",
           "/v1/risk/{score}/jobs": "cohort"}  # fmt: skip
REFUSALS = (InvalidInputError, PayloadTooLargeError, UnsupportedMediaTypeError)  # the input refused, not the caller


def upload_kind(method: str, path: str) -> str | None:
    """What an upload route takes (``dicom``, ``slide``, ``ecg``, ``cohort``); None for any other request."""
    if method != "POST":
        return None
    if path in UPLOADS:
        return UPLOADS[path]
    return "cohort" if path.startswith("/v1/risk/") and path.endswith("/jobs") else None


def _caller(state: AppState, headers: Mapping[str, str]) -> Actor:
    """Who sent a request, from its credentials, without auditing a failure (``anonymous`` when unknown)."""
    header, api_key = headers.get("authorization", ""), headers.get("x-api-key")
    try:
        if header.lower().startswith("bearer "):
            return state.authenticator.verify_token(header[7:].strip()).actor
        if api_key:
            with state.database.session() as session:
                return replace(verify_api_key(session, api_key), site=state.settings.site).actor
    except NotAuthenticatedError:
        pass
    return Actor("anonymous", "")


def audit_refused_upload(state: AppState, method: str, path: str, headers: Mapping[str, str], reason: str,
                         actor: Actor | None = None, **detail: Any) -> None:  # fmt: skip
    """Audit a refused upload request with its reason code (nothing when the request is not an upload).

    ``actor``: the authenticated caller when the route knew them; otherwise read from the request's credentials
    (the body-size check refuses before authentication).
    """
    upload = upload_kind(method, path)
    if upload is None:
        return
    who = actor or _caller(state, headers)
    with state.database.session() as session:
        record_refused_upload(session, who, upload, reason, f"{method} {path}", **detail)


def too_large_upload(state: AppState, method: str, path: str, headers: Mapping[str, str]) -> None:
    """The body-size check's refusal of an upload (``payload_too_large``), audited."""
    audit_refused_upload(state, method, path, headers, "payload_too_large")
