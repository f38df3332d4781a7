"""Timing and memory of repeated calls: warm-up, then a fixed number of timed calls; peak memory per point.

Throughput = items per call × timed calls / total time; latency percentiles are per call. Memory is the peak
while the point ran minus a baseline taken before the backend was loaded: resident set size (RSS) of this
process and its children on the CPU (so a Triton server started by the harness is counted), and
``torch.cuda.max_memory_allocated`` or the device's used memory on a GPU.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MIN_TIMED_CALLS = 3
MIN_LOAD_SECONDS = 1.0


@dataclass(frozen=True)
class Timing:
    """What :func:`measure` found for one point."""

    items_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    iterations: int
    warmup: int
    seconds: float


def measure(call: Callable[[], object], items: int, iterations: int, warmup: int, max_seconds: float = 0.0) -> Timing:
    """Time ``call`` (which processes ``items`` items) after ``warmup`` untimed calls.

    ``max_seconds`` > 0 also caps the warm-up (at least one call still runs) and stops the timed loop once that
    much time has passed and at least :data:`MIN_TIMED_CALLS` calls ran; the numbers of calls actually made are
    returned, so a report says how many samples its percentiles rest on.
    """
    warm_start, warmed = time.perf_counter(), 0
    while warmed < warmup:
        call()
        warmed += 1
        if max_seconds > 0 and time.perf_counter() - warm_start > max_seconds:
            break
    latencies: list[float] = []
    start = time.perf_counter()
    for _ in range(iterations):
        tic = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - tic)
        elapsed = time.perf_counter() - start
        if max_seconds > 0 and elapsed > max_seconds and len(latencies) >= MIN_TIMED_CALLS:
            break
    total = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    p50, p95, p99 = (float(v) for v in np.percentile(ms, [50, 95, 99]))
    return Timing(items * len(latencies) / total, p50, p95, p99, len(latencies), warmed, total)


def sample_inputs(spec, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Random inputs that satisfy ``spec``'s input contract for a batch of ``batch`` items.

    Values are uniform inside each tensor's ``value_range``, or inside each feature's ``valid`` range for
    tabular models, else in [0, 1].

    Raises:
        ValueError: A non-batch dimension is dynamic and the spec gives no size for it (``volume.roi_size``).
    """
    inputs = {}
    for index, tensor in enumerate(spec.inputs):
        shape = fixed_shape(spec, tensor.shape)
        low, high = tensor.value_range or (0.0, 1.0)
        if index == 0 and spec.features and tensor.value_range is None:
            lows = np.array([(f.valid or (0.0, 1.0))[0] for f in spec.features])
            highs = np.array([(f.valid or (0.0, 1.0))[1] for f in spec.features])
            data = rng.uniform(lows, highs, size=(batch, len(spec.features)))
        else:
            data = rng.uniform(low, high, size=(batch, *shape))
        inputs[tensor.name] = data.astype(tensor.dtype.numpy)
    return inputs


def fixed_shape(spec, shape: tuple[int, ...]) -> tuple[int, ...]:  # noqa: ANN001
    """The non-batch dimensions of ``shape`` with dynamic ones taken from ``spec.volume.roi_size``.

    Raises:
        ValueError: A dynamic dimension that the spec does not size.
    """
    dims = list(shape[1:])
    if -1 in dims and spec.volume is not None and len(dims) == 4:
        dims = [dims[0], *(r if d == -1 else d for d, r in zip(dims[1:], spec.volume.roi_size, strict=True))]
    if -1 in dims:
        raise ValueError(f"input dimensions {list(shape)} are dynamic beyond the batch and the spec gives no size")
    return tuple(dims)


