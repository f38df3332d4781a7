"""Write an ECG read's outputs where :class:`~cds.results.layout.OutputLayout` says.

The typed result (JSON), the FHIR DiagnosticReport (:func:`cds.interop.fhir_ecg.ecg_report`) and, unless told
not to, the 12-lead printout at true scale as a PNG and a PDF (:func:`cds.interop.ecg_printout.render_printout`).
The report names the patient only when given ``patient_reference``; neither it nor the printout carries the
source's file name.
"""

from __future__ import annotations

import json
from pathlib import Path

from cds.interop.fhir_ecg import ecg_report
from cds.results.ecg import EcgAnalysis
from cds.results.layout import OutputLayout


def write_ecg_outputs(analysis: EcgAnalysis, folder: Path, *, title: str, patient_reference: str | None = None,
                      printout: bool = True) -> list[Path]:  # fmt: skip
    """Write the result, the FHIR report and (with ``printout``) the printout's PNG and PDF; returns their paths."""
    layout = OutputLayout(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result, report = layout.path(OutputLayout.RESULT), layout.path(OutputLayout.REPORT)
    result.write_text(analysis.result.model_dump_json(indent=2), encoding="utf-8")
    document = ecg_report(analysis.result, title=title, patient_reference=patient_reference)
    report.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
    if not printout:
        return [result, report]
    from cds.interop.ecg_printout import render_printout  # matplotlib only when a printout is drawn

    png, pdf = layout.path(OutputLayout.ECG_PRINTOUT), layout.path(OutputLayout.ECG_PRINTOUT_PDF)
    png_bytes, pdf_bytes = render_printout(analysis, title=title)
    png.write_bytes(png_bytes)
    pdf.write_bytes(pdf_bytes)
    return [result, report, png, pdf]
