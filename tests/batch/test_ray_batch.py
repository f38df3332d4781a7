"""``cds batch preread`` and ``cds batch risk`` on a real two-node Ray cluster started here (a head and a worker
node on this machine): every input done exactly once even when the worker node is killed mid-run, and a re-run
after a crash resumes from what was done."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cds.batch.preread import PrereadJob, run_preread_batch
from cds.batch.risk import run_risk_batch, scored_name
from cds.batch.store import MARKS, BatchOutput
from cds.models.risk import get_equation
from cds.settings import REPO_ROOT
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402 - after the skip

REGISTRY = str(REPO_ROOT / "registry")


class _NoPoller:
    """Stands in for Ray Data's cluster-metrics poller (usage statistics), which otherwise starts a thread in this
    process on the first dataset run that queries Prometheus every 10 s, logging, for the rest of the test session,
    long after the cluster is gone (a test process later hung with every thread waiting for logging's lock)."""

    def latest_snapshot(self) -> None:
        return None

    def first_snapshot(self) -> None:
        return None


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head node and a worker node, two CPUs each, as separate raylets on this machine."""
    import ray.data._internal.usage.execution_callback as usage

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(usage, "get_poller", _NoPoller)  # raising: a Ray that renames it shows here
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
        nodes.add_node(num_cpus=2)
        nodes.wait_for_nodes()
        ray.init(address=nodes.address, log_to_driver=False)
        yield nodes
        ray.shutdown()
        nodes.shutdown()


@pytest.fixture(scope="module")
def films(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("films")
    for i in range(24):
        pixels, _, sex = render(448, 500 + i, 3, findings={"Effusion"} if i % 3 == 0 else set())
        write_radiograph(folder / f"cr{i:02d}.dcm", pixels, sex=sex)
    (folder / "truncated.dcm").write_bytes((folder / "cr00.dcm").read_bytes()[:-5000])  # pixel data cut short
    (folder / "notes.txt").write_text("not an image")
    return folder


def _done_records(output: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((output / MARKS).glob("*.json"))]


def test_preread_survives_a_worker_node_killed_mid_run(cluster: Cluster, films: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"
    worker = next(node for node in cluster.worker_nodes)
    killed = threading.Event()
    marks_at_kill: list[int] = []

    def kill_when_started() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(list((output / MARKS).glob("*.json"))) < 3:
            time.sleep(0.1)
        marks_at_kill.append(len(list((output / MARKS).glob("*.json"))))
        cluster.remove_node(worker)  # its raylet and every task and actor on it die
        killed.set()

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    job = PrereadJob(registry=REGISTRY, saliency_grid=0)
    summary = run_preread_batch(str(films), str(output), job, address=cluster.address, actors=2)
    killer.join(60)
    assert killed.is_set() and marks_at_kill[0] < 26  # killed mid-run, not after
    inputs = sorted(str(p) for p in films.iterdir())
    records = json.loads((output / "index.json").read_text())
    assert [r["uri"] for r in records] == inputs  # every input exactly once in the index
    refused = {Path(r["uri"]).name: r["reason"] for r in records if r["status"] == "refused"}
    assert set(refused) == {"truncated.dcm", "notes.txt"} and refused["notes.txt"] == "not_dicom"
    assert refused["truncated.dcm"]  # refused with the reader's reason, the run going on
    done = [r for r in records if r["status"] == "done"]
    assert summary.done == len(done) == 24 and summary.refused == 2
    folders = sorted(p.name for p in output.iterdir() if p.is_dir() and not p.name.startswith("."))
    assert folders == sorted(r["uid"] for r in done)  # one output folder per image, none extra
    for record in done:
        files = sorted(p.name for p in (output / record["uid"]).iterdir())
        assert "result.json" in files and "report-sr.dcm" in files and not any(".partial" in f for f in files)
        result = json.loads((output / record["uid"] / "result.json").read_text())
        assert result["result"]["input_sha256"] == record["input_sha256"]
    again = run_preread_batch(str(films), str(output), job, address=cluster.address)
    assert again.skipped == again.inputs == 26 and again.done == 24  # nothing redone, nothing duplicated
    cluster.add_node(num_cpus=2)  # back to two nodes for the next test
    cluster.wait_for_nodes()


def _cohort(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(40, 80, n), "sex": rng.choice(["female", "male"], n),
        "race": rng.choice(["white", "african_american", "other"], n), "total_cholesterol": rng.uniform(140, 300, n),
        "hdl_cholesterol": rng.uniform(25, 90, n), "systolic_bp": rng.uniform(95, 190, n),
        "bp_treated": rng.integers(0, 2, n), "smoker": rng.integers(0, 2, n), "diabetes": rng.integers(0, 2, n)})  # fmt: skip
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


DRIVER = """
import sys
from cds.batch.risk import run_risk_batch
run_risk_batch(sys.argv[1], sys.argv[2], "pce", address=sys.argv[3])
"""


def test_risk_batch_survives_a_worker_node_killed_mid_run(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "clinics"
    source.mkdir()
    for i in range(8):
        _cohort(source / f"clinic{i}.parquet", 150_000, 100 + i)
    output = tmp_path / "scored"
    worker = next(node for node in cluster.worker_nodes)
    marks_at_kill: list[int] = []

    def kill_when_started() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not list((output / MARKS).glob("*.json")):
            time.sleep(0.05)
        marks_at_kill.append(len(list((output / MARKS).glob("*.json"))))
        cluster.remove_node(worker)

    killer = threading.Thread(target=kill_when_started, daemon=True)
    killer.start()
    summary = run_risk_batch(str(source), str(output), "pce", address=cluster.address)
    killer.join(60)
    assert marks_at_kill and marks_at_kill[0] < 8  # killed mid-run
    assert summary.done == 8 and summary.refused == 0
    records = json.loads((output / "index.json").read_text())
    assert sorted(r["uri"] for r in records) == sorted(str(p) for p in source.iterdir())
    assert sorted(p.name for p in output.glob("*.parquet")) == sorted(scored_name(r["uri"]) for r in records)
    assert all(len(pd.read_parquet(output / scored_name(r["uri"]))) == r["rows"] == 150_000 for r in records)
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()


def test_risk_batch_resumes_after_the_driver_is_killed(cluster: Cluster, tmp_path: Path) -> None:
    source = tmp_path / "districts"
    (source / "north").mkdir(parents=True)
    (source / "south").mkdir()
    for i in range(6):
        _cohort(source / ("north" if i % 2 else "south") / f"clinic{i}.{'csv' if i % 2 else 'parquet'}", 20_000, i)
    _cohort(source / "north" / "clinic0.csv", 100, 99)  # the same file name in another district
    (source / "south" / "broken.csv").write_text("age,sex\n50,female\n")
    output = tmp_path / "scored"
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(source), str(output), cluster.address],
                              cwd=REPO_ROOT, env=os.environ | {"PYTHONPATH": str(REPO_ROOT)})  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((output / MARKS).glob("*.json"))) < 2:
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)  # the crash: a partial run
    driver.wait(30)
    before = len(_done_records(output))
    summary = run_risk_batch(str(source), str(output), "pce", address=cluster.address)
    assert summary.inputs == 8 and summary.skipped >= before >= 2
    records = json.loads((output / "index.json").read_text())
    assert len(records) == 8 and len({r["uri"] for r in records}) == 8
    refused = [r for r in records if r["status"] == "refused"]
    assert [Path(r["uri"]).name for r in refused] == ["broken.csv"] and refused[0]["reason"] == "missing_fields"
    pce = get_equation("pce")
    for record in (r for r in records if r["status"] == "done"):
        scored = pd.read_parquet(output / scored_name(record["uri"]))
        original = (pd.read_csv if record["uri"].endswith(".csv") else pd.read_parquet)(record["uri"])
        assert len(scored) == len(original) == record["rows"]
        expected = pce.evaluate({f.name: original[f.name].to_numpy() for f in pce.fields}, row_errors=True).score
        np.testing.assert_allclose(scored["score"].to_numpy(), expected, rtol=1e-12)
    parquet_files = sorted(p.name for p in output.glob("*.parquet"))
    assert parquet_files == sorted(scored_name(r["uri"]) for r in records if r["status"] == "done")
    assert BatchOutput(str(output)).done() == {r["key"] for r in records}
