"""Reading 12-lead ECGs: pydicom's real 12-lead file, WFDB, HL7 aECG and CSV written from one simulated ECG read
back alike, eight stored leads completed by Einthoven's and Goldberger's relations, and malformed inputs refused
with their reasons."""

from __future__ import annotations

from pathlib import Path

import neurokit2 as nk
import numpy as np
import pytest
import wfdb
from pydicom.data import get_testdata_file

from cds.errors import InvalidInputError
from cds.pipelines.ecg.readers import read_ecg
from cds.pipelines.ecg.record import STANDARD_LEADS, lead_name

PYDICOM_ECG = Path(get_testdata_file("waveform_ecg.dcm", download=False))
AECG_CODES = {"I": "MDC_ECG_LEAD_I", "II": "MDC_ECG_LEAD_II", "III": "MDC_ECG_LEAD_III", "aVR": "MDC_ECG_LEAD_AVR",
              "aVL": "MDC_ECG_LEAD_AVL", "aVF": "MDC_ECG_LEAD_AVF"} | {f"V{i}": f"MDC_ECG_LEAD_V{i}" for i in range(1, 7)}  # fmt: skip


@pytest.fixture(scope="module")
def simulated() -> dict[str, np.ndarray]:
    """A simulated 12-lead ECG (mV), 10 s at 500 Hz, rounded to whole microvolts as carts store it."""
    frame = nk.ecg_simulate(duration=10, sampling_rate=500, method="multileads", random_state=7)
    return {lead: np.round(frame[lead].to_numpy() * 1000) / 1000 for lead in STANDARD_LEADS}


def _as_array(leads: dict[str, np.ndarray]) -> np.ndarray:
    return np.array([leads[name] for name in STANDARD_LEADS])


def test_pydicoms_12_lead_file_is_read_in_millivolts_in_standard_order() -> None:
    record = read_ecg(PYDICOM_ECG)
    assert record.signals.shape == (12, 10_000) and record.sampling_hz == 1000 and record.duration_s == 10
    assert record.derived == () and record.metadata["Manufacturer"].startswith("Mortara")
    peaks = record.signals.max(axis=1)
    assert 0.5 < peaks[STANDARD_LEADS.index("II")] < 3  # an R wave of about a millivolt, not microvolts
    einthoven = record.lead("II") - record.lead("I")
    assert np.abs(record.lead("III") - einthoven).max() < 0.01  # recorded leads obey III = II - I


def test_wfdb_aecg_and_csv_give_the_same_record(simulated: dict[str, np.ndarray], tmp_path: Path) -> None:
    wfdb.wrsamp("sim", fs=500, units=["mV"] * 12, sig_name=list(STANDARD_LEADS), p_signal=_as_array(simulated).T,
                fmt=["16"] * 12, adc_gain=[1000.0] * 12, baseline=[0] * 12, write_dir=str(tmp_path))  # fmt: skip
    (tmp_path / "sim.xml").write_text(_aecg(simulated, 500))
    lines = ["# sampling_hz: 500", "# unit: uV", ",".join(STANDARD_LEADS)]
    lines += [",".join(f"{v * 1000:.0f}" for v in row) for row in _as_array(simulated).T]
    (tmp_path / "sim.csv").write_text("\n".join(lines))
    expected = _as_array(simulated)
    for name in ("sim.hea", "sim.dat", "sim.xml", "sim.csv"):
        record = read_ecg(tmp_path / name)
        assert record.sampling_hz == 500 and record.signals.shape == (12, 5000), name
        np.testing.assert_allclose(record.signals, expected, atol=1.5e-3, err_msg=name)


