import datetime as dt

import pytest
from fhir.resources.R4B.diagnosticreport import DiagnosticReport
from pydicom.dataset import Dataset

from cds.interop.fhir_report import MODEL_SHA256, diagnostic_report, exam_time
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
    assert report["imagingStudy"][0]["identifier"] == {"system": "urn:dicom:uid", "value": "urn:oid:1.2.3.4"}
    assert report["identifier"][0]["value"].startswith("urn:uuid:")
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
    assert report["subject"] == {"display": "unidentified"} and "imagingStudy" not in report
    assert report["conclusion"] == "AI pre-read: no finding above its operating threshold"


def _header(**attributes: str) -> Dataset:
    header = Dataset()
    for keyword, value in attributes.items():
        setattr(header, keyword, value)
    return header


def test_the_report_names_the_patient_the_exam_time_and_itself() -> None:
    header = _header(PatientID="MRN-0042", StudyDate="20261130", StudyTime="083015.123", TimezoneOffsetFromUTC="+0800")
    issued = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)

    def report(instance: str, system: str = "urn:oid:1.2.156.112.1") -> dict:
        return diagnostic_report(RESULT, study_uid="1.2.3.4", title="t", header=header, patient_system=system,
                                 instance_uid=instance, issued=issued)

    first = report("1.2.3.4.5")
    DiagnosticReport.model_validate(first)
    assert first["subject"] == {"identifier": {"system": "urn:oid:1.2.156.112.1", "value": "MRN-0042"}}
    assert first["effectiveDateTime"] == "2026-11-30T08:30:15+08:00"  # the exam, not the processing time
    assert first["issued"].startswith("2026-12-06T02:00:00")
    assert [o["effectiveDateTime"] for o in first["contained"][1:]] == ["2026-11-30T08:30:15+08:00"] * 3
    assert report("1.2.3.4.5")["identifier"] == first["identifier"]  # the same on a re-run
    assert report("1.2.3.4.6")["identifier"] != first["identifier"]  # another image: another report


@pytest.mark.parametrize(("attributes", "expected"), [
    ({"StudyDate": "20261130", "StudyTime": "0830"}, "2026-11-30"),  # no offset: the date alone
    ({"StudyDate": "20261130"}, "2026-11-30"),
    ({"AcquisitionDateTime": "20261130083015-0500"}, "2026-11-30T08:30:15-05:00"),
    ({"AcquisitionDateTime": "20261130083015", "TimezoneOffsetFromUTC": "+0100"}, "2026-11-30T08:30:15+01:00"),
    ({"StudyDate": "2026113"}, None), ({"StudyDate": "20261340"}, None), ({}, None),
])  # fmt: skip
def test_exam_time_from_a_dicom_header(attributes: dict[str, str], expected: str | None) -> None:
    assert exam_time(_header(**attributes)) == expected
