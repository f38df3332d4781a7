"""One benchmark harness across backends: ``python -m benchmarks run`` (see :mod:`benchmarks.harness.cli`)."""
