"""``python -m benchmarks run ...``: the inference benchmark harness (see :mod:`benchmarks.harness.cli`)."""

import sys

from benchmarks.harness.cli import main

sys.exit(main())
