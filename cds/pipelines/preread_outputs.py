"""Write a radiograph pre-read's outputs.

Typed JSON, FHIR DiagnosticReport, DICOM SR (TID 1500), and per positive finding a heatmap overlay as PNG and as
DICOM secondary capture.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cds.interop.dicom_sc import build_overlay_sc
from cds.interop.dicom_sr import build_classification_sr
from cds.interop.fhir_report import diagnostic_report
from cds.results.imaging import RadiographPreread


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the grey image with the heatmap blended in red-yellow where it is above 0.2."""
    grey = np.repeat((np.clip(image, 0, 1) * 255)[..., None], 3, axis=2)
    heat = np.clip(heatmap, 0, 1)
    colour = np.stack([np.full_like(heat, 255.0), 255.0 * heat, np.zeros_like(heat)], axis=2)
    weight = (alpha * heat * (heat > 0.2))[..., None]
    blended: np.ndarray = np.round(grey * (1 - weight) + colour * weight).astype(np.uint8)
    return blended


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).strip("-").lower()


def write_preread(preread: RadiographPreread, folder: Path, *, title: str) -> list[Path]:
    """Write the outputs; returns their paths.

    ``result.json``, ``diagnostic-report.json``, ``report-sr.dcm`` and per positive finding ``heatmap-<label>.png``
    and ``heatmap-<label>-sc.dcm`` (the DICOM files only when the source was DICOM).
    """
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    document = {
        "result": preread.result.model_dump(mode="json"),
        "source": {"study_uid": preread.source.study_uid, "series_uid": preread.source.series_uid,
                   "sop_instance_uid": preread.source.sop_instance_uid, "modality": preread.source.modality,
                   "file": preread.source.name},
        "stage_ms": {k: round(v, 2) for k, v in preread.stage_ms.items()},
        "heatmaps": sorted(preread.heatmaps),
        "plausibility": preread.plausibility,
    }
    written.append(folder / "result.json")
    written[-1].write_text(json.dumps(document, indent=2), encoding="utf-8")
    report = diagnostic_report(preread.result, study_uid=preread.source.study_uid, title=title)
    written.append(folder / "diagnostic-report.json")
    written[-1].write_text(json.dumps(report, indent=2), encoding="utf-8")
    if preread.header is not None:
        written.append(folder / "report-sr.dcm")
        build_classification_sr(preread.result, preread.header).save_as(written[-1])
    for label, heatmap in preread.heatmaps.items():
        rgb = overlay(preread.image, heatmap)
        written.append(folder / f"heatmap-{_safe(label)}.png")
        Image.fromarray(rgb).save(written[-1])
        if preread.header is not None:
            written.append(folder / f"heatmap-{_safe(label)}-sc.dcm")
            capture = build_overlay_sc(rgb, preread.header, finding=label, model=preread.result.model,
                                       not_for_diagnostic_use=preread.not_for_diagnostic_use)
            capture.save_as(written[-1])
    return written
