"""The outputs of an ECG read: the FHIR report's codes and words, and the printout's true scale read from its pixels."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from fhir.resources.R4B.observation import Observation
from PIL import Image

from cds.interop import ecg_printout as printout
from cds.interop.fhir_ecg import ecg_report
from cds.interop.outputs.ecg import write_ecg_outputs
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from cds.pipelines.ecg.record import STANDARD_LEADS
from cds.results.classification import Finding
from cds.results.ecg import (
    EcgAnalysis,
    EcgFlag,
    EcgResult,
    EcgSource,
    LeadProblems,
    Measurements,
    RhythmCall,
    Severity,
)
from cds.results.layout import OutputLayout

MODEL = ModelRef(name="ecg-rhythm", version="1.2.0", sha256="a" * 64, backend=BackendKind.ONNXRUNTIME)
FILE_NAME = "Doe_John_19600101_ecg.xml"  # a file name that identifies someone: it must reach no output but result.json
PX_PER_MM = printout.DPI / 25.4
MEASURED = Measurements(heart_rate_bpm=72.0, rr_ms=833.3, pr_ms=162.0, qrs_ms=94.0, qt_ms=388.0,
                        qtc_bazett_ms=425.0, qtc_fridericia_ms=412.4, qrs_axis_deg=-15.0, beats=12,
                        leads_measured=STANDARD_LEADS)  # fmt: skip
# LOINC code and UCUM unit each measurement must carry
CODES = {"heart_rate_bpm": ("8867-4", "/min"), "rr_ms": ("8637-1", "ms"), "pr_ms": ("8625-6", "ms"),
         "qrs_ms": ("8633-0", "ms"), "qt_ms": ("8634-8", "ms"), "qtc_bazett_ms": ("76635-2", "ms"),
         "qtc_fridericia_ms": ("76634-5", "ms"), "qrs_axis_deg": ("8632-2", "deg")}  # fmt: skip
STEMI = EcgFlag(code="possible_stemi", severity=Severity.CRITICAL, text="ST elevation of 0.2 mV or more in II, III and aVF",
                leads=("II", "III", "aVF"))  # fmt: skip
QTC = EcgFlag(code="qtc_prolonged", severity=Severity.WARNING, text="QTc (Bazett) 495 ms, above 470 ms")
NOTE = EcgFlag(code="lead_not_measured", severity=Severity.INFO, text="V3 left out of the measurements", leads=("V3",))


def _result(measurements: Measurements = MEASURED, flags: tuple[EcgFlag, ...] = (),
            problems: dict[str, tuple[str, ...]] | None = None, rhythm: str = "sinus_rhythm") -> EcgResult:
    problems = problems or {}
    return EcgResult(
        model=MODEL, input_sha256="b" * 64,
        source=EcgSource(name=FILE_NAME, format="aecg", sampling_hz=500.0, duration_s=10.0),
        quality=tuple(LeadProblems(lead=lead, problems=problems.get(lead, ())) for lead in STANDARD_LEADS),
        measurements=measurements, rhythm=RhythmCall(label=rhythm, evidence="regular R-R, a P wave before each QRS"),
        classifier=(Finding(label="sinus_rhythm", probability=0.91, threshold=0.5, positive=True),
                    Finding(label="atrial_fibrillation", probability=0.06, threshold=0.5, positive=False)),
        flags=flags, intended_use="research", warnings=("not for diagnostic use",))  # fmt: skip


def _beats(fs: float = 500.0, seconds: float = 10.0, rate: float = 72.0) -> np.ndarray:
    """float32 [12, samples] mV: P, Q, R, S and T waves as Gaussians at every beat, the same in every lead."""
    t = np.arange(round(fs * seconds)) / fs
    lead = np.zeros_like(t)
    for beat in np.arange(0.4, seconds, 60.0 / rate):
        for offset, height, width in ((-0.16, 0.15, 0.025), (-0.02, -0.1, 0.008), (0.0, 1.2, 0.01),
                                      (0.025, -0.25, 0.01), (0.3, 0.3, 0.05)):  # fmt: skip
            lead += height * np.exp(-(((t - beat - offset) / width) ** 2))
    return np.tile(lead.astype(np.float32), (12, 1))


def _analysis(signals: np.ndarray, fs: float = 500.0, result: EcgResult | None = None,
              not_for_diagnostic_use: bool = True) -> EcgAnalysis:  # fmt: skip
    return EcgAnalysis(result=result or _result(), signals=signals.astype(np.float32), sampling_hz=fs,
                       not_for_diagnostic_use=not_for_diagnostic_use)


def _observations(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in report["contained"] if o["resourceType"] == "Observation"}


def _by_loinc(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["code"]: o for o in _observations(report).values() for c in o["code"].get("coding", [])
            if c["system"] == "http://loinc.org"}  # fmt: skip


# ---- FHIR report ----------------------------------------------------------------------------------------------


def test_report_validates_and_carries_each_measurement_with_its_loinc_code_and_ucum_unit() -> None:
    report = ecg_report(_result(), title="ECG pre-read", patient_reference="Patient/42")
    DiagnosticReport.model_validate(report)
    for observation in _observations(report).values():
        Observation.model_validate(observation)
    assert report["status"] == "preliminary" and report["subject"] == {"reference": "Patient/42"}
    assert report["category"][0]["coding"][0]["code"] == "EC"
    assert report["category"][0]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0074"
    assert report["code"]["coding"][0] == {"system": "http://loinc.org", "code": "11524-6", "display": "EKG study"}
    device = next(r for r in report["contained"] if r["resourceType"] == "Device")
    assert device["identifier"][0]["value"] == MODEL.sha256
    coded = _by_loinc(report)
    for field, (code, unit) in CODES.items():
        quantity = coded[code]["valueQuantity"]
        assert quantity["system"] == "http://unitsofmeasure.org" and quantity["code"] == unit, field
        assert quantity["value"] == pytest.approx(getattr(MEASURED, field), abs=0.05), field
        assert coded[code]["device"] == {"reference": "#model"} and coded[code]["status"] == "preliminary"
    assert "Bazett" in coded["76635-2"]["method"]["text"] and "Fridericia" in coded["76634-5"]["method"]["text"]
    ids = {f"#{o['id']}" for o in report["contained"]}
    assert {r["reference"] for r in report["result"]} <= ids  # every result points at a contained Observation
    assert FILE_NAME not in json.dumps(report) and "Doe" not in json.dumps(report)


def test_measurements_not_made_are_absent_never_zero() -> None:
    afib = MEASURED.model_copy(update={"pr_ms": None, "qrs_axis_deg": None, "qtc_fridericia_ms": None})
    report = ecg_report(_result(afib, rhythm="atrial_fibrillation"), title="ECG pre-read")
    coded = _by_loinc(report)
    assert {"8625-6", "8632-2", "76634-5"}.isdisjoint(coded)
    assert {"8867-4", "8637-1", "8633-0", "8634-8", "76635-2"} <= set(coded)
    values = [o["valueQuantity"]["value"] for o in coded.values()]
    assert 0 not in values and "PR —" in report["conclusion"] and report["subject"] == {"display": "unidentified"}
    rhythm = _observations(report)["rhythm"]
    assert rhythm["code"]["text"] == "Rhythm" and rhythm["valueCodeableConcept"]["text"] == "Atrial fibrillation"
    assert rhythm["component"][0]["valueQuantity"]["value"] == pytest.approx(0.91)  # the classifier's top class
    assert "Sinus rhythm 0.91" in rhythm["note"][1]["text"]  # ... which disagrees with the rules: both are stated


def test_critical_flag_is_critical_abnormal_and_leads_the_conclusion() -> None:
    report = ecg_report(_result(flags=(QTC, NOTE, STEMI)), title="ECG pre-read")  # critical deliberately last
    flags = [o for o in _observations(report).values() if o["id"].startswith("flag-")]
    assert [o["valueString"] for o in flags] == [STEMI.text, QTC.text, NOTE.text]  # critical first
    interpretation = {o["valueString"]: o.get("interpretation", [{}])[0].get("coding", [{}])[0].get("code")
                      for o in flags}  # fmt: skip
    assert interpretation == {STEMI.text: "AA", QTC.text: "A", NOTE.text: None}
    assert flags[0]["code"]["text"] == "POSSIBLE STEMI — URGENT REVIEW: leads II, III, aVF"
    conclusion = report["conclusion"]
    assert conclusion.startswith("POSSIBLE STEMI — URGENT REVIEW: leads II, III, aVF")
    assert conclusion.index("POSSIBLE STEMI") < conclusion.index("QTc prolonged") < conclusion.index("Caveats")
    for words in ("Sinus rhythm", "HR 72 /min", "PR 162 ms", "QRS 94 ms", "QT 388 ms", "425 ms (Bazett)",
                  "412 ms (Fridericia)", "V3 left out", "not for diagnostic use"):  # fmt: skip
        assert words in conclusion, words


# ---- printout: true scale from the pixels ---------------------------------------------------------------------


def _png(analysis: EcgAnalysis) -> np.ndarray:
    png, _ = printout.render_printout(analysis, title="12-lead ECG")
    image = Image.open(io.BytesIO(png))
    assert image.info["dpi"] == pytest.approx((printout.DPI, printout.DPI), abs=0.01)
    return np.asarray(image.convert("RGB")).astype(np.int16)


def _px(pixels: np.ndarray, x_mm: float, y_mm: float) -> tuple[int, int]:
    """(column, row) of a page point in mm from the bottom left."""
    height, width = pixels.shape[:2]
    return round(x_mm * width / printout.PAGE_MM[0]), round(height - y_mm * height / printout.PAGE_MM[1])


def _centres(mask: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted centres of the runs of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return np.array([np.average(np.arange(a, b), weights=weight[a:b]) for a, b in zip(edges[::2], edges[1::2],
                                                                                      strict=True)])  # fmt: skip


def _trace_y(pixels: np.ndarray, x_mm: float, row: int) -> float:
    """Pixel row of the dark trace crossing column ``x_mm`` inside printout row ``row`` (its darkness-weighted centre)."""
    top = printout.GRID_Y_MM[1] - printout.ROW_MM * row
    column, y0 = _px(pixels, x_mm, top - 8.0)  # below the lead label
    _, y1 = _px(pixels, x_mm, top - printout.ROW_MM)
    darkness = 255 - pixels[y0:y1, column].max(axis=1)
    dark = np.flatnonzero(darkness > 128)
    assert dark.size, f"no trace at {x_mm} mm in row {row}"
    return float(y0 + np.average(dark, weights=darkness[dark]))


def test_grid_is_five_mm_major_one_mm_minor_at_200_dpi() -> None:
    pixels = _png(_analysis(np.zeros((12, 5000))))
    height, width = pixels.shape[:2]
    assert (width, height) == pytest.approx((297 * PX_PER_MM, 210 * PX_PER_MM), abs=1.0)
    (x0, y), (x1, _) = _px(pixels, printout.GRID_X_MM[0] + 0.5, printout.GRID_Y_MM[0] + 2.5), \
        _px(pixels, printout.GRID_X_MM[1] - 0.5, 0)  # a pixel row between horizontal lines, below any trace
    green = pixels[y, x0:x1, 1]
    majors = _centres(green < 185, 255 - green)  # major lines are darker than minor ones
    lines = _centres(green < 250, 255 - green)
    assert len(majors) == 53 and np.abs(np.diff(majors) - 5 * PX_PER_MM).max() < 1.0
    assert len(lines) == 269  # every 1 mm line, majors included
    for centres, period in ((majors, 5 * PX_PER_MM), (lines, PX_PER_MM)):  # lines are snapped to whole pixels:
        index = np.arange(len(centres))  # each within a pixel of a line through them at the true period
        slope, intercept = np.polyfit(index, centres, 1)
        assert slope == pytest.approx(period, abs=0.01)
        assert np.abs(centres - (slope * index + intercept)).max() < 1.0
    column, _ = _px(pixels, printout.TRACE_X_MM, 0)  # t = 0 is on a major line
    assert np.min(np.abs(x0 + majors - column)) < 1.0


def test_calibration_pulse_and_a_one_millivolt_step_are_ten_mm_tall_at_25_mm_per_second() -> None:
    fs, signals = 500.0, np.zeros((12, 5000))
    signals[STANDARD_LEADS.index("II"), 2500:] = 1.0  # a 1 mV step at t = 5 s
    pixels = _png(_analysis(signals, fs))
    ten_mm = 10 * PX_PER_MM
    for row in range(4):  # the pulse: its top at mid-width against the baseline just before it
        pulse = _trace_y(pixels, sum(printout.PULSE_X_MM) / 2, row) - _trace_y(pixels, printout.PULSE_X_MM[0] - 1, row)
        assert -pulse == pytest.approx(ten_mm, abs=1.0)
    strip = 3
    step = _trace_y(pixels, printout.TRACE_X_MM + 7.0 * 25, strip) - _trace_y(pixels, printout.TRACE_X_MM + 3.0 * 25,
                                                                             strip)  # fmt: skip
    assert -step == pytest.approx(ten_mm, abs=1.0)
    # the step's edge is where 5 s is at 25 mm/s: the darkest column of the strip's band is there
    top = printout.GRID_Y_MM[1] - printout.ROW_MM * strip
    (c0, r0), (c1, r1) = _px(pixels, printout.TRACE_X_MM + 1, top - 8), _px(pixels, printout.TRACE_X_MM + 249, top - 39)
    dark_rows = ((pixels[r0:r1, c0:c1].max(axis=2)) < 128).sum(axis=0)
    edge = c0 + int(np.argmax(dark_rows))
    assert edge == pytest.approx(_px(pixels, printout.TRACE_X_MM + 5.0 * 25, 0)[0], abs=1.5)
    assert dark_rows.max() >= ten_mm - 2  # the vertical edge spans the whole step


def test_a_huge_signal_stays_in_its_row_and_a_one_sample_spike_keeps_its_height() -> None:
    fs, signals = 2000.0, np.zeros((12, 20000))
    signals[STANDARD_LEADS.index("aVR"), 6000:8000] = -60.0  # -60 mV for 3-4 s, in aVR's column (2.5-5 s), top row
    signals[STANDARD_LEADS.index("I"), 2000:3000] = 60.0  # +60 mV for 1-1.5 s, in lead I's column (0-2.5 s)
    signals[STANDARD_LEADS.index("II"), 14001] = 2.0  # one sample of 2 mV at 7 s, 4 samples per pixel column
    pixels = _png(_analysis(signals, fs))
    # row 1 under aVR's column: nothing dark but its own baseline (aVL at 0 mV) and column marks
    top1 = printout.GRID_Y_MM[1] - printout.ROW_MM
    baseline = _px(pixels, 0, printout.row_baseline_mm(1))[1]
    (c0, r0), (c1, r1) = _px(pixels, printout.TRACE_X_MM + 64, top1 - 8), _px(pixels, printout.TRACE_X_MM + 123, top1 - 39)
    band = pixels[r0:r1, c0:c1].max(axis=2) < 128
    band[baseline - r0 - 8: baseline - r0 + 9] = False
    assert not band.any()
    # between the grid's top and the header: nothing dark above lead I's column
    (c0, r0), (c1, r1) = _px(pixels, printout.TRACE_X_MM, printout.GRID_Y_MM[1] + 7), \
        _px(pixels, printout.TRACE_X_MM + 62, printout.GRID_Y_MM[1] + 0.5)
    assert not (pixels[r0:r1, c0:c1].max(axis=2) < 128).any()
    # the spike: 20 mm above the strip's baseline
    x = printout.TRACE_X_MM + 7.0005 * 25
    column, peak_row = _px(pixels, x, printout.row_baseline_mm(3) + 20)
    window = pixels[peak_row - 3: peak_row + 4, column - 2: column + 3].max(axis=2)
    assert (window < 128).any()


def test_short_record_draws_what_there_is() -> None:
    pixels = _png(_analysis(_beats(seconds=4.0)))
    for row, strip_time in ((0, 2.0), (3, 3.7)):  # drawn: lead I's column, the strip's first 4 s
        _trace_y(pixels, printout.TRACE_X_MM + strip_time * 25, row)
    for row, t in ((0, 6.0), (2, 8.0), (3, 6.0)):  # not drawn: after the record's end
        top = printout.GRID_Y_MM[1] - printout.ROW_MM * row
        (c, r0), (_, r1) = _px(pixels, printout.TRACE_X_MM + t * 25, top - 8), _px(pixels, 0, top - 39)
        assert not (pixels[r0:r1, c].max(axis=1) < 128).any()


def test_flags_disclaimer_and_lead_problems_are_on_the_page() -> None:
    result = _result(flags=(QTC, STEMI), problems={"V3": ("lead_off",), "aVL": ("noise", "baseline_wander")})
    analysis = _analysis(_beats(), result=result)
    texts = printout.page_texts(analysis, "12-lead ECG")
    words = [t.text for t in texts]
    stemi = next(t for t in texts if t.text.startswith("POSSIBLE STEMI — URGENT REVIEW: leads II, III, aVF"))
    assert stemi.colour == printout.CRITICAL and words.index(stemi.text) < next(
        i for i, w in enumerate(words) if w.startswith("QTc prolonged"))
    assert any("HR 72 /min" in w and "QTc 425 ms (Bazett), 412 ms (Fridericia)" in w and "QRS axis -15°" in w
               for w in words)  # fmt: skip
    assert printout.DISCLAIMER in words and any("ecg-rhythm:1.2.0" in w and "25 mm/s   10 mm/mV" in w for w in words)
    assert "V3 — lead off" in words and "aVL — noise, baseline wander" in words and "V6" in words
    assert not any(FILE_NAME in w for w in words)
    assert printout.DISCLAIMER not in [t.text for t in printout.page_texts(
        _analysis(_beats(), result=result, not_for_diagnostic_use=False), "12-lead ECG")]
    # in the pixels: V3's label is drawn in the warning colour, V6's (no problem) is not
    pixels = _png(analysis)
    orange = (np.abs(pixels - np.array([0xB3, 0x59, 0x00])).max(axis=2) < 40)
    label_top = printout.GRID_Y_MM[1] - 2 * printout.ROW_MM - 4.0
    for column, expected in ((2, True), (3, False)):  # V3, V6
        x = printout.TRACE_X_MM + column * 62.5
        (c0, r0), (c1, r1) = _px(pixels, x, label_top + 2.5), _px(pixels, x + 30, label_top - 2.5)
        assert bool(orange[r0:r1, c0:c1].any()) is expected


def test_pdf_is_one_a4_landscape_page() -> None:
    _, pdf = printout.render_printout(_analysis(_beats()), title="12-lead ECG")
    assert pdf.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    assert len(boxes) == 1 and len(re.findall(rb"/Type\s*/Page\b", pdf)) == 1
    width, height = (float(v) for v in boxes[0])
    assert (width, height) == pytest.approx((297 / 25.4 * 72, 210 / 25.4 * 72), abs=0.1)  # 841.89 x 595.28 pt
    assert FILE_NAME.encode() not in pdf


# ---- writer ---------------------------------------------------------------------------------------------------


def test_writer_puts_each_output_where_the_layout_says(tmp_path: Path) -> None:
    analysis = _analysis(_beats(), result=_result(flags=(STEMI,)))
    layout = OutputLayout(tmp_path / "out")
    written = write_ecg_outputs(analysis, layout.folder, title="12-lead ECG pre-read")
    present = layout.present()
    assert {p.name for p in written} == {f.name for f in present} == {
        "result.json", "diagnostic-report.json", "ecg-12-lead.png", "ecg-12-lead.pdf"}
    assert layout.find("ecg-12-lead.pdf").media_type == "application/pdf"
    assert layout.find("ecg-12-lead.png").media_type == "image/png"
    assert EcgResult.model_validate_json(layout.path(OutputLayout.RESULT).read_text()) == analysis.result
    report = json.loads(layout.path(OutputLayout.REPORT).read_text(encoding="utf-8"))
    assert report["conclusion"].startswith("POSSIBLE STEMI — URGENT REVIEW")
    assert layout.path(OutputLayout.ECG_PRINTOUT).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert layout.path(OutputLayout.ECG_PRINTOUT_PDF).read_bytes()[:5] == b"%PDF-"
    bare = OutputLayout(tmp_path / "bare")
    written = write_ecg_outputs(analysis, bare.folder, title="t", patient_reference="Patient/9", printout=False)
    assert [p.name for p in written] == [f.name for f in bare.present()] == ["result.json", "diagnostic-report.json"]
    assert json.loads(bare.path(OutputLayout.REPORT).read_text())["subject"] == {"reference": "Patient/9"}