def test_eight_stored_leads_are_completed_and_marked_derived(simulated: dict[str, np.ndarray],
                                                             tmp_path: Path) -> None:  # fmt: skip
    stored = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
    lines = ["time_s," + ",".join(f"lead {name}" for name in stored)]
    lines += [f"{i / 500:.4f}," + ",".join(f"{simulated[name][i] * 1000:.0f}" for name in stored) for i in range(5000)]
    (tmp_path / "eight.csv").write_text("\n".join(lines))
    record = read_ecg(tmp_path / "eight.csv")
    assert record.sampling_hz == pytest.approx(500) and set(record.derived) == {"III", "aVR", "aVL", "aVF"}
    lead_i, lead_ii = record.lead("I").astype(float), record.lead("II").astype(float)
    np.testing.assert_allclose(record.lead("III"), lead_ii - lead_i, atol=1e-6)
    np.testing.assert_allclose(record.lead("aVR"), -(lead_i + lead_ii) / 2, atol=1e-6)
    np.testing.assert_allclose(record.lead("aVL"), lead_i - lead_ii / 2, atol=1e-6)
    np.testing.assert_allclose(record.lead("aVF"), lead_ii - lead_i / 2, atol=1e-6)


@pytest.mark.parametrize(("label", "name"), [("Lead I (Einthoven)", "I"), ("MDC_ECG_LEAD_AVR", "aVR"), ("avl", "aVL"),
                                             ("lead ii", "II"), ("V6", "V6"), ("V7", None), ("Pleth", None)])  # fmt: skip
def test_lead_labels_of_every_source_are_matched(label: str, name: str | None) -> None:
    assert lead_name(label) == name


def _write_wfdb(tmp_path: Path, signal: np.ndarray, fs: float, names: list[str]) -> Path:
    wfdb.wrsamp("rec", fs=fs, units=["mV"] * len(names), sig_name=names, p_signal=signal.T, fmt=["16"] * len(names),
                adc_gain=[1000.0] * len(names), baseline=[0] * len(names), write_dir=str(tmp_path))  # fmt: skip
    return tmp_path / "rec.hea"


def test_malformed_inputs_are_refused_with_their_reasons(simulated: dict[str, np.ndarray], tmp_path: Path) -> None:
    cases: dict[str, tuple[Path, str]] = {}
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    header = _write_wfdb(truncated, _as_array(simulated), 500, list(STANDARD_LEADS))
    data = truncated / "rec.dat"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    cases["truncated WFDB"] = (header, "truncated")
    slow = tmp_path / "slow"
    slow.mkdir()
    cases["100 Hz"] = (_write_wfdb(slow, _as_array(simulated)[:, ::5], 100, list(STANDARD_LEADS)), "wrong_sample_rate")
    holter = tmp_path / "holter"
    holter.mkdir()
    three = np.array([simulated["I"], simulated["II"], simulated["V2"]])
    cases["3-lead Holter"] = (_write_wfdb(holter, three, 500, ["I", "II", "V2"]), "wrong_lead_set")
    day = tmp_path / "day"
    day.mkdir()
    (day / "rec.hea").write_text("rec 12 500 43200000\n" + "".join(
        f"rec.dat 16 1000/mV 16 0 0 0 0 {name}\n" for name in STANDARD_LEADS))  # a day of 12 leads, header only
    cases["a day-long recording"] = (day / "rec.hea", "too_long")
    short = tmp_path / "short.csv"
    short.write_text("# sampling_hz: 500\nI,II,V1,V2,V3,V4,V5,V6\n" + "1,2,3,4,5,6,7,8\n" * 500)
    cases["1 s"] = (short, "too_short")
    undated = tmp_path / "undated.csv"
    undated.write_text("I,II,V1,V2,V3,V4,V5,V6\n" + "1,2,3,4,5,6,7,8\n" * 5000)
    cases["no sampling rate"] = (undated, "missing_sampling_rate")
    volts = tmp_path / "volts.csv"
    volts.write_text("# sampling_hz: 500\n# unit: furlongs\nI,II,V1,V2,V3,V4,V5,V6\n" + "1,2,3,4,5,6,7,8\n" * 5000)
    cases["unknown unit"] = (volts, "unsupported_unit")
    bomb = tmp_path / "entities.xml"
    bomb.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                    '<AnnotatedECG xmlns="urn:hl7-org:v3">&b;</AnnotatedECG>')  # fmt: skip
    cases["XML with entities"] = (bomb, "invalid_ecg")
    bad_increment = tmp_path / "increment.xml"
    bad_increment.write_text(_aecg(simulated, 500).replace('increment value="0.002"', 'increment value="0,002"'))
    cases["a time increment with a decimal comma"] = (bad_increment, "missing_sampling_rate")
    other_xml = tmp_path / "other.xml"
    other_xml.write_text("<ClinicalDocument/>")
    cases["other XML"] = (other_xml, "not_ecg")
    cases["a CT slice"] = (Path(get_testdata_file("CT_small.dcm", download=False)), "not_ecg")
    text = tmp_path / "notes.bin"
    text.write_bytes(b"\x00\x01 not an ecg")
    cases["unknown bytes"] = (text, "unsupported_format")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    cases["empty"] = (empty, "invalid_ecg")
    for what, (path, code) in cases.items():
        with pytest.raises(InvalidInputError) as refused:
            read_ecg(path)
        assert refused.value.code == code, (what, refused.value.code, refused.value.message)


