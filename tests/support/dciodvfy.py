"""dicom3tools' ``dciodvfy``, the DICOM standard's own IOD checker (Debian ``dicom3tools``; CI installs it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

TOOL = shutil.which("dciodvfy") or ("/usr/bin/dciodvfy" if Path("/usr/bin/dciodvfy").exists() else None)
needs_dciodvfy = pytest.mark.skipif(TOOL is None, reason="dciodvfy not installed")


def dciodvfy_errors(path: Path) -> set[str]:
    """The ``Error`` lines dciodvfy prints for ``path``, numbers masked so that runs compare."""
    assert TOOL is not None
    run = subprocess.run([TOOL, str(path)], capture_output=True, text=True, timeout=60, check=False)
    lines = (run.stdout + run.stderr).splitlines()
    return {re.sub(r"\d+", "#", line) for line in lines if line.startswith("Error")}
