"""The output layout: what each writer writes is what the layout names, with the media type readers serve it with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from cds.errors import OutputNotFoundError
from cds.interop.outputs.radiograph import write_preread
from cds.interop.outputs.segmentation import write_segmentation
from cds.interop.outputs.slide import write_slide_outputs
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from cds.models.tile_preprocessing import TilePreprocessing
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.dicom_series import build_volume
from cds.results.classification import ClassificationResult, Finding
from cds.results.imaging import CtSegmentation, RadiographPreread, SourceImage
from cds.results.layout import OutputKind, OutputLayout, slug
from cds.results.segmentation import SegmentationResult, StructureVolume
from cds.results.slide import SlideAnalysis, SlideResult, SlideScore, SlideSource, SlideStatus, TileSummary
from training.data.dicom_files import write_ct_series, write_radiograph

MODEL = ModelRef(name="m", version="1.0.0", sha256="a" * 64, backend=BackendKind.ONNXRUNTIME)
SUFFIX_TYPES = {".json": "application/json", ".dcm": "application/dicom", ".png": "image/png",
                ".npy": "application/octet-stream"}


def _agree(layout: OutputLayout, written: list[Path], labels: tuple[str, ...] = ()) -> None:
    """Every written file is a present output of the layout (and nothing else is), found by name with its type."""
    present = layout.present(labels)
    assert {p.name for p in written} == {f.name for f in present}
    for file in present:
        assert layout.find(file.name, labels) == file and layout.path(file) in written
        assert file.media_type == SUFFIX_TYPES[Path(file.name).suffix]
    with pytest.raises(OutputNotFoundError) as missing:
        layout.find("nope.dcm", labels)
    assert missing.value.code == "file_not_found" and present[0].name in missing.value.message


def test_radiograph_outputs(tmp_path: Path) -> None:
    header = pydicom.dcmread(write_radiograph(tmp_path / "cr.dcm", np.random.default_rng(1).random((96, 96))))
    findings = (Finding(label="Pleural_Thickening", probability=0.9, threshold=0.5, positive=True),
                Finding(label="Lung Opacity", probability=0.8, threshold=0.5, positive=True),
                Finding(label="Mass", probability=0.1, threshold=0.5, positive=False))
    result = ClassificationResult(model=MODEL, input_sha256="b" * 64, findings=findings, intended_use="tests",
                                  inference_ms=1.0)
    heat = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    preread = RadiographPreread(
        result=result, source=SourceImage(header.StudyInstanceUID, header.SeriesInstanceUID, header.SOPInstanceUID,
                                          "CR", "cr.dcm"),
        image=np.zeros((64, 64), np.float32), heatmaps={"Pleural_Thickening": heat, "Lung Opacity": heat[::-1]},
        header=header)
    layout = OutputLayout.of_outcome(tmp_path / "out", header.SOPInstanceUID)
    written = write_preread(preread, layout.folder, title="t")
    labels = tuple(f.label for f in findings)
    _agree(layout, written, labels)
    kinds = [f.kind for f in layout.present(labels)]
    assert kinds.count(OutputKind.HEATMAP) == kinds.count(OutputKind.HEATMAP_VALUES) == 2  # positives only
    assert layout.find("heatmap-pleural-thickening.npy", labels).label == "Pleural_Thickening"
    np.testing.assert_array_equal(np.load(layout.path(OutputLayout.heatmap_values("Lung Opacity"))), heat[::-1])
    assert slug("Enlarged Cardiomediastinum") == "enlarged-cardiomediastinum" and slug("??") == "unnamed"


def test_ct_segmentation_outputs(tmp_path: Path) -> None:
    files = write_ct_series(tmp_path / "ct", np.full((4, 32, 32), 40.0, np.float32), spacing_mm=(2.0, 1.0, 1.0))
    instances = [read_instance(f) for f in files]
    volume = build_volume(instances)
    labels = np.zeros(volume.voxels.shape, np.uint8)
    labels[1:3, 8:20, 8:20] = 1
    result = SegmentationResult(model=MODEL, input_sha256="c" * 64, spacing_mm=volume.spacing, intended_use="t",
                                structures=(StructureVolume(label="liver", voxels=int(labels.sum()),
                                                            volume_ml=float(labels.sum()) * 2e-3),),
                                inference_ms=1.0)  # fmt: skip
    layout = OutputLayout.of_outcome(tmp_path / "out", volume.series_uid)
    written = write_segmentation(CtSegmentation(result=result, labels=labels, volume=volume),
                                 [i.dataset for i in instances], layout.folder, title="t")
    _agree(layout, written, ("liver",))
    assert {f.kind for f in layout.present(("liver",))} == {OutputKind.RESULT, OutputKind.REPORT, OutputKind.SR,
                                                            OutputKind.SEGMENTATION, OutputKind.OVERLAY,
                                                            OutputKind.OVERLAY_CAPTURE}


@pytest.mark.parametrize("scored", [True, False])
def test_slide_outputs(tmp_path: Path, scored: bool) -> None:
    score = SlideScore(top_k=1, top_k_mean=0.9, mean_probability=0.9, max_probability=0.9, tumour_tiles=1,
                       tumour_area_fraction=1.0, threshold=0.5, positive=True)
    result = SlideResult(model=MODEL, input_sha256="d" * 64, preprocessing=TilePreprocessing(),
                         preprocessing_sha256=TilePreprocessing().sha256,
                         source=SlideSource(name="s.tif", reader="TiffSlide", width=10, height=10, levels=1, mpp=0.5,
                                            tissue_fraction=0.5),
                         status=SlideStatus.SCORED if scored else SlideStatus.NO_TISSUE, label="tumour",
                         finding=Finding(label="tumour", probability=0.9, threshold=0.5, positive=True)
                         if scored else None, score=score if scored else None,
                         tiles=TileSummary(level=0, level_mpp=0.5, read_size=224, grid_columns=1, grid_rows=1,
                                           tissue_threshold=0.5, scored=1, unnormalised=0) if scored else None,
                         intended_use="t")  # fmt: skip
    analysis = SlideAnalysis(result=result, heatmap=np.zeros((8, 8, 3), np.uint8) if scored else None)
    layout = OutputLayout(tmp_path / "out")
    written = write_slide_outputs(analysis, layout.folder, title="t")
    _agree(layout, written)
    assert (OutputLayout.SLIDE_HEATMAP in layout.present()) is scored
