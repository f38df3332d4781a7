"""Write a CT segmentation's outputs where :class:`~cds.results.layout.OutputLayout` says.

Typed JSON, FHIR DiagnosticReport (one Observation per structure volume), DICOM SEG (the label volume, one segment
per structure), DICOM SR (TID 1500 with one volumetric measurement per structure, referencing its SEG segment), and
an overlay of the slice with the most segmented voxels as PNG and as DICOM secondary capture.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom import Dataset

from cds.errors import InvalidInputError
from cds.interop.dicom_sc import build_overlay_sc
from cds.interop.dicom_seg import build_segmentation
from cds.interop.dicom_sr import build_segmentation_sr
from cds.interop.fhir_report import PATIENT_ID_SYSTEM, diagnostic_report
from cds.results.imaging import CtSegmentation
from cds.results.layout import OutputLayout

DISPLAY_WINDOW = (-160.0, 240.0)  # abdominal soft-tissue window (HU) for the overlay
PALETTE = np.array([(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
                    (145, 30, 180), (70, 240, 240), (240, 50, 230)], dtype=np.float64)


def label_overlay(hu: np.ndarray, labels: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """uint8 RGB [H, W, 3]: one slice in the soft-tissue window with each label blended in its own colour."""
    low, high = DISPLAY_WINDOW
    grey = np.repeat((np.clip((hu - low) / (high - low), 0, 1) * 255)[..., None], 3, axis=2)
    colour = PALETTE[np.asarray(labels, dtype=np.int64) % len(PALETTE)]
    weight = (alpha * (labels > 0))[..., None]
    blended: np.ndarray = np.round(grey * (1 - weight) + colour * weight).astype(np.uint8)
    return blended


def _headers_in_slice_order(ct: CtSegmentation, headers: Sequence[Dataset]) -> list[Dataset]:
    by_uid = {str(h.get("SOPInstanceUID", "")): h for h in headers}
    missing = [uid for uid in ct.volume.sop_instance_uids if uid not in by_uid]
    if missing:
        raise InvalidInputError(f"{len(missing)} slices of the segmented volume are not among the instances given",
                                code="slice_count_mismatch")
    return [by_uid[uid] for uid in ct.volume.sop_instance_uids]


def write_segmentation(ct: CtSegmentation, sources: Sequence[Dataset], folder: Path, *, title: str,
                       not_for_diagnostic_use: bool = True, patient_system: str = PATIENT_ID_SYSTEM) -> list[Path]:
    """Write the outputs into ``folder``; returns their paths.

    The result, the FHIR report, the SEG, the SR, and the overlay as PNG and secondary capture. ``sources`` are
    the series' DICOM headers (any order; matched by SOP Instance UID).
    """
    from PIL import Image

    headers = _headers_in_slice_order(ct, sources)
    layout = OutputLayout(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result, volume, written = ct.result, ct.volume, []
    document = {
        "result": result.model_dump(mode="json"),
        "source": {"study_uid": volume.study_uid, "series_uid": volume.series_uid, "modality": volume.modality,
                   "slices": len(volume.sop_instance_uids)},
        "stage_ms": {k: round(v, 2) for k, v in ct.stage_ms.items()},
    }
    written.append(layout.path(OutputLayout.RESULT))
    written[-1].write_text(json.dumps(document, indent=2), encoding="utf-8")
    written.append(layout.path(OutputLayout.REPORT))
    report = diagnostic_report(result, study_uid=volume.study_uid, title=title, header=headers[0] if headers else None,
                               patient_system=patient_system, instance_uid=volume.series_uid)
    written[-1].write_text(json.dumps(report, indent=2), encoding="utf-8")
    names = [s.label for s in result.structures]
    seg = build_segmentation(ct.labels, headers, names, result.model)
    written.append(layout.path(OutputLayout.SEGMENTATION))
    seg.save_as(written[-1])
    volumes = [(s.label, s.volume_ml) for s in result.structures]
    written.append(layout.path(OutputLayout.SR))
    build_segmentation_sr(seg, volumes, result.model, input_sha256=result.input_sha256).save_as(written[-1])
    index = int(np.argmax((ct.labels > 0).reshape(len(ct.labels), -1).sum(axis=1)))
    rgb = label_overlay(volume.voxels[index], ct.labels[index])
    written.append(layout.path(OutputLayout.OVERLAY))
    Image.fromarray(rgb).save(written[-1])
    capture = build_overlay_sc(rgb, headers[index], finding="segmentation",
                               model=result.model, not_for_diagnostic_use=not_for_diagnostic_use)
    written.append(layout.path(OutputLayout.OVERLAY_CAPTURE))
    capture.save_as(written[-1])
    return written
