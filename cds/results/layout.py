"""Which file holds what: the one place that names every output of a read and its media type.

A read writes its outputs into one folder: a pre-read outcome into ``<job output>/<uid>/`` (:meth:`OutputLayout.
of_outcome`), a slide read into the job's output folder. Writers (:mod:`cds.interop.outputs`) ask the layout where
each file goes; readers (routes, the viewer, the CLI) ask it what a name is and which files a read left. Per-finding
files carry the finding's label in their name as a slug (``heatmap-pleural-effusion.png``).

A radiograph finding's heatmap is saved as the overlay a person looks at (PNG, and a DICOM secondary capture in the
source study) and as the raw map (float32 ``.npy``, values in [0, 1] on the model's input grid), so nothing
downstream has to recover the map from an overlay's pixels.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cds.errors import OutputNotFoundError

JSON, DICOM, PNG, NPY = "application/json", "application/dicom", "image/png", "application/octet-stream"
PDF = "application/pdf"


class OutputKind(StrEnum):
    """What an output file is."""

    RESULT = "result"  # the typed result, JSON
    REPORT = "report"  # FHIR R4 DiagnosticReport, JSON
    SR = "sr"  # DICOM Structured Report
    SEGMENTATION = "segmentation"  # DICOM SEG
    HEATMAP = "heatmap"  # a finding's (or a slide's) heatmap overlay, PNG
    HEATMAP_CAPTURE = "heatmap_capture"  # the same overlay as a DICOM secondary capture
    HEATMAP_VALUES = "heatmap_values"  # the raw heatmap, float32 .npy
    HEATMAP_MAP = "heatmap_map"  # the raw heatmap on the source's grid as a DICOM Parametric Map
    OVERLAY = "overlay"  # a segmentation drawn on its busiest slice, PNG
    OVERLAY_CAPTURE = "overlay_capture"  # the same as a DICOM secondary capture
    PRINTOUT = "printout"  # an ECG's 12-lead page at true scale, PNG
    PRINTOUT_PDF = "printout_pdf"  # the same page as a PDF (A4 landscape)
    SIGNED_REPORT = "signed_report"  # the FHIR DiagnosticReport a specialist signed (final or amended), JSON
    SIGNED_SR = "signed_sr"  # the same as a DICOM SR: COMPLETE, VERIFIED, the reader as Verifying Observer


@dataclass(frozen=True)
class OutputFile:
    """One output: its kind, file name, media type, and the finding it belongs to (per-finding files)."""

    kind: OutputKind
    name: str
    media_type: str
    label: str | None = None


def slug(label: str) -> str:
    """A label as it appears in file names: letters and digits kept, anything else ``-``, lower case."""
    return "".join(c if c.isalnum() else "-" for c in label).strip("-").lower() or "unnamed"


class OutputLayout:
    """The outputs of one read, in ``folder``.

    Args:
        folder: Where the read writes its files.
    """

    RESULT = OutputFile(OutputKind.RESULT, "result.json", JSON)
    REPORT = OutputFile(OutputKind.REPORT, "diagnostic-report.json", JSON)
    SR = OutputFile(OutputKind.SR, "report-sr.dcm", DICOM)
    SEGMENTATION = OutputFile(OutputKind.SEGMENTATION, "segmentation-seg.dcm", DICOM)
    OVERLAY = OutputFile(OutputKind.OVERLAY, "overlay.png", PNG)
    OVERLAY_CAPTURE = OutputFile(OutputKind.OVERLAY_CAPTURE, "overlay-sc.dcm", DICOM)
    SLIDE_HEATMAP = OutputFile(OutputKind.HEATMAP, "heatmap.png", PNG)
    ECG_PRINTOUT = OutputFile(OutputKind.PRINTOUT, "ecg-12-lead.png", PNG)
    ECG_PRINTOUT_PDF = OutputFile(OutputKind.PRINTOUT_PDF, "ecg-12-lead.pdf", PDF)
    SIGNED_REPORT = OutputFile(OutputKind.SIGNED_REPORT, "signed-diagnostic-report.json", JSON)
    SIGNED_SR = OutputFile(OutputKind.SIGNED_SR, "signed-report-sr.dcm", DICOM)
    FIXED = (RESULT, REPORT, SR, SEGMENTATION, OVERLAY, OVERLAY_CAPTURE, SLIDE_HEATMAP, ECG_PRINTOUT, ECG_PRINTOUT_PDF,
             SIGNED_REPORT, SIGNED_SR)

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def of_outcome(cls, root: Path, uid: str) -> OutputLayout:
        """The layout of pre-read outcome ``uid`` (a SOP or Series Instance UID) under the job's output ``root``."""
        return cls(root / uid)

    @staticmethod
    def heatmap(label: str) -> OutputFile:
        """A finding's heatmap overlay (PNG)."""
        return OutputFile(OutputKind.HEATMAP, f"heatmap-{slug(label)}.png", PNG, label)

    @staticmethod
    def heatmap_capture(label: str) -> OutputFile:
        """A finding's heatmap overlay as a DICOM secondary capture."""
        return OutputFile(OutputKind.HEATMAP_CAPTURE, f"heatmap-{slug(label)}-sc.dcm", DICOM, label)

    @staticmethod
    def heatmap_map(label: str) -> OutputFile:
        """A finding's heatmap as a DICOM Parametric Map on the source image's grid (for viewers to overlay)."""
        return OutputFile(OutputKind.HEATMAP_MAP, f"heatmap-{slug(label)}-pm.dcm", DICOM, label)

    @staticmethod
    def heatmap_values(label: str) -> OutputFile:
        """A finding's raw heatmap (float32 .npy on the model's input grid, values in [0, 1])."""
        return OutputFile(OutputKind.HEATMAP_VALUES, f"heatmap-{slug(label)}.npy", NPY, label)

    def path(self, file: OutputFile) -> Path:
        """Where ``file`` is (or goes)."""
        return self.folder / file.name

    def expected(self, labels: Iterable[str] = ()) -> list[OutputFile]:
        """Every file a read may leave here, given the labels of its findings."""
        makers = (self.heatmap, self.heatmap_capture, self.heatmap_values, self.heatmap_map)
        per_label = [make(label) for label in labels for make in makers]
        return [*self.FIXED, *per_label]

    def present(self, labels: Iterable[str] = ()) -> list[OutputFile]:
        """The expected files that exist, in :meth:`expected` order."""
        return [file for file in self.expected(labels) if self.path(file).is_file()]

    def find(self, name: str, labels: Iterable[str] = ()) -> OutputFile:
        """The present output called ``name``.

        Raises:
            OutputNotFoundError: ``file_not_found``, listing the outputs there are.
        """
        present = self.present(labels)
        for file in present:
            if file.name == name:
                return file
        raise OutputNotFoundError(f"no output {name!r}; outputs: {', '.join(f.name for f in present) or 'none'}")
