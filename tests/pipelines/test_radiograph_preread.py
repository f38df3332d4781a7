"""The shipped chest X-ray model behind the pre-read pipeline and `cds preread`."""

import functools
import json
from contextlib import ExitStack, closing
from pathlib import Path

import highdicom
import numpy as np
import pydicom
import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.sr.codedict import codes
from pydicom.uid import ParametricMapStorage
from typer.testing import CliRunner

from cds.cli.main import app
from cds.errors import InvalidInputError
from cds.interop.outputs.radiograph import HEATMAP_FLOOR, overlay, write_preread
from cds.models.registry import ModelRegistry
from cds.models.spec import BackendKind
from cds.pipelines.imaging.dicom_reader import read_instance
from cds.pipelines.imaging.plausibility import OUT_OF_DISTRIBUTION, PlausibilityPolicy
from cds.pipelines.imaging.radiograph_preread import RadiographPrereadPipeline
from cds.pipelines.imaging.saliency import HeatmapMethod
from cds.services.preread import RadiographOptions, radiograph_pipeline
from cds.serving.backends import create_backend
from training.data.chest_xray import render
from training.data.dicom_files import write_radiograph
from training.data.non_chest import render_non_chest

PYDICOM_FILES = Path(pydicom.data.__file__).parent / "test_files"
ORT = functools.partial(create_backend, BackendKind.ONNXRUNTIME)
GATE = "chest-xray-plausibility:2.0.0"


@pytest.fixture(scope="module")
def pipeline(registry: ModelRegistry):  # type: ignore[no-untyped-def]
    with ExitStack() as stack:
        yield radiograph_pipeline(registry, registry.get("chest-xray-demo"), stack, options=RadiographOptions(),
                                  backends=ORT)


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
    positives = {f.label for f in result.positives}
    unexplained = " ".join(w for w in result.warnings if w.startswith("no localisation"))
    assert set(preread.heatmaps) <= positives and all(p in preread.heatmaps or p in unexplained for p in positives)
    probability = {f.label: f.probability for f in result.findings}
    for label, heatmap in preread.heatmaps.items():  # on the fixed probability scale: the map reaches its probability
        assert heatmap.shape == (224, 224) and heatmap.min() >= 0.0
        assert heatmap.max() == pytest.approx(probability[label], rel=1e-5)
    assert pipeline.heatmaps is HeatmapMethod.CAM  # the model exports activation maps: no extra inference
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


def test_a_normal_study_s_threshold_level_findings_are_drawn_only_as_faintly_as_they_are_likely(
    pipeline: RadiographPrereadPipeline, tmp_path: Path
) -> None:
    preread = pipeline(read_instance(_study(tmp_path, "normal.dcm", set())))
    findings = {f.label: f for f in preread.result.findings}
    assert set(preread.heatmaps) <= {f.label for f in preread.result.positives}  # a negative finding: no map at all
    for label, heatmap in preread.heatmaps.items():
        probability = findings[label].probability
        assert heatmap.max() <= probability + 1e-6  # never above the finding's probability on the 0-1 legend
        drawn = overlay(preread.image, heatmap).astype(np.float32) - overlay(preread.image, 0 * heatmap)
        assert np.abs(drawn).max() <= 0.45 * probability * 255 + 1  # a threshold-level finding barely tints the image
        assert (np.abs(drawn).max(axis=2) > 0).mean() <= float((heatmap > HEATMAP_FLOOR).mean())  # only above the floor
    lowest = min(f.threshold for f in preread.result.findings if f.threshold is not None)
    assert lowest > HEATMAP_FLOOR  # every positive finding draws at least where its evidence peaks


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
        maps = [pydicom.dcmread(f) for f in sorted(report.parent.glob("heatmap-*-pm.dcm"))]
        assert len(maps) == len(document["heatmaps"])
        assert document["heatmap_scale"] == "probability"  # and the DICOM copies say what their values mean
        assert all("probability scale" in d.DerivationDescription.lower() for d in [*captures, *maps])
        assert all((m.Rows, m.Columns) == (448, 448) and m.SOPClassUID == ParametricMapStorage for m in maps)
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
        assert err.value.code == "implausible_image" and GATE in err.value.message


