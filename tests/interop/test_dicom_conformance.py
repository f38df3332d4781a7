"""Every DICOM object a pre-read writes passes dicom3tools: ``dciodvfy`` (each object against its IOD) and
``dcentvfy`` (the outputs agree with their source study on patient, study and series), with no error."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cds.cli.main import app
from training.data.chest_xray import render
from training.data.ct_volumes import generate_case
from training.data.dicom_files import write_radiograph

pytestmark = pytest.mark.skipif(shutil.which("dciodvfy") is None,
                                reason="needs Debian's dicom3tools (make dicom3tools; make test installs it)")


def _errors(command: list[str]) -> list[str]:
    run = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def test_every_dicom_output_passes_dciodvfy_and_dcentvfy(tmp_path: Path) -> None:
    studies = tmp_path / "in"
    pixels, _, sex = render(448, 8, 2, findings={"Effusion", "Cardiomegaly"})
    write_radiograph(studies / "cr.dcm", pixels, sex=sex)
    generate_case(8, 0).write_dicom(studies / "ct")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["preread", str(studies), "--out", str(out), "--saliency-grid", "3"])
    assert result.exit_code == 0, result.output
    outputs = sorted(out.rglob("*.dcm"))
    kinds = {p.name.split("-")[0] for p in outputs}
    assert {"report", "segmentation", "overlay", "heatmap"} <= kinds, kinds  # SR, SEG and both kinds of SC
    assert any(p.name.endswith("-pm.dcm") for p in outputs)  # and the heatmaps' Parametric Maps
    for path in outputs:
        assert _errors(["dciodvfy", "-new", str(path)]) == [], path.name
    sources = sorted(studies.rglob("*.dcm"))
    assert _errors(["dcentvfy", *map(str, sources), *map(str, outputs)]) == []
