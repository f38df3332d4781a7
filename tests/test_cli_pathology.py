"""``cds pathology`` end to end with the shipped model: outputs per slide, refusals listed, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from typer.testing import CliRunner

from cds.cli.main import app
from tests.pipelines.pathology.slides import tumour_layout, write_pyramid
from training.data.he_slide import write_slide
from training.data.he_tiles import he_tile

runner = CliRunner()


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a tumour slide, a blank slide, a tile, and three files that must be refused."""
    folder = tmp_path_factory.mktemp("slides")
    write_slide(folder / "tumour.tif", 3072, 2048, seed=8, mpp=0.5, tile=256, factor=2,
                layout=tumour_layout(3072, 2048))
    write_slide(folder / "blank.tif", 2048, 1536, seed=6, mpp=0.5, tile=256, factor=2, blank=True)
    Image.fromarray(he_tile(1, seed=41)).save(folder / "tile.png")
    data = (folder / "tumour.tif").read_bytes()
    (folder / "truncated.tif").write_bytes(data[: len(data) // 2])
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (224, 224), dtype=np.uint8)).save(folder / "grey.png")
    write_pyramid(folder / "huge.tif", np.full((256, 256, 3), 200, np.uint8), levels=1)
    with tifffile.TiffFile(folder / "huge.tif", mode="r+b") as tif:  # declares 200,000 × 200,000 pixels
        tif.pages[0].tags["ImageWidth"].overwrite(200_000)
        tif.pages[0].tags["ImageLength"].overwrite(200_000)
    return folder


def test_a_folder_is_read_past_its_bad_files(slides: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["pathology", str(slides), "--output", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "3 read, 3 refused" in result.output
    refused = {Path(r["file"]).name: r["reason"] for r in json.loads((tmp_path / "refused.json").read_text())}
    assert refused == {"truncated.tif": "truncated_file", "grey.png": "not_rgb", "huge.tif": "slide_too_large"}
    tumour = json.loads((tmp_path / "tumour" / "result.json").read_text())
    assert tumour["status"] == "scored" and tumour["score"]["positive"] is True
    assert tumour["model"]["name"] == "pathology-demo" and len(tumour["input_sha256"]) == 64
    assert (tmp_path / "tumour" / "heatmap.png").is_file()
    report = json.loads((tmp_path / "tumour" / "diagnostic-report.json").read_text())
    assert report["resourceType"] == "DiagnosticReport" and "tumour suspected" in report["conclusion"]
    blank = json.loads((tmp_path / "blank" / "result.json").read_text())
    assert blank["status"] == "no_tissue" and blank["score"] is None
    assert not (tmp_path / "blank" / "heatmap.png").exists()
    tile = json.loads((tmp_path / "tile" / "result.json").read_text())
    assert tile["tiles"]["scored"] == 1 and tile["finding"]["positive"] is True
    assert "tumour.tif: tumour POSITIVE" in result.output and "blank.tif: no tissue" in result.output


def test_a_single_refused_file_exits_2_with_its_reason(slides: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["pathology", str(slides / "tumour.tif"), "--output", str(tmp_path),
                                 "--max-pixels", "1000000"])
    assert result.exit_code == 2
    assert "slide_too_large" in result.output and "0 read, 1 refused" in result.output
    (refusal,) = json.loads((tmp_path / "refused.json").read_text())
    assert refusal["reason"] == "slide_too_large" and "1,000,000" in refusal["message"]


def test_missing_input_and_unknown_model_are_clear_errors(slides: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["pathology", str(tmp_path / "absent.tif"), "--output", str(tmp_path)])
    assert result.exit_code == 2 and "input_missing" in result.output
    result = runner.invoke(app, ["pathology", str(slides / "tile.png"), "--model", "pathology-nope"])
    assert result.exit_code == 2 and "pathology-demo" in result.output  # the error lists the registered models
    result = runner.invoke(app, ["pathology", str(slides / "tile.png"), "--model", "lesion-demo"])
    assert result.exit_code == 2 and "wrong_task" in result.output
