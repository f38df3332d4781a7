"""The shipped chest X-ray model behind the pre-read pipeline and `cds preread`."""

import functools
import json
from contextlib import ExitStack
from pathlib import Path

import highdicom
import pydicom
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from typer.testing import CliRunner

from cds.cli.main import app
from cds.errors import InvalidInputError
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.radiograph_preread import RadiographPrereadPipeline
from cds.services.preread import radiograph_pipeline
from cds.serving.backends import create_backend
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.non_chest import render_non_chest

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"


@pytest.fixture(scope="module")
def pipeline(registry: ModelRegistry):  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        yield radiograph_pipeline(registry, registry.get("chest-xray-demo"), stack, saliency_grid=4,
                                  backends=functools.partial(create_backend, BackendKind.ONNXRUNTIME))


def _study(tmp_path: Path, name: str, findings: set[str], **kwargs: object) -> Path:
    pixels, _, sex = render(448, 77, 3, findings=findings)
    return write_radiograph(tmp_path / name, pixels, sex=sex, **kwargs)  # type: ignore[arg-type]


def test_a_generated_radiograph_is_pre_read_with_heatmaps_for_positive_findings(
    pipeline: RadiographPrereadPipeline, tmp_path: Path
) -> None:
    preread = pipeline(read_instance(_study(tmp_path, "effusion.dcm", {"Effusion", "Cardiomegaly"})))
    result = preread.result
    assert result.model.name == "chest-xray-demo" and len(result.findings) == 18
    assert preread.source.modality == "CR" and preread.source.study_uid
    assert set(preread.heatmaps) == {f.label for f in result.positives}
    for heatmap in preread.heatmaps.values():
        assert heatmap.shape == (224, 224) and heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    assert {"decode_ms", "plausibility_ms", "preprocess_ms", "infer_ms", "saliency_ms"} <= set(preread.stage_ms)
    assert preread.plausibility is not None and preread.plausibility >= pipeline.plausibility.threshold  # type: ignore[union-attr]
    # the same patient without findings scores lower on the findings it has
    normal = pipeline(read_instance(_study(tmp_path, "normal.dcm", set()))).result
    effusion = {f.label: f.probability for f in result.findings}
    clear = {f.label: f.probability for f in normal.findings}
    assert effusion["Effusion"] > clear["Effusion"] and effusion["Cardiomegaly"] > clear["Cardiomegaly"]
    # MONOCHROME1 storage of the same pixels gives the same model input, hence the same result
    inverted = pipeline(read_instance(_study(tmp_path, "m1.dcm", {"Effusion", "Cardiomegaly"}, monochrome1=True)))
    assert inverted.result.input_sha256 == result.input_sha256


def test_a_study_that_does_not_fit_the_contract_is_refused_before_inference(
    pipeline: RadiographPrereadPipeline,
) -> None:
    with pytest.raises(InvalidInputError) as err:
        pipeline(read_instance(PYDICOM_FILES / "MR_small.dcm"))
    assert err.value.code == "wrong_modality" and "model expects modality CR/DX, got MR" in err.value.message


def test_cli_pre_reads_a_folder_and_keeps_going_past_bad_files(tmp_path: Path) -> None:
    studies = tmp_path / "in"
    _study(studies, "a.dcm", {"Effusion"})
    _study(studies, "b.dcm", set())
    (studies / "junk.dcm").write_bytes(b"not dicom")
    write_radiograph(studies / "ct-tagged-chest.dcm", render_non_chest("ct_abdomen", 448, 6, 0))
    (studies / "mr.dcm").write_bytes((PYDICOM_FILES / "MR_small.dcm").read_bytes())
    result = CliRunner().invoke(app, ["preread", str(studies), "--out", str(tmp_path / "out"), "--saliency-grid", "3"])
    assert result.exit_code == 0, result.output
    assert "2 pre-read, 3 refused" in result.output
    refused = {Path(r["file"]).name: r["reason"] for r in json.loads((tmp_path / "out" / "refused.json").read_text())}
    assert refused == {"junk.dcm": "not_dicom", "mr.dcm": "wrong_modality", "ct-tagged-chest.dcm": "implausible_image"}
    reports = sorted((tmp_path / "out").rglob("diagnostic-report.json"))
    assert len(reports) == 2
    for report in reports:
        DiagnosticReport.model_validate(json.loads(report.read_text()))
        document = json.loads((report.parent / "result.json").read_text())
        assert document["result"]["model"]["name"] == "chest-xray-demo"
        assert len(list(report.parent.glob("heatmap-*.png"))) == len(document["heatmaps"])
        captures = [pydicom.dcmread(f) for f in sorted(report.parent.glob("heatmap-*-sc.dcm"))]
        assert len(captures) == len(document["heatmaps"])
        assert {c.StudyInstanceUID for c in captures} <= {document["source"]["study_uid"]}
        sr = highdicom.sr.srread(report.parent / "report-sr.dcm")
        evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
        assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == document["source"]["sop_instance_uid"]


