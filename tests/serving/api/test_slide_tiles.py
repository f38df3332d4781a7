"""Deep Zoom tiles of an uploaded slide: geometry, pixels, errors, caching, scope and the audit of a view."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cds.pipelines.pathology.slide import SlideLevel
from cds.services.slide_tiles import OVERLAP, TILE_SIZE, DeepZoom, OpenSlides, TileNotFoundError
from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from cds.store.tables import AuditEventRow
from tests.pipelines.pathology.slides import write_pyramid
from tests.serving.api.conftest import bearer
from tests.support.jobs import wait_for_job

WIDTH, HEIGHT = 1000, 700  # neither a multiple of the tile size: the last column and row are narrower


def _image() -> np.ndarray:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([xx * 255 // WIDTH, yy * 255 // HEIGHT, (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path_factory.mktemp("tiles") / "known.tif"
    return path, write_pyramid(path, _image(), tile=128, levels=3, mpp=0.25)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", site="hub", hub_site="hub")
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _read(client: TestClient, path: Path, headers: dict[str, str]) -> str:
    queued = client.post("/v1/pathology/jobs", params={"filename": path.name, "subject": "Patient/7"},
                         content=path.read_bytes(), headers=headers | {"Content-Type": "application/octet-stream"})
    assert queued.status_code == 202, queued.text
    assert wait_for_job(client, queued.headers["Location"], headers)["state"] == "done"
    return str(queued.headers["Location"])


def _pixels(content: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(content)).convert("RGB"))


def test_geometry_follows_deep_zoom_and_the_slides_pyramid() -> None:
    zoom = DeepZoom(WIDTH, HEIGHT, (SlideLevel(1000, 700, 1.0), SlideLevel(500, 350, 2.0), SlideLevel(250, 175, 4.0)),
                    0.25)  # fmt: skip
    assert (zoom.max_level, zoom.size(10), zoom.grid(10)) == (10, (1000, 700), (4, 3))
    assert zoom.size(9) == (500, 350) and zoom.size(0) == (1, 1)
    assert [zoom.pyramid_level(level) for level in (10, 9, 8, 7)] == [0, 1, 2, 2]
    assert zoom.tile_box(10, 0, 0) == (0, 0, TILE_SIZE + OVERLAP, TILE_SIZE + OVERLAP)
    assert zoom.tile_box(10, 3, 2) == (761, 507, 239, 193)  # the corner tile: the slide's edge, overlap on two sides
    assert zoom.tile_box(9, 1, 1) == (253, 253, 247, 97)
    assert zoom.min_level == 4  # a tile below reads more than 4096² pixels of the coarsest level (downsample 4)
    root = ET.fromstring(zoom.descriptor())
    assert root.attrib["TileSize"] == str(TILE_SIZE) and root.attrib["Overlap"] == str(OVERLAP)
    assert root.attrib["Format"] == "jpeg" and root.attrib["{urn:cds:deepzoom}Mpp"] == "0.25"


def test_tiles_are_the_slides_pixels_with_errors_cache_scope_and_one_audit_event(
        client: TestClient, pyramid: tuple[Path, list[np.ndarray]]) -> None:  # fmt: skip
    path, levels = pyramid
    headers = bearer(client, Role.PATHOLOGIST)
    location = _read(client, path, headers)
    dzi = client.get(f"{location}/tiles.dzi", headers=headers)
    assert dzi.status_code == 200 and dzi.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(dzi.text)
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert size is not None and (size.attrib["Width"], size.attrib["Height"]) == ("1000", "700")
    assert root.attrib["{urn:cds:deepzoom}Mpp"] == "0.25" and "private" in dzi.headers["cache-control"]

    tiles = f"{location}/tiles_files"
    top = client.get(f"{tiles}/10/1_1.png", headers=headers)  # level 0 of the slide, lossless: its own pixels
    assert top.status_code == 200 and top.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(_pixels(top.content), levels[0][253:509, 253:509])
    corner = client.get(f"{tiles}/10/3_2.png", headers=headers)
    np.testing.assert_array_equal(_pixels(corner.content), levels[0][507:700, 761:1000])
    reduced = client.get(f"{tiles}/9/0_0.png", headers=headers)  # read from the pyramid's level 1 as it is stored
    np.testing.assert_array_equal(_pixels(reduced.content), levels[1][0:255, 0:255])
    jpeg = client.get(f"{tiles}/10/3_2.jpeg", headers=headers)
    assert jpeg.headers["content-type"] == "image/jpeg" and _pixels(jpeg.content).shape == (193, 239, 3)
    assert np.abs(_pixels(jpeg.content).astype(int) - levels[0][507:700, 761:1000]).mean() < 12  # noise and chroma
    assert _pixels(client.get(f"{tiles}/4/0_0.jpeg", headers=headers).content).shape == (11, 16, 3)

    again = client.get(f"{tiles}/10/1_1.png", headers=headers | {"If-None-Match": top.headers["etag"]})
    assert again.status_code == 304 and again.headers["etag"] == top.headers["etag"]

    for tile, code in (("10/4_0.png", "tile_out_of_range"), ("10/0_3.png", "tile_out_of_range"),
                       ("11/0_0.png", "tile_level_unavailable"), ("3/0_0.png", "tile_level_unavailable")):  # fmt: skip
        missing = client.get(f"{tiles}/{tile}", headers=headers)
        assert (missing.status_code, missing.json()["code"]) == (404, code), tile
    for tile in ("10/a_0.png", "10/0_0.gif", "-1/0_0.png", "99/0_0.png", "10/0_-1.png"):
        assert client.get(f"{tiles}/{tile}", headers=headers).status_code == 422, tile
    assert client.get(f"{tiles}/10/0_0.jpeg").status_code == 401

    elsewhere = bearer(client, Role.PATHOLOGIST, subject="dr-other", site="clinic-b")
    assert client.get(f"{location}/tiles.dzi", headers=elsewhere).status_code == 404
    assert client.get(f"{tiles}/10/0_0.jpeg", headers=elsewhere).status_code == 404
    scoped = bearer(client, Role.PATHOLOGIST, patient="Patient/8")
    refused = client.get(f"{tiles}/10/0_0.jpeg", headers=scoped)
    assert refused.status_code == 403 and refused.json()["code"] == "patient_scope"
    own = bearer(client, Role.PATHOLOGIST, patient="Patient/7")
    assert client.get(f"{tiles}/10/0_0.jpeg", headers=own).status_code == 200

    with client.app.state.cds.database.session() as session:  # type: ignore[attr-defined]
        views = session.query(AuditEventRow).filter(AuditEventRow.action == "pathology.viewer.render").all()
    assert len(views) == 2  # one per session (the pathologist's, the patient-scoped one), not one per tile


def test_open_slides_are_kept_a_few_at_a_time_and_dropped_after_a_failed_read(
        pyramid: tuple[Path, list[np.ndarray]], tmp_path: Path) -> None:  # fmt: skip
    other = tmp_path / "other.tif"
    write_pyramid(other, _image()[:300, :400], tile=128, levels=2)
    slides = OpenSlides(size=1)
    with slides.reading(str(pyramid[0])) as first:
        assert first.dimensions == (WIDTH, HEIGHT)
    with slides.reading(str(pyramid[0])) as again:
        assert again is first  # kept open between reads
    with slides.reading(str(other)) as second:
        assert second.dimensions == (400, 300)
    assert list(slides._open) == [str(other)]  # the first was crowded out (and closed)
    with pytest.raises(TileNotFoundError), slides.reading(str(other)):
        raise TileNotFoundError("no such tile")
    assert list(slides._open) == [str(other)]  # a tile it does not have is no reason to close it
    with pytest.raises(RuntimeError), slides.reading(str(other)):
        raise RuntimeError("decoder gone")
    assert list(slides._open) == []
    slides.close()