def _aecg(leads: dict[str, np.ndarray], fs: float) -> str:
    sequences = [f'<component><sequence><code code="TIME_ABSOLUTE" codeSystem="2.16.840.1.113883.5.4"/>'
                 f'<value xsi:type="GLIST_TS"><head value="20261206101500.000"/><increment value="{1 / fs:g}" '
                 'unit="s"/></value></sequence></component>']  # fmt: skip
    for name, code in AECG_CODES.items():
        digits = " ".join(str(int(v)) for v in np.round(leads[name] * 1000 / 2.5))  # 2.5 µV per digit
        sequences.append(f'<component><sequence><code code="{code}" codeSystem="2.16.840.1.113883.6.24"/>'
                         f'<value xsi:type="SLIST_PQ"><origin value="0" unit="uV"/><scale value="2.5" unit="uV"/>'
                         f"<digits>{digits}</digits></value></sequence></component>")  # fmt: skip
    return ('<?xml version="1.0" encoding="UTF-8"?><AnnotatedECG xmlns="urn:hl7-org:v3" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><component><series><code code="RHYTHM"/>'
            f'<component><sequenceSet>{"".join(sequences)}</sequenceSet></component></series></component>'
            "</AnnotatedECG>")  # fmt: skip


def test_text_ecgs_and_signal_files_over_their_caps_are_refused_before_parsing(
        simulated: dict[str, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    import cds.pipelines.ecg.readers as readers

    lines = ["# sampling_hz: 500", ",".join(STANDARD_LEADS)]
    lines += [",".join(f"{v * 1000:.0f}" for v in row) for row in _as_array(simulated).T]
    big = tmp_path / "big.csv"
    big.write_text("\n".join(lines))
    (tmp_path / "big.xml").write_text(_aecg(simulated, 500))
    _write_wfdb(tmp_path, _as_array(simulated), 500, list(STANDARD_LEADS))
    monkeypatch.setattr(readers, "MAX_TEXT_ECG_BYTES", big.stat().st_size - 1)
    monkeypatch.setattr(readers, "MAX_ECG_BYTES", 1000)  # the .dat is 120 kB, its header under 1 kB
    for name in ("big.csv", "big.xml", "rec.hea"):
        with pytest.raises(InvalidInputError) as refused:
            read_ecg(tmp_path / name)
        assert refused.value.code == "input_too_large", name


def test_a_wfdb_records_identity_covers_its_signal_file(simulated: dict[str, np.ndarray], tmp_path: Path) -> None:
    from cds.pipelines.ecg.pipeline import input_sha256

    header = _write_wfdb(tmp_path, _as_array(simulated), 500, list(STANDARD_LEADS))
    before = input_sha256(header, "wfdb")
    signal = tmp_path / "rec.dat"
    data = bytearray(signal.read_bytes())
    data[1000] ^= 0xFF  # one sample changed, the header untouched
    signal.write_bytes(bytes(data))
    assert input_sha256(header, "wfdb") != before
    assert input_sha256(tmp_path / "rec.dat", "wfdb") == input_sha256(header, "wfdb")  # named by either file
