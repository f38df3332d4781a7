"""Write a radiograph pre-read's outputs where :class:`~cds.results.layout.OutputLayout` says.

Typed JSON, FHIR DiagnosticReport, DICOM SR (TID 1500), and per positive finding its heatmap four ways: the raw
map (float32 ``.npy``), an overlay PNG, the same overlay as a DICOM secondary capture in the source study, and the
map on the source's grid as a DICOM Parametric Map that viewers can overlay.

Heatmaps are on a fixed probability scale (``"heatmap_scale": "probability"`` in the result): the normalised map
times the finding's probability, so a map's maximum is its finding's probability. Outputs written before carry no
``heatmap_scale``; their maps are scaled to their own peak (see :data:`PEAK_SCALE`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cds.interop.dicom_pmap import build_heatmap_pmap
from cds.interop.dicom_sc import build_overlay_sc
from cds.interop.dicom_sr import build_classification_sr
from cds.interop.fhir_report import PATIENT_ID_SYSTEM, diagnostic_report
from cds.results.imaging import RadiographPreread
from cds.results.layout import OutputLayout

# Heat at or below this probability is left out of overlays (and out of the viewer's layer). Below every operating
# threshold of the chest model (the lowest is 0.073), so each positive finding draws at least where its evidence peaks;
# a finding at its threshold shows only there, faintly, and a certain one where its evidence is moderate too.
HEATMAP_FLOOR = 0.05
PROBABILITY_SCALE = "probability"  # a map's values: the finding's probability times its normalised relevance
SCALE_NOTE = (f"Fixed probability scale: no region shows above the finding's probability; {HEATMAP_FLOOR} and below "
              "is not drawn.")
PEAK_SCALE = "peak"  # outputs written before PROBABILITY_SCALE: each map scaled to its own peak (1 is its strongest)
FLOORS = {PROBABILITY_SCALE: HEATMAP_FLOOR, PEAK_SCALE: 0.2}  # the floor a map is drawn with, by its scale


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 RGB [H, W, 3]: the grey image with the heatmap blended in red-yellow where it is above the floor."""
    grey = np.repeat((np.clip(image, 0, 1) * 255)[..., None], 3, axis=2)
    heat = np.clip(heatmap, 0, 1)
    colour = np.stack([np.full_like(heat, 255.0), 255.0 * heat, np.zeros_like(heat)], axis=2)
    weight = (alpha * heat * (heat > HEATMAP_FLOOR))[..., None]
    blended: np.ndarray = np.round(grey * (1 - weight) + colour * weight).astype(np.uint8)
    return blended


def write_preread(preread: RadiographPreread, folder: Path, *, title: str,
                  patient_system: str = PATIENT_ID_SYSTEM) -> list[Path]:  # fmt: skip
    """Write the outputs into ``folder``; returns their paths.

    The result, the FHIR report, the SR and per positive finding the raw heatmap, its overlay PNG, its secondary
    capture and its Parametric Map (the DICOM files only when the source was DICOM).
    """
    from PIL import Image

    layout = OutputLayout(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [layout.path(OutputLayout.RESULT), layout.path(OutputLayout.REPORT)]
    document = {
        "result": preread.result.model_dump(mode="json"),
        "source": {"study_uid": preread.source.study_uid, "series_uid": preread.source.series_uid,
                   "sop_instance_uid": preread.source.sop_instance_uid, "modality": preread.source.modality,
                   "file": preread.source.name},
        "stage_ms": {k: round(v, 2) for k, v in preread.stage_ms.items()},
        "heatmaps": sorted(preread.heatmaps),
        "heatmap_method": preread.heatmap_method,
        "heatmap_scale": PROBABILITY_SCALE,
        "plausibility": preread.plausibility,
    }
    written[0].write_text(json.dumps(document, indent=2), encoding="utf-8")
    report = diagnostic_report(preread.result, study_uid=preread.source.study_uid, title=title, header=preread.header,
                               patient_system=patient_system, instance_uid=preread.source.sop_instance_uid)
    written[1].write_text(json.dumps(report, indent=2), encoding="utf-8")
    if preread.header is not None:
        written.append(layout.path(OutputLayout.SR))
        build_classification_sr(preread.result, preread.header).save_as(written[-1])
    for label, heatmap in preread.heatmaps.items():
        written.append(layout.path(OutputLayout.heatmap_values(label)))
        np.save(written[-1], np.asarray(heatmap, dtype=np.float32), allow_pickle=False)
        rgb = overlay(preread.image, heatmap)
        written.append(layout.path(OutputLayout.heatmap(label)))
        Image.fromarray(rgb).save(written[-1])
        if preread.header is not None:
            written.append(layout.path(OutputLayout.heatmap_capture(label)))
            capture = build_overlay_sc(rgb, preread.header, finding=label, model=preread.result.model,
                                       not_for_diagnostic_use=preread.not_for_diagnostic_use, scale=SCALE_NOTE)
            capture.save_as(written[-1])
            written.append(layout.path(OutputLayout.heatmap_map(label)))
            build_heatmap_pmap(heatmap, preread.header, finding=label, model=preread.result.model,
                               not_for_diagnostic_use=preread.not_for_diagnostic_use).save_as(written[-1])
    return written