def test_an_image_whose_tags_lie_is_refused_by_the_plausibility_gate(
    pipeline: RadiographPrereadPipeline, tmp_path: Path
) -> None:
    # a CT slice and a knee film stored as CR, body part CHEST, view PA: the header check passes, the pixels do not
    for kind in ("ct_abdomen", "limb"):
        path = write_radiograph(tmp_path / f"{kind}.dcm", render_non_chest(kind, 448, 5, 0))
        instance = read_instance(path)
        assert instance.dataset.BodyPartExamined == "CHEST" and instance.dataset.Modality == "CR"
        with pytest.raises(InvalidInputError) as err:
            pipeline(instance)
        assert err.value.code == "implausible_image" and "chest-xray-plausibility:1.0.0" in err.value.message


def test_a_model_whose_contract_names_a_gate_is_not_run_without_it(registry: ModelRegistry) -> None:
    backend = create_backend(BackendKind.ONNXRUNTIME, registry.get("chest-xray-demo"))  # the check needs no load
    with pytest.raises(InvalidInputError) as err:
        RadiographPrereadPipeline(backend)
    assert err.value.code == "plausibility_model_mismatch"


def test_every_gate_a_contract_names_is_in_the_registry(registry: ModelRegistry) -> None:
    gates = [spec.imaging.plausibility_model for name in registry.names() for spec in [registry.get(name)]
             if spec.imaging is not None and spec.imaging.plausibility_model is not None]
    assert gates == ["chest-xray-plausibility:1.0.0"]
    for key in gates:
        name, version = key.split(":")
        assert registry.get(name, version).labels == ("chest_radiograph",)


def test_cli_refuses_duplicates_and_never_groups_files_without_a_series_uid(tmp_path: Path) -> None:
    studies = tmp_path / "in"
    original = _study(studies, "a.dcm", {"Effusion"})
    (studies / "a-again.dcm").write_bytes(original.read_bytes())  # the same SOP Instance UID twice
    for index in range(2):  # two MR images of one series: one series refusal that names both files
        mr = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
        mr.SOPInstanceUID = f"{mr.SOPInstanceUID}.{index}"
        mr.save_as(studies / f"mr-{index}.dcm")
        del mr.SeriesInstanceUID  # and two without a Series Instance UID: each refused on its own
        mr.SOPInstanceUID = f"{mr.SOPInstanceUID}.9"
        mr.save_as(studies / f"loose-{index}.dcm")
    result = CliRunner().invoke(app, ["preread", str(studies), "--out", str(tmp_path / "out"), "--saliency-grid", "0"])
    assert result.exit_code == 0, result.output
    assert "1 pre-read, 4 refused" in result.output
    refused = json.loads((tmp_path / "out" / "refused.json").read_text())
    by_reason = sorted((r["reason"], sorted(Path(f).name for f in r["files"])) for r in refused)
    (duplicate, duplicated), *others = by_reason  # whichever of the two came second is the duplicate
    assert duplicate == "duplicate_instance" and duplicated in (["a.dcm"], ["a-again.dcm"])
    assert others == [("wrong_modality", ["loose-0.dcm"]), ("wrong_modality", ["loose-1.dcm"]),
                      ("wrong_modality", ["mr-0.dcm", "mr-1.dcm"])]
    assert len(list((tmp_path / "out").rglob("result.json"))) == 1
