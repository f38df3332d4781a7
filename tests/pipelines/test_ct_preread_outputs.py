"""`cds preread` on a folder with a CT series and a radiograph: SEG, SR, FHIR and overlays that re-read correctly."""

import json
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.sr.codedict import codes
from typer.testing import CliRunner

from cds.cli.main import app
from training.data.chest_xray import render
from training.data.ct_volumes import LABELS, generate_case
from training.data.dicom_files import write_radiograph

SEED = 4242  # no training, validation or test split uses it


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1))


@pytest.fixture(scope="module")
def preread_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], object]:
    root = tmp_path_factory.mktemp("ct-preread")
    case = generate_case(SEED, 0)
    files = case.write_dicom(root / "in" / "ct", shuffle_seed=3)
    write_radiograph(root / "in" / "cr.dcm", render(448, SEED, 0)[0])
    result = CliRunner().invoke(app, ["preread", str(root / "in"), "--out", str(root / "out"),
                                      "--saliency-grid", "0"])
    assert result.exit_code == 0, result.output
    assert "2 pre-read, 0 refused" in result.output and "STRUCTURE" in result.output
    return root / "out", files, case


def capture_patient(folder: Path) -> str:
    """The Patient ID the outputs carry (the SEG copies it from the source series)."""
    return str(pydicom.dcmread(folder / "segmentation-seg.dcm", stop_before_pixels=True).PatientID)


def test_the_seg_holds_the_label_volume_on_the_source_slices(preread_folder: tuple[Path, list[Path], object]) -> None:
    out, files, case = preread_folder
    sources = [pydicom.dcmread(f) for f in files]
    series_uid = sources[0].SeriesInstanceUID
    folder = out / series_uid
    seg = hd.seg.segread(folder / "segmentation-seg.dcm")
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == series_uid
    assert [s.SegmentLabel for s in seg.SegmentSequence] == list(LABELS[1:])
    algorithm = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert algorithm.AlgorithmName == "ct-organs-demo"
    # written in file order (InstanceNumber shuffled), read back per source instance: compare in position order
    ordered = sorted(sources, key=lambda s: float(s.ImagePositionPatient[2]))
    labels = np.asarray(seg.get_pixels_by_source_instance([s.SOPInstanceUID for s in ordered],
                                                          combine_segments=True))
    truth = case.labels  # type: ignore[attr-defined]
    assert labels.shape == truth.shape
    document = json.loads((folder / "result.json").read_text())
    counted = {s["label"]: s["voxels"] for s in document["result"]["structures"]}
    assert counted == {name: int((labels == i).sum()) for i, name in enumerate(LABELS) if i > 0}  # SEG = result
    # against the generator's ground truth (measured on this case: liver 0.92, others 0.68-0.82)
    assert _dice(labels == 1, truth == 1) > 0.85
    for index, name in enumerate(LABELS[2:], start=2):
        assert _dice(labels == index, truth == index) > 0.5, name


def test_sr_and_fhir_report_the_same_volumes_as_the_result(preread_folder: tuple[Path, list[Path], object]) -> None:
    out, files, case = preread_folder
    folder = out / pydicom.dcmread(files[0]).SeriesInstanceUID
    document = json.loads((folder / "result.json").read_text())
    volumes = {s["label"]: s["volume_ml"] for s in document["result"]["structures"]}
    truth = case.volumes_ml()  # type: ignore[attr-defined]
    for name, value in volumes.items():
        assert value == pytest.approx(truth[name], rel=0.3), name
    sr = hd.sr.srread(folder / "report-sr.dcm")
    groups = sr.content.get_volumetric_roi_measurement_groups()
    measured = {g.tracking_identifier: float(g.get_measurements(name=codes.SCT.Volume)[0].value) for g in groups}
    assert measured == pytest.approx(volumes)
    report = DiagnosticReport.model_validate(json.loads((folder / "diagnostic-report.json").read_text()))
    observed = {o.code.text.removesuffix(" volume"): float(o.valueQuantity.value) for o in report.contained[1:]}
    assert observed == pytest.approx(volumes, abs=1e-3)
    assert report.subject.identifier.value == capture_patient(folder)  # whose: the series' Patient ID
    assert report.imagingStudy[0].identifier.value == f"urn:oid:{document['source']['study_uid']}"
    capture = pydicom.dcmread(folder / "overlay-sc.dcm")
    assert capture.StudyInstanceUID == document["source"]["study_uid"] and capture.SamplesPerPixel == 3
    assert "NOT FOR DIAGNOSTIC USE" in str(capture.get("ImageComments", "")).upper()
