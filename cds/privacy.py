"""Keeping patient data out of logs, stderr and the audit trail's details.

* :func:`quiet_library_warnings`: the DICOM libraries warn with the values they found (patient names, invalid UIDs),
  on stderr through ``warnings`` and in their own loggers. Once installed, such a warning is logged as its category
  and where it arose, the message withheld.
* :func:`where`: an exception as its type and the place it was raised (file, line, function), never its message,
  which may hold request values.
* :class:`Pseudonymizer`: identifiers an audit event's details must carry (UIDs, file names) as keyed hashes: the
  same identifier gives the same pseudonym, so events can still be correlated, and whoever holds the key can find
  the events about a known identifier, but the trail itself names nobody.

Standard library only: decoder processes install the same filters before they import a DICOM library.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import traceback
import warnings
from types import TracebackType
from typing import Any, TextIO

LIBRARIES = ("pydicom", "highdicom", "wsidicom", "PIL", "tifffile")
WITHHELD = "message withheld: it may hold patient data"
log = logging.getLogger("cds.warnings")


class _Withhold(logging.Filter):
    """Replaces a library record's message (and arguments) with :data:`WITHHELD`, keeping its level and origin."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = f"{record.name} {record.levelname.lower()} at {record.module}:{record.lineno} "\
                                  f"({WITHHELD})", None  # fmt: skip
        record.exc_info = record.exc_text = None
        return True


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: TextIO | None = None,
          line: str | None = None) -> None:  # fmt: skip
    module = filename.replace("\\", "/").rsplit("/", 1)[-1]
    log.warning("%s at %s:%d (%s)", category.__name__, module, lineno, WITHHELD)


def quiet_library_warnings() -> None:
    """Withhold the messages of every warning and of the DICOM and imaging libraries' log records."""
    warnings.showwarning = _show
    for name in LIBRARIES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Withhold) for f in logger.filters):
            logger.addFilter(_Withhold())


def where(exc: BaseException) -> str:
    """``Type at file:line in function`` of the frame that raised ``exc`` (no message, no values)."""
    frames = traceback.extract_tb(exc.__traceback__) if isinstance(exc.__traceback__, TracebackType) else []
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    return f"{type(exc).__name__} at {last.filename.rsplit('/', 1)[-1]}:{last.lineno} in {last.name}"


class Pseudonymizer:
    """Keyed hashes of identifiers: ``h:`` and the first 16 hex digits of HMAC-SHA256 under ``key``.

    Args:
        key: A secret the database does not hold.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, identifier: str) -> str:
        """The pseudonym of ``identifier`` (an empty identifier stays empty)."""
        if not identifier:
            return ""
        return "h:" + hmac.new(self._key, identifier.encode(), hashlib.sha256).hexdigest()[:16]

    def details(self, detail: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
        """``detail`` with the values under ``keys`` pseudonymized."""
        return {k: self(str(v)) if k in keys and v not in (None, "") else v for k, v in detail.items()}
