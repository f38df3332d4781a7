"""Throughput vs batch size, one line per backend, one panel per model, as a PNG."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any


def plot_throughput(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Draw items/s against batch size (both log scales) for every model in ``rows``; return ``path``.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in rows))
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    colours = {b: f"C{i}" for i, b in enumerate(backends)}  # one colour per backend in every panel
    columns = min(len(models), 2) or 1
    lines = math.ceil(len(models) / columns) or 1
    figure, axes = plt.subplots(lines, columns, figsize=(6 * columns, 4 * lines), squeeze=False)
    for axis, model in zip(axes.flat, models, strict=False):
        points = [r for r in rows if r["model"] == model]
        for backend in dict.fromkeys(r["backend"] for r in points):
            series = sorted((r["batch"], r["items_per_s"]) for r in points if r["backend"] == backend)
            axis.plot([b for b, _ in series], [v for _, v in series], marker="o", label=backend, color=colours[backend])
        batches = sorted({r["batch"] for r in points})
        axis.set_xscale("log", base=2)
        axis.set_xticks(batches, [str(b) for b in batches])
        axis.minorticks_off()
        axis.set_yscale("log")
        axis.set_title(model)
        axis.set_xlabel("batch size")
        axis.set_ylabel("items/s")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize="small")
    for axis in list(axes.flat)[len(models) :]:
        axis.set_visible(False)
    figure.suptitle(textwrap.fill(title, 55 * columns), fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
