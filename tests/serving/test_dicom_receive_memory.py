"""A 500-slice CT study received by C-STORE and by STOW-RS costs the service no more memory than a fraction of the
study: it is written to disk as it arrives, never held whole (the same measurement as
``python -m benchmarks.dicom_receive``, at a smaller slice size)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.dicom_receive import measure

pytestmark = pytest.mark.slow


def test_a_500_slice_ct_is_received_in_flat_memory_by_c_store_and_by_stow(tmp_path: Path) -> None:
    rows = measure(500, 384, tmp_path)  # about 141 MiB a study
    assert [row["path"] for row in rows] == ["C-STORE", "STOW-RS"]
    for row in rows:
        grown = float(row["peak_rss_mib"]) - float(row["idle_rss_mib"])  # type: ignore[arg-type]
        assert row["instances"] == 500 and grown < float(row["mib"]) / 2, row  # type: ignore[arg-type]
