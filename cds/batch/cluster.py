"""Connecting to the Ray cluster a batch run uses: an existing one (``--address``) or a local one started for it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterShape:
    """What the cluster offers: nodes alive, CPUs and GPUs in all."""

    nodes: int
    cpus: int
    gpus: int


def connect(address: str | None) -> ClusterShape:
    """Join the cluster at ``address`` (``auto``, ``host:port`` or ``ray://host:port``), or start a local one.

    Raises:
        BackendUnavailableError: ``ray_unavailable``: no cluster answers at ``address``.
    """
    import ray
    import ray.data

    from cds.errors import BackendUnavailableError

    logging.getLogger("ray.data").setLevel(logging.WARNING)  # progress is the caller's (a bar, a callback)
    ray.data.DataContext.get_current().enable_progress_bars = False
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                     configure_logging=False)  # fmt: skip
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise BackendUnavailableError(f"no Ray cluster at {address}: {exc}", code="ray_unavailable") from None
    return shape()


def shape() -> ClusterShape:
    """The connected cluster's nodes and resources."""
    import ray

    resources: dict[str, Any] = ray.cluster_resources()  # type: ignore[no-untyped-call]
    nodes = len([node for node in ray.nodes() if node.get("Alive")])  # type: ignore[no-untyped-call]
    return ClusterShape(nodes=nodes, cpus=int(resources.get("CPU", 0)), gpus=int(resources.get("GPU", 0)))
