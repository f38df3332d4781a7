from fhir.resources.R4B.diagnosticreport import DiagnosticReport

from cds.interop.fhir_report import MODEL_SHA256, diagnostic_report
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from cds.results.classification import ClassificationResult, Finding

RESULT = ClassificationResult(
    model=ModelRef(name="chest-xray-demo", version="1.0.0", sha256="ab" * 32, backend=BackendKind.ONNXRUNTIME),
    input_sha256="cd" * 32,
    findings=(
        Finding(label="Effusion", probability=0.91, threshold=0.4, positive=True),
        Finding(label="Nodule", probability=0.1, threshold=0.3, positive=False),
        Finding(label="Hernia", probability=0.2, threshold=None, positive=False),
    ),
    intended_use="demo",
    warnings=("not for diagnostic use",),
    inference_ms=12.0,
)


def test_report_has_one_observation_per_finding_and_names_the_model() -> None:
    report = diagnostic_report(RESULT, study_uid="1.2.3.4", title="AI pre-read: chest radiograph",
                               patient_reference="Patient/p1")
    DiagnosticReport.model_validate(report)  # round-trips through the FHIR model
    assert report["status"] == "preliminary" and report["subject"] == {"reference": "Patient/p1"}
    assert report["identifier"] == [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}]
    contained = {r["id"]: r for r in report["contained"]}
    device = contained["model"]
    assert device["identifier"] == [{"system": MODEL_SHA256, "value": "ab" * 32}]
    assert device["version"] == [{"value": "1.0.0"}] and "cd" * 32 in device["note"][0]["text"]
    observations = [contained[r["reference"][1:]] for r in report["result"]]
    assert [o["code"]["text"] for o in observations] == ["Effusion", "Nodule", "Hernia"]
    assert [o["interpretation"][0]["coding"][0]["code"] for o in observations[:2]] == ["POS", "NEG"]
    assert "interpretation" not in observations[2]  # no threshold, no call
    assert observations[0]["valueQuantity"]["value"] == 0.91 and observations[0]["device"] == {"reference": "#model"}
    assert "Effusion (0.91)" in report["conclusion"] and "Not for diagnostic use" in report["conclusion"]


def test_report_without_positives_or_patient() -> None:
    quiet = RESULT.model_copy(update={"findings": RESULT.findings[1:], "warnings": ()})
    report = diagnostic_report(quiet, study_uid="", title="t")
    assert report["subject"] == {"display": "unidentified"} and "identifier" not in report
    assert report["conclusion"] == "AI pre-read: no finding above its operating threshold"
