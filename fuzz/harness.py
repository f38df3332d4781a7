"""What every harness shares: the entry point that instruments the code under test and hands it to atheris.

A harness module defines ``INSTRUMENT`` (packages whose Python code atheris instruments for coverage),
``prepare()`` (imports the code under test, which is instrumented then, and configures it), ``one_input(data)``
(raises only for a finding: any exception but the refusal the reader documents), ``seeds()`` (the seed corpus, from
files the installed packages bundle or that are generated here, never downloaded) and calls
:func:`main` under ``if __name__ == "__main__"``: the decoder processes that the readers start import the harness
module again, and must not start a fuzzer.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from types import ModuleType


def main(module_name: str, instrument: Iterable[str], entry: str = "one_input") -> None:
    """Import ``module_name``'s code under test instrumented, then fuzz its ``entry`` with ``sys.argv``'s options."""
    import atheris

    with atheris.instrument_imports(include=list(instrument)):
        module: ModuleType = importlib.import_module(module_name)
        module.prepare()
    one_input: Callable[[bytes], None] = getattr(module, entry)
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
