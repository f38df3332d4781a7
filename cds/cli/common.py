"""Helpers shared by the CLI command groups."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer

from cds.errors import CdsError

T = TypeVar("T")
out = typer.echo


def run_command(action: Callable[[], T]) -> T:
    """Run a command body; a cds error becomes one clear line on stderr and a non-zero exit code.

    Exit code 2: bad input or unknown name (the caller can fix the request); 1: the engine cannot run.
    """
    try:
        return action()
    except CdsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, ValueError | LookupError) else 1) from None


def folder_name(source: Path, taken: set[str]) -> str:
    """An output subfolder name for ``source`` (its stem, made safe), unique among ``taken`` (which it joins)."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in source.stem) or "input"
    candidate, index = name, 1
    while candidate in taken:
        index += 1
        candidate = f"{name}-{index}"
    taken.add(candidate)
    return candidate
