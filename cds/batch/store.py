"""Where a batch run reads its inputs and writes its outputs: a folder or an object-store URI, through fsspec.

Inputs are named by URI, never shipped: each Ray worker opens what it needs, so the nodes share no file system.
Outputs are idempotent: each input's outputs go to fixed names (a re-execution after a node failure overwrites
them with the same content), and the input is marked done only after its outputs are complete. A re-run skips
what is marked done, so a run that crashed resumes without duplicates. The index lists one record per input,
rebuilt from the marks.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec

from cds.batch.cluster import ClusterShape
from cds.errors import InvalidInputError

MARKS = ".cds-batch/done"
INDEX = "index.json"
MAX_INPUT_BYTES = 2 * 2**30  # one input file read into memory at most (a large CT series is many files)


def input_key(uri: str) -> str:
    """The stable name of an input's mark: the sha256 of its URI (first 32 hex digits)."""
    return hashlib.sha256(uri.encode()).hexdigest()[:32]


def list_inputs(source: str, suffixes: tuple[str, ...] = ()) -> list[str]:
    """Every file under ``source`` (a folder, a file, or a URI such as ``s3://bucket/prefix``), as URIs, sorted.

    Hidden files are skipped; with ``suffixes``, only names ending in one of them (case-insensitive).

    Raises:
        InvalidInputError: ``input_missing``: nothing at ``source``.
    """
    filesystem, path = fsspec.core.url_to_fs(source)
    if not filesystem.exists(path):
        raise InvalidInputError(f"{source} does not exist", code="input_missing")
    names = [path] if filesystem.isfile(path) else filesystem.find(path)
    found = []
    for name in sorted(names):
        base = posixpath.basename(name)
        if base.startswith(".") or (suffixes and not base.lower().endswith(suffixes)):
            continue
        found.append(name if _is_local(filesystem) else filesystem.unstrip_protocol(name))
    return found


def local_input(uri: str) -> Path | None:
    """The path of an input on the local file system (read in place); ``None`` for an object store."""
    filesystem, path = fsspec.core.url_to_fs(uri)
    return Path(path) if _is_local(filesystem) else None


def _is_local(filesystem: Any) -> bool:
    protocol = filesystem.protocol if isinstance(filesystem.protocol, str) else filesystem.protocol[0]
    return protocol in ("file", "local")


def read_input(uri: str, max_bytes: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of one input.

    Raises:
        InvalidInputError: ``input_too_large`` above ``max_bytes``; ``input_missing`` when it cannot be read.
    """
    try:
        with fsspec.open(uri, "rb") as handle:
            data: bytes = handle.read(max_bytes + 1)
    except (OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot read {uri}: {type(exc).__name__}", code="input_missing") from None
    if len(data) > max_bytes:
        raise InvalidInputError(f"{uri} is larger than {max_bytes} bytes", code="input_too_large")
    return data


@dataclass(frozen=True)
class BatchOutput:
    """The output root of a batch run (a folder or a URI)."""

    root: str

    def local(self, relative: str = "") -> Path | None:
        """The path of ``relative`` under a root on the local file system (its folder made); else ``None``.

        Local outputs are written in place, without staging; an object store's are staged and put.
        """
        filesystem, path = self._fs()
        if not _is_local(filesystem):
            return None
        target = Path(path) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    def _fs(self) -> tuple[Any, str]:
        filesystem, path = fsspec.core.url_to_fs(self.root)
        return filesystem, str(path)

    def done(self) -> set[str]:
        """The keys of the inputs already done."""
        filesystem, path = self._fs()
        marks = posixpath.join(path, MARKS)
        if not filesystem.exists(marks):
            return set()
        return {posixpath.basename(name)[: -len(".json")] for name in filesystem.ls(marks, detail=False)
                if name.endswith(".json")}  # fmt: skip

    def put_folder(self, local: Path, relative: str) -> str:
        """Copy a local folder's files to ``relative`` under the root (overwriting); returns where."""
        filesystem, path = self._fs()
        target = posixpath.join(path, relative)
        for file in sorted(p for p in local.rglob("*") if p.is_file()):
            destination = posixpath.join(target, file.relative_to(local).as_posix())
            filesystem.makedirs(posixpath.dirname(destination), exist_ok=True)
            filesystem.put_file(str(file), destination)
        return target

    def put_file(self, local: Path, relative: str) -> None:
        """Copy one local file to ``relative`` under the root, replacing what is there whole."""
        self._whole(relative, lambda filesystem, partial: filesystem.put_file(str(local), partial))

    def mark_done(self, key: str, record: dict[str, Any]) -> None:
        """Record that the input ``key`` is done (its outputs complete), with what came of it."""
        self._write_json(posixpath.join(MARKS, f"{key}.json"), record)

    def records(self) -> list[dict[str, Any]]:
        """Every done input's record, in key order."""
        filesystem, path = self._fs()
        marks = posixpath.join(path, MARKS)
        return [json.loads(filesystem.cat_file(posixpath.join(marks, f"{key}.json"))) for key in sorted(self.done())]

    def write_index(self) -> list[dict[str, Any]]:
        """Rebuild ``index.json`` from the marks (one record per input, whichever run did it); return them."""
        records = sorted(self.records(), key=lambda record: str(record.get("uri", "")))
        self._write_json(INDEX, records)
        return records

    def _write_json(self, relative: str, value: object) -> None:
        content = json.dumps(value, indent=1, sort_keys=True).encode()
        self._whole(relative, lambda filesystem, partial: filesystem.pipe_file(partial, content))

    def _whole(self, relative: str, fill: Callable[[Any, str], object]) -> None:
        """Write ``relative`` under the root through a partial name, so that a reader never sees half of it."""
        filesystem, path = self._fs()
        destination = posixpath.join(path, relative)
        filesystem.makedirs(posixpath.dirname(destination), exist_ok=True)
        partial = destination + ".partial"
        fill(filesystem, partial)
        filesystem.mv(partial, destination)  # a rename on a file system; one object on an object store


@dataclass
class BatchSummary:
    """What a batch run did: inputs found, skipped as done before, done, refused (by reason); where the index is."""

    inputs: int = 0
    skipped: int = 0
    done: int = 0
    refused: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    cluster: ClusterShape | None = None
    index: str = ""


def pending(store: BatchOutput, uris: list[str]) -> list[dict[str, str]]:
    """The inputs not yet done, as Ray Data rows (URI and key)."""
    done = store.done()
    return [{"uri": uri, "key": input_key(uri)} for uri in uris if input_key(uri) not in done]


def summarise(store: BatchOutput, inputs: int, skipped: int, cluster: ClusterShape) -> BatchSummary:
    """Rebuild the index from the marks and count what it says."""
    summary = BatchSummary(inputs=inputs, skipped=skipped, cluster=cluster, index=store.root.rstrip("/") + "/" + INDEX)
    for record in store.write_index():
        if record.get("status") == "done":
            summary.done += 1
        else:
            reason = str(record.get("reason", ""))
            summary.refused += 1
            summary.reasons[reason] = summary.reasons.get(reason, 0) + 1
    return summary
