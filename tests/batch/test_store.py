"""Batch inputs and outputs by URI: an object store (fsspec's in-memory one) gets staged, whole objects; marks and
the index make a re-run skip what was done."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest

from cds.batch.store import MARKS, BatchOutput, input_key, list_inputs, local_input, read_input
from cds.errors import InvalidInputError


@pytest.fixture
def bucket() -> str:
    memory = fsspec.filesystem("memory")
    root = "/bucket-" + input_key(str(id(memory)))[:8]
    memory.pipe({f"{root}/in/a.csv": b"age\n50\n", f"{root}/in/sub/b.parquet": b"PAR1", f"{root}/in/.hidden": b"x",
                 f"{root}/in/notes.txt": b"n"})  # fmt: skip
    return f"memory://{root}"


def test_inputs_are_listed_as_uris_and_read_by_uri(bucket: str) -> None:
    uris = list_inputs(f"{bucket}/in")
    assert uris == [f"{bucket}/in/a.csv", f"{bucket}/in/notes.txt", f"{bucket}/in/sub/b.parquet"]
    assert list_inputs(f"{bucket}/in", (".csv", ".parquet")) == [uris[0], uris[2]]
    assert read_input(uris[0]) == b"age\n50\n" and local_input(uris[0]) is None
    with pytest.raises(InvalidInputError) as too_large:
        read_input(uris[0], max_bytes=3)
    assert too_large.value.code == "input_too_large"
    with pytest.raises(InvalidInputError) as missing:
        list_inputs(f"{bucket}/nowhere")
    assert missing.value.code == "input_missing"


def test_outputs_on_an_object_store_are_staged_and_marked(bucket: str, tmp_path: Path) -> None:
    output = BatchOutput(f"{bucket}/out")
    assert output.local("x") is None and output.done() == set()
    staged = tmp_path / "staged"
    (staged / "deep").mkdir(parents=True)
    (staged / "result.json").write_text('{"a": 1}')
    (staged / "deep" / "report-sr.dcm").write_bytes(b"DICM")
    output.put_folder(staged, "1.2.3")
    output.put_file(staged / "result.json", "scored/a.parquet")
    output.mark_done("k2", {"uri": "b", "status": "done"})
    output.mark_done("k1", {"uri": "a", "status": "refused", "reason": "not_dicom"})
    output.mark_done("k1", {"uri": "a", "status": "refused", "reason": "not_dicom"})  # a task run twice
    memory = fsspec.filesystem("memory")
    root = bucket.removeprefix("memory://") + "/out"
    assert memory.cat_file(f"{root}/1.2.3/deep/report-sr.dcm") == b"DICM"
    assert not [name for name in memory.find(root) if name.endswith(".partial")]
    assert output.done() == {"k1", "k2"}
    records = output.write_index()
    assert [r["uri"] for r in records] == ["a", "b"]
    assert json.loads(memory.cat_file(f"{root}/index.json")) == records
    assert sorted(memory.ls(f"{root}/{MARKS}", detail=False)) == [f"{root}/{MARKS}/k1.json", f"{root}/{MARKS}/k2.json"]


def test_a_local_root_is_written_in_place(tmp_path: Path) -> None:
    output = BatchOutput(str(tmp_path / "out"))
    target = output.local("1.2.3/result.json")
    assert target == tmp_path / "out" / "1.2.3" / "result.json" and target.parent.is_dir()
    assert local_input(str(tmp_path / "in.csv")) == tmp_path / "in.csv"
