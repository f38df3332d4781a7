"""STOW-RS bodies: split into files as they stream, status codes per PS3.18, bombs refused within their budget,
and WADO-RS metadata served from what was extracted at ingest."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from cds.errors import InvalidInputError, UnsupportedMediaTypeError
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.serving.api.uploads import save_parts
from cds.settings import Settings
from cds.store.tables import DicomInstanceRow
from tests.serving.api.conftest import bearer
from tests.support.poison import deflate_bomb
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.stow_sample import BOUNDARY, multipart_body

STOW = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'}
MiB = 1 << 20


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:  # SQLite; a small per-instance cap so the bounds are clear
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", max_instance_bytes=8 * MiB,
                        preread_saliency_grid=0)  # fmt: skip
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _radiograph(folder: Path, seed: int) -> bytes:
    return write_radiograph(folder / f"cr-{seed}.dcm", render(256, seed, 0)[0], patient_id=f"P-{seed}").read_bytes()


def _kept_files(client: TestClient) -> list[str]:
    """Files kept in the STOW folders (one per request that stored something)."""
    root = Path(client.app.state.cds.settings.data_dir) / "dicom"  # type: ignore[attr-defined]
    return sorted(p.name for p in root.glob("*/*") if p.is_file())  # each request's folder; not pre-read outputs


def test_stow_answers_200_202_409_and_keeps_only_what_it_stored(client: TestClient, tmp_path: Path) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    good = _radiograph(tmp_path, 1)
    every = client.post("/dicomweb/studies", content=multipart_body([good]), headers=headers | STOW)
    assert every.status_code == 200 and every.headers["Location"].startswith("/v1/preread/")
    (item,) = every.json()["00081199"]["Value"]
    retrieve = item["00081190"]["Value"][0]
    assert retrieve.startswith(every.json()["00081190"]["Value"][0])  # the study's RetrieveURL, then the instance's
    assert client.get(retrieve.removeprefix("http://testserver"), headers=headers).status_code == 200

    bomb = deflate_bomb(tmp_path / "bomb.dcm", inflated=512 * MiB).read_bytes()
    cut = bomb[:1024]  # the meta header and the start of the deflate stream
    tracemalloc.start()
    try:
        parts = [_radiograph(tmp_path, 2), bomb, cut, b"x" * (9 * MiB), _radiograph(tmp_path, 4)[:-1000]]
        some = client.post("/dicomweb/studies", content=multipart_body(parts), headers=headers | STOW)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert some.status_code == 202, some.text
    assert len(some.json()["00081199"]["Value"]) == 1
    failures = [(f["00081197"]["Value"][0], f["00000902"]["Value"][0]) for f in some.json()["00081198"]["Value"]]
    assert failures == [(0xA700, "inflated_too_large"), (0xC000, "corrupt_deflate"), (0xA700, "instance_too_large"),
                        (0xC000, "pixel_data_short")]  # the last: a radiograph cut short in its pixel data
    short = some.json()["00081198"]["Value"][-1]  # its header was read: the failure names the instance
    assert short["00081150"]["Value"] == ["1.2.840.10008.5.1.4.1.1.1"] and short["00081155"]["Value"][0]
    assert "00081155" not in some.json()["00081198"]["Value"][1]  # an unreadable part: no UID to name
    assert peak < 80 * MiB, f"{peak / MiB:.0f} MiB"  # the body (~10 MiB, twice) and the cap; the bomb is 512 MiB

    none = client.post("/dicomweb/studies", content=multipart_body([cut, b"junk"]), headers=headers | STOW)
    assert none.status_code == 409 and "Location" not in none.headers
    kept = _kept_files(client)
    assert len(kept) == 2 and all(name.endswith(".dcm") and not name.startswith("part-") for name in kept), kept


def _request(chunks: Iterator[bytes], content_type: str) -> Request:
    messages = ({"type": "http.request", "body": c, "more_body": True} for c in chunks)

    async def receive() -> dict[str, object]:
        return next(messages, {"type": "http.request", "body": b"", "more_body": False})

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type", content_type.encode())]}
    return Request(scope, receive)  # type: ignore[arg-type]


def _streamed(sizes: list[int], *, close: bool = True) -> Iterator[bytes]:
    """A multipart body with parts of ``sizes`` bytes (part i filled with byte i), generated 1 MiB at a time."""
    for index, size in enumerate(sizes):
        yield f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        for start in range(0, size, MiB):
            yield bytes([index]) * min(MiB, size - start)
        yield b"\r\n"
    if close:
        yield f"--{BOUNDARY}--\r\n".encode()


def test_multipart_parts_stream_to_files_in_constant_memory(tmp_path: Path) -> None:
    tracemalloc.start()
    try:
        parts = asyncio.run(save_parts(_request(_streamed([40 * MiB, 3, 20 * MiB]), STOW["Content-Type"]),
                                       tmp_path / "in", part_type="application/dicom", max_part_bytes=30 * MiB))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB for a 60 MiB body"
    assert [p.size for p in parts] == [40 * MiB, 3, 20 * MiB]
    assert parts[0].path is None and not (tmp_path / "in" / "part-1").exists()  # over the cap: dropped as it came
    assert parts[1].path is not None and parts[1].path.read_bytes() == b"\x01\x01\x01"
    assert parts[2].path is not None and parts[2].path.stat().st_size == 20 * MiB

    def save(chunks: Iterator[bytes], content_type: str = STOW["Content-Type"]) -> object:
        return asyncio.run(save_parts(_request(chunks, content_type), tmp_path / "x", part_type="application/dicom",
                                      max_part_bytes=MiB))  # fmt: skip

    with pytest.raises(InvalidInputError) as err:
        save(_streamed([10], close=False))
    assert err.value.code == "invalid_multipart"
    with pytest.raises(InvalidInputError) as err:
        save(iter([b"--other\r\n\r\nx\r\n--other--\r\n"]))
    assert err.value.code in ("invalid_multipart", "empty_input")
    with pytest.raises(InvalidInputError) as err:
        save(iter([]), 'multipart/related; type="application/dicom"')
    assert err.value.code == "invalid_multipart"
    with pytest.raises(UnsupportedMediaTypeError):
        save(iter([f"--{BOUNDARY}\r\nContent-Type: image/png\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode()]))
    with pytest.raises(UnsupportedMediaTypeError):
        save(iter([]), f"multipart/related; type=image/png; boundary={BOUNDARY}")


def test_metadata_is_served_from_what_was_extracted_at_ingest(client: TestClient, tmp_path: Path) -> None:
    headers = bearer(client, Role.RADIOLOGIST)
    stored = client.post("/dicomweb/studies", content=multipart_body([_radiograph(tmp_path, 3)]), headers=headers | STOW)
    (item,) = stored.json()["00081199"]["Value"]
    instance = item["00081190"]["Value"][0].removeprefix("http://testserver")
    study = instance.split("/series/")[0]
    first = client.get(f"{study}/metadata", headers=headers).json()
    (document,) = first
    assert document["00100020"]["Value"] == ["P-3"]
    assert document["7FE00010"]["BulkDataURI"].endswith(f"{instance}/bulk/7FE00010")
    database = client.app.state.cds.database  # type: ignore[attr-defined]
    with database.session() as session:
        row = session.get(DicomInstanceRow, item["00081155"]["Value"][0])
        Path(row.path).write_bytes(b"overwritten: no longer DICOM")  # the file is not parsed for metadata again
    assert client.get(f"{study}/metadata", headers=headers).json() == first
    with database.session() as session:  # an instance indexed before metadata was kept: extracted once, then kept
        row = session.get(DicomInstanceRow, item["00081155"]["Value"][0])
        Path(row.path).write_bytes(_radiograph(tmp_path, 3))
        row.metadata_json = None
    again = client.get(f"{study}/metadata", headers=headers).json()
    assert again[0]["00100020"]["Value"] == ["P-3"]
    with database.session() as session:
        assert session.get(DicomInstanceRow, item["00081155"]["Value"][0]).metadata_json is not None
