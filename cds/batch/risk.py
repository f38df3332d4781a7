"""``cds batch risk``: score cohort files (CSV or Parquet) on a Ray cluster with Ray Data.

Each input file is a unit of work and of resume: a task fetches it by URI, scores it chunk by chunk with the same
code as ``cds risk score-file`` (:func:`cds.pipelines.risk.cohort_file.score_file`, memory flat in the file's
size), puts the scored Parquet file under the output root whole, and marks the file done. A region's population
goes in as many files (one per district or clinic); a re-run after a crash scores only the files not yet done.
"""

from __future__ import annotations

import posixpath
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from cds.batch.cluster import connect
from cds.batch.store import BatchOutput, BatchSummary, input_key, list_inputs, local_input, pending, summarise
from cds.errors import CdsError

COHORT_SUFFIXES = (".csv", ".parquet", ".pq")


def scored_name(uri: str) -> str:
    """The output file of an input: its name with the key of its URI (two districts' ``cohort.csv`` stay apart)."""
    stem = posixpath.basename(uri).rsplit(".", 1)[0]
    return f"{stem}-{input_key(uri)[:12]}.scored.parquet"


def score_batch(batch: dict[str, np.ndarray], method: str, registry: str | None, output: str) -> dict[str, np.ndarray]:
    """Score each file of the batch into the output root and mark it done (a refusal is marked with its reason)."""
    from cds.pipelines.risk.cohort_file import score_file
    from cds.pipelines.risk.methods import open_risk_method

    store = BatchOutput(output)
    statuses = []
    for uri, key in zip(batch["uri"].tolist(), batch["key"].tolist(), strict=True):
        record: dict[str, Any] = {"uri": uri, "key": key, "method": method}
        try:
            with tempfile.TemporaryDirectory() as folder:
                source = local_input(uri)
                if source is None:  # fetched from the object store first
                    source = Path(folder) / posixpath.basename(uri)
                    filesystem, path = fsspec.core.url_to_fs(uri)
                    filesystem.get_file(path, str(source))
                in_place = store.local(scored_name(uri))
                target = in_place or Path(folder) / scored_name(uri)  # score_file renames a .partial file at the end
                with open_risk_method(method, Path(registry) if registry else None) as (equation, _):
                    summary = score_file(equation, source, target)
                if in_place is None:
                    store.put_file(target, scored_name(uri))
            record |= {"status": "done", "output": scored_name(uri), "rows": summary.rows, "scored": summary.scored,
                       "out_of_range": summary.out_of_range, "errors": summary.errors}  # fmt: skip
        except CdsError as exc:
            record |= {"status": "refused", "reason": exc.code, "message": exc.message}
        store.mark_done(key, record)
        statuses.append(record["status"])
    return {"uri": batch["uri"], "status": np.array(statuses, dtype=object)}


def run_risk_batch(source: str, output: str, method: str, *, registry: str | None = None, address: str | None = None,
                   progress: Callable[[int], object] | None = None) -> BatchSummary:  # fmt: skip
    """Score every cohort file under ``source`` with ``method`` into ``output`` on the Ray cluster at ``address``.

    Args:
        source: A folder, file or URI of CSV/Parquet cohort files.
        output: A folder or URI: one scored Parquet file per input, ``index.json`` and the done marks.
        method: An equation (``cds risk list``) or a registered risk model.
        registry: The model registry folder, for a registered model.
        address: The cluster; ``None`` starts a local one.
        progress: Called with the number of files finished, as they finish.
    """
    import ray

    cluster = connect(address)
    store = BatchOutput(output)
    uris = list_inputs(source, COHORT_SUFFIXES)
    rows = pending(store, uris)
    if rows:
        dataset: Any = ray.data.from_items(rows, override_num_blocks=len(rows))
        dataset = dataset.map_batches(score_batch, fn_kwargs={"method": method, "registry": registry,
                                                              "output": output},
                                      batch_size=1, batch_format="numpy", num_cpus=1)  # fmt: skip
        for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
            if progress is not None:
                progress(len(batch["uri"]))
    return summarise(store, len(uris), len(uris) - len(rows), cluster)