def test_a_model_whose_contract_names_a_gate_is_not_run_without_it(registry: ModelRegistry) -> None:
    backend = create_backend(BackendKind.ONNXRUNTIME, registry.get("chest-xray-demo"))  # the check needs no load
    with pytest.raises(InvalidInputError) as err:
        RadiographPrereadPipeline(backend)
    assert err.value.code == "plausibility_model_mismatch"


def test_every_gate_a_contract_names_is_in_the_registry(registry: ModelRegistry) -> None:
    gates = [spec.imaging.plausibility_model for name in registry.names() for spec in [registry.get(name)]
             if spec.imaging is not None and spec.imaging.plausibility_model is not None]
    assert gates == [GATE]
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


def test_a_warn_site_pre_reads_an_implausible_image_with_an_out_of_distribution_warning(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    instance = read_instance(write_radiograph(tmp_path / "ct.dcm", render_non_chest("ct_abdomen", 448, 5, 0)))
    spec = registry.get("chest-xray-demo")
    with ExitStack() as stack:
        warn = radiograph_pipeline(registry, spec, stack, backends=ORT, options=RadiographOptions(
            heatmaps=HeatmapMethod.OFF, plausibility_policy=PlausibilityPolicy.WARN))
        preread = warn(instance)
        floor = radiograph_pipeline(registry, spec, stack, backends=ORT, options=RadiographOptions(
            heatmaps=HeatmapMethod.OFF, plausibility_policy=PlausibilityPolicy.WARN, refuse_below=0.999))
        with pytest.raises(InvalidInputError) as err:
            floor(instance)
    assert err.value.code == "implausible_image"
    assert preread.plausibility is not None and preread.plausibility < warn.plausibility.threshold  # type: ignore[union-attr]
    assert [w for w in preread.result.warnings if w.startswith(OUT_OF_DISTRIBUTION)]
    written = write_preread(preread, tmp_path / "out", title="AI pre-read")
    report = json.loads(next(p for p in written if p.name == "diagnostic-report.json").read_text())
    assert OUT_OF_DISTRIBUTION in report["conclusion"].lower()
    sr = highdicom.sr.srread(next(p for p in written if p.name == "report-sr.dcm"))
    comments = highdicom.sr.utils.find_content_items(sr, name=codes.DCM.Comment)
    assert any(c.TextValue.startswith(OUT_OF_DISTRIBUTION) for c in comments)


def test_heatmaps_by_occlusion_on_request_and_cam_only_where_the_model_exports_maps(
    registry: ModelRegistry, tmp_path: Path
) -> None:
    instance = read_instance(_study(tmp_path, "effusion.dcm", {"Effusion", "Cardiomegaly"}))
    with ExitStack() as stack:
        occlusion = radiograph_pipeline(registry, registry.get("chest-xray-demo"), stack, backends=ORT,
                                        options=RadiographOptions(heatmaps=HeatmapMethod.OCCLUSION, saliency_grid=4))
        preread = occlusion(instance)
        gate = stack.enter_context(closing(ORT(registry.get("chest-xray-plausibility"))))
        with pytest.raises(InvalidInputError) as err:
            RadiographPrereadPipeline(gate, heatmaps=HeatmapMethod.CAM)
    assert err.value.code == "no_activation_maps"
    assert occlusion.heatmaps is HeatmapMethod.OCCLUSION and preread.heatmaps
    unexplained = " ".join(w for w in preread.result.warnings if w.startswith("no localisation"))
    assert all(f.label in preread.heatmaps or f.label in unexplained for f in preread.result.positives)
