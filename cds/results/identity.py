"""The hashes that identify an input: every result carries one, so an output can be traced to what was read."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from cds.models.registry import sha256_file


def hash_arrays(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over tensor names, dtypes, shapes and bytes, in name order: the input's identity."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def hash_path(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks; of a folder's files (names and bytes, in name order)."""
    if path.is_file():
        return sha256_file(path)
    return hash_files(path, sorted(p for p in path.rglob("*") if p.is_file()))


def hash_files(root: Path, files: list[Path]) -> str:
    """sha256 over several files' names (relative to ``root``) and bytes, in the order given.

    One input stored as several files: a DICOM folder, a WFDB header and its signal file.
    """
    digest = hashlib.sha256()
    for member in files:
        digest.update(f"{member.relative_to(root).as_posix()}\0".encode())
        digest.update(bytes.fromhex(sha256_file(member)))
    return digest.hexdigest()
