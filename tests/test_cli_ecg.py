"""``cds ecg``: a folder of ECGs in every format read with the shipped rhythm model; each ECG's outputs written,
bad ones listed in refused.json with their reasons, critical flags first in the summary, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import wfdb
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from cds.cli.main import app
from cds.pipelines.ecg.record import STANDARD_LEADS
from training.data.ecg_signals import generate_ecg

PYDICOM_ECG = Path(get_testdata_file("waveform_ecg.dcm", download=False))


def _csv(path: Path, signals: np.ndarray, fs: float, leads: tuple[str, ...] = STANDARD_LEADS) -> Path:
    rows = [f"# sampling_hz: {fs:g}", "# unit: uV", ",".join(leads)]
    rows += [",".join(f"{v * 1000:.0f}" for v in sample) for sample in signals.T]
    path.write_text("\n".join(rows))
    return path


def test_a_folder_of_ecgs_is_read_and_the_bad_ones_listed(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "real.dcm").write_bytes(PYDICOM_ECG.read_bytes())
    stemi = generate_ecg(np.random.default_rng([720_000, 1]), "sinus_rhythm", sampling_hz=500, duration_s=10,
                         st_mv={"V2": 0.35, "V3": 0.35, "V4": 0.3})  # fmt: skip
    _csv(inbox / "anterior.csv", stemi.signals, 500)
    af = generate_ecg(np.random.default_rng([720_000, 2]), "atrial_fibrillation", sampling_hz=360, duration_s=10)
    wfdb.wrsamp("af", fs=360, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=af.signals.T.astype(float),
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(inbox))  # fmt: skip
    _csv(inbox / "holter.csv", af.signals[[0, 1, 6]], 360, ("I", "II", "V1"))
    (inbox / "notes.txt").write_text("not an ECG at all")
    output = tmp_path / "out"
    run = CliRunner().invoke(app, ["ecg", str(inbox), "--output", str(output), "--sex", "female", "--age", "70"])
    assert run.exit_code == 0, run.output
    refused = {Path(r["file"]).name: r["reason"] for r in json.loads((output / "refused.json").read_text())}
    assert refused == {"holter.csv": "wrong_lead_set", "notes.txt": "invalid_ecg"}
    for name in ("real", "anterior", "af"):
        files = {p.name for p in (output / name).iterdir()}
        assert files == {"result.json", "diagnostic-report.json", "ecg-12-lead.png", "ecg-12-lead.pdf"}, name
    anterior = json.loads((output / "anterior" / "result.json").read_text())
    assert anterior["flags"][0]["code"] == "possible_stemi" and anterior["source"]["format"] == "csv"
    line = next(line for line in run.output.splitlines() if line.startswith("anterior.csv"))
    assert line.startswith("anterior.csv: POSSIBLE STEMI")  # critical first
    af_result = json.loads((output / "af" / "result.json").read_text())
    assert af_result["source"]["format"] == "wfdb" and af_result["rhythm"]["label"] == "atrial_fibrillation"
    real = json.loads((output / "real" / "result.json").read_text())
    assert real["source"]["sampling_hz"] == 1000 and real["measurements"]["pr_ms"] is not None
    top = max(real["classifier"], key=lambda finding: finding["probability"])
    assert real["rhythm"]["label"] == top["label"] == "sinus_rhythm"  # as the cart that recorded it says
    assert "3 read, 2 refused" in run.output


def test_only_bad_input_exits_2_and_bad_options_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("# sampling_hz: 500\nI,II\n1,2\n")
    run = CliRunner().invoke(app, ["ecg", str(bad), "--output", str(tmp_path / "out")])
    assert run.exit_code == 2 and "0 read, 1 refused" in run.output
    wrong = CliRunner().invoke(app, ["ecg", str(bad), "--sex", "unknown", "--output", str(tmp_path / "o2")])
    assert wrong.exit_code == 2 and "male or female" in wrong.output