class HostMemory:
    """Peak resident memory of this process and its descendants, relative to a baseline.

    Peaks are reset through ``/proc/<pid>/clear_refs`` (Linux); where that is refused the lifetime peak
    (``VmHWM``) is used, which can only overstate.
    """

    kind = "host RSS (process tree)"

    def __init__(self) -> None:
        self._baseline = 0

    def set_baseline(self) -> None:
        """Remember the current resident memory as zero."""
        self._baseline = sum(_status_kb(pid, "VmRSS") for pid in process_tree(os.getpid()))

    def reset_peak(self) -> None:
        """Start a new peak window at the current resident size of every process of the tree."""
        for pid in process_tree(os.getpid()):
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                continue

    def peak_mb(self) -> float:
        """Sum over the tree of each process's peak since :meth:`reset_peak`, minus the baseline, in MiB."""
        peak = sum(_status_kb(pid, "VmHWM") for pid in process_tree(os.getpid()))
        return max(0.0, (peak - self._baseline) / 1024)


class CudaMemory:
    """Peak GPU memory: torch's allocator when torch runs the model, else the device's used memory.

    Other engines (ONNX Runtime's CUDA and TensorRT providers) keep their arenas at their peak, so memory in use
    after a point minus before the backend loaded is their peak. Device memory is read through torch when it has
    CUDA, else through ``nvidia-smi``.
    """

    def __init__(self, torch_allocator: bool) -> None:
        import torch

        self._torch = torch if torch.cuda.is_available() else None
        self._allocator = torch_allocator and self._torch is not None
        self.kind = "torch.cuda.max_memory_allocated" if self._allocator else "GPU memory in use, after − before"
        self._baseline = 0

    def _used(self) -> int:
        if self._torch is not None:
            self._torch.cuda.synchronize()
            if self._allocator:
                return int(self._torch.cuda.max_memory_allocated())
            free, total = self._torch.cuda.mem_get_info()
            return int(total - free)
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "--id=0"]
        try:
            return int(float(subprocess.run(query, capture_output=True, text=True, check=True).stdout) * 2**20)
        except (OSError, ValueError, subprocess.CalledProcessError):
            return 0

    def set_baseline(self) -> None:
        """Remember the current device memory as zero."""
        if self._allocator:
            self._torch.cuda.synchronize()  # type: ignore[union-attr]
            self._baseline = int(self._torch.cuda.memory_allocated())  # type: ignore[union-attr]
        else:
            self._baseline = self._used()

    def reset_peak(self) -> None:
        """Start a new peak window."""
        if self._allocator:
            self._torch.cuda.reset_peak_memory_stats()  # type: ignore[union-attr]

    def peak_mb(self) -> float:
        """Peak since :meth:`reset_peak`, minus the baseline, in MiB."""
        return max(0.0, (self._used() - self._baseline) / 2**20)


class OtherLoad:
    """CPU cores kept busy by processes outside this process tree while a point ran (0 on a quiet machine).

    Read from ``/proc/stat`` (all CPUs) minus this tree's own CPU time; a value near a whole core means the
    point shared the machine and its timings are suspect.
    """

    def __init__(self) -> None:
        self._start = (0, 0, 0.0)

    def start(self) -> None:
        """Begin an interval."""
        self._start = (_machine_busy_ticks(), _tree_ticks(), time.perf_counter())

    def cores(self) -> float | None:
        """Average busy cores of other processes since :meth:`start`.

        ``None`` where ``/proc`` is absent, or when less than :data:`MIN_LOAD_SECONDS` passed (CPU time is
        counted in clock ticks, too coarse for shorter intervals).
        """
        machine, tree, wall = self._start
        elapsed = time.perf_counter() - wall
        if machine == 0 or elapsed < MIN_LOAD_SECONDS:
            return None
        others = (_machine_busy_ticks() - machine) - (_tree_ticks() - tree)
        return min(float(os.cpu_count() or 1), max(0.0, others / os.sysconf("SC_CLK_TCK") / elapsed))


def _machine_busy_ticks() -> int:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return 0
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal


def _tree_ticks() -> int:
    total = 0
    for pid in process_tree(os.getpid()):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total


def children_rss_mb() -> float:
    """Resident memory of this process's descendants (e.g. a server it started), in MiB."""
    return sum(_status_kb(pid, "VmRSS") for pid in process_tree(os.getpid())[1:]) / 1024


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, read from ``/proc/<pid>/task/<tid>/children``."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        for children in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                queue.extend(int(c) for c in children.read_text().split())
            except OSError:
                continue
    return found


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return 0
    return 0
