"""FHIR de-identification: nothing identifying left, the DICOM export's pseudonym, UIDs and date shift for the same
patient, each patient in a Bundle with their own, clinical content kept, the same output for the same key."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from pydicom import dcmread
from pydicom.data import get_testdata_file

from cds.errors import InvalidInputError
from cds.interop.deidentify import DeidOptions, date_shift_days, deidentify, pseudonymize_patient_id
from cds.interop.fhir_deidentify import PSEUDONYM_SYSTEM, deidentify_resources

KEY = b"a consortium research key, 32 b!"
MRN_SYSTEM = "urn:oid:1.2.156.112604.1.2.1"  # a hospital's own MRN system
STUDY_UID = "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"  # CT_small's Study Instance UID
IDENTIFYING = ("张三", "MRN-3301", "13800138000", "人民路", "p-zhang", "p-li", "obs-hb", "report-1", "ACC-9",
               STUDY_UID, "胸腔积液", "护士记录", "汉族", "https://his.hospital.cn", "李医生")  # fmt: skip


def _record() -> dict[str, Any]:
    """A hospital's export as it comes: names in Chinese, a local MRN system, partial dates, two patients."""
    patient = {"resourceType": "Patient", "id": "p-zhang", "meta": {"lastUpdated": "2026-11-30T10:00:00+08:00"},
               "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">张三</div>"},
               "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/patient-nationality",
                              "valueString": "汉族"}],
               "identifier": [{"system": MRN_SYSTEM, "value": "MRN-3301"},
                              {"system": "urn:oid:2.16.156.10011.1.1", "value": "110101195603140011"}],
               "name": [{"text": "张三", "family": "张", "given": ["三"]}],
               "telecom": [{"system": "phone", "value": "13800138000"}],
               "address": [{"line": ["人民路 1 号"], "city": "北京"}], "gender": "male", "birthDate": "1956-03-14",
               "generalPractitioner": [{"reference": "Practitioner/dr-li", "display": "李医生"}]}  # fmt: skip
    haemoglobin = {"resourceType": "Observation", "id": "obs-hb", "status": "final",
                   "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}], "text": "血红蛋白"},
                   "subject": {"reference": "Patient/p-zhang", "display": "张三"},
                   "effectiveDateTime": "2026-05-01T08:30:00+08:00", "issued": "2026-05-01T09:02:11.5+08:00",
                   "valueQuantity": {"value": 118, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L"},
                   "note": [{"text": "护士记录: 张三 空腹"}],
                   "performer": [{"reference": "https://his.hospital.cn/fhir/Practitioner/dr-li"}]}  # fmt: skip
    report = {"resourceType": "DiagnosticReport", "id": "report-1", "status": "final",
              "identifier": [{"system": "urn:oid:1.2.156.112604.9", "value": "ACC-9"}],
              "code": {"coding": [{"system": "http://loinc.org", "code": "18748-4"}]},
              "subject": {"identifier": {"system": MRN_SYSTEM, "value": "MRN-3301"}},
              "effectiveDateTime": "2026-05-02", "issued": "2026-05-02T15:00:00Z",
              "imagingStudy": [{"identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{STUDY_UID}"}}],
              "contained": [{"resourceType": "Observation", "id": "f1", "status": "final",
                             "code": {"text": "Effusion"}, "valueQuantity": {"value": 0.91}}],
              "result": [{"reference": "#f1"}], "conclusion": "右侧胸腔积液"}  # fmt: skip
    condition = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p-zhang"},
                 "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
                 "onsetDateTime": "2019-07", "recordedDate": "2019"}  # fmt: skip
    other = {"resourceType": "Observation", "id": "obs-other", "status": "final", "code": {"text": "BP"},
             "subject": {"reference": "Patient/p-li"}, "effectiveDateTime": "2026-05-01T08:30:00+08:00",
             "valueQuantity": {"value": 150, "unit": "mmHg"}}  # fmt: skip
    entries = [patient, haemoglobin, report, condition, other]
    return {"resourceType": "Bundle", "id": "export-1", "type": "collection", "timestamp": "2026-11-30T10:00:00+08:00",
            "entry": [{"fullUrl": f"https://his.hospital.cn/fhir/{r['resourceType']}/{r['id']}", "resource": r}
                      for r in entries]}  # fmt: skip


def _entries(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["resourceType"] + ("-other" if e["resource"].get("valueQuantity", {}).get("unit") == "mmHg"
            else ""): e["resource"] for e in bundle["entry"]}  # fmt: skip


def test_nothing_identifying_is_left_and_the_bundle_is_still_valid_fhir() -> None:
    result = deidentify_resources([_record()], key=KEY, patient_system=MRN_SYSTEM)
    text = json.dumps(result.resources, ensure_ascii=False)
    assert [word for word in IDENTIFYING if word in text] == []
    Bundle.model_validate(result.resources[0])
    assert result.summary.patients == 2 and result.summary.removed["Patient.name"] == 1
    assert result.summary.removed["Observation.note"] == 1 and result.summary.removed["DiagnosticReport.conclusion"] == 1


def test_the_patient_gets_the_dicom_exports_pseudonym_uids_and_date_shift() -> None:
    ct = dcmread(get_testdata_file("CT_small.dcm", download=False))
    ct.PatientID = "MRN-3301"
    image = deidentify(ct, key=KEY)
    bundle = deidentify_resources([_record()], key=KEY, patient_system=MRN_SYSTEM).resources[0]
    found = _entries(bundle)
    patient, report = found["Patient"], found["DiagnosticReport"]
    assert patient["id"] == image.pseudonym == pseudonymize_patient_id("MRN-3301", key=KEY)
    assert patient["identifier"] == [{"system": PSEUDONYM_SYSTEM, "value": image.pseudonym}]
    assert found["Observation"]["subject"] == {"reference": f"Patient/{image.pseudonym}"}
    assert report["subject"] == {"identifier": {"system": PSEUDONYM_SYSTEM, "value": image.pseudonym}}
    assert report["imagingStudy"][0]["identifier"]["value"] == f"urn:oid:{image.dataset.StudyInstanceUID}"
    shift = dt.timedelta(days=date_shift_days("MRN-3301", key=KEY))
    dicom_shift = (dt.datetime.strptime(image.dataset.StudyDate, "%Y%m%d")
                   - dt.datetime.strptime(ct.StudyDate, "%Y%m%d"))  # fmt: skip
    assert dicom_shift == shift
    moved = (dt.date(2026, 5, 1) + shift).isoformat()
    assert found["Observation"]["effectiveDateTime"] == f"{moved}T08:30:00+08:00"  # time of day and zone kept
    assert found["Observation"]["issued"] == f"{moved}T09:02:11.5+08:00"
    assert patient["birthDate"] == (dt.date(1956, 3, 14) + shift).isoformat() and patient["gender"] == "male"
    onset = dt.date(2019, 7, 1) + shift
    assert found["Condition"]["onsetDateTime"] == f"{onset.year:04d}-{onset.month:02d}"  # month precision kept
    assert len(found["Condition"]["recordedDate"]) == 4


def test_each_patient_in_a_bundle_has_their_own_pseudonym_and_shift_and_content_is_kept() -> None:
    bundle = deidentify_resources([_record()], key=KEY, patient_system=MRN_SYSTEM).resources[0]
    found = _entries(bundle)
    other = found["Observation-other"]
    assert other["subject"]["reference"] == f"Patient/{pseudonymize_patient_id('Patient/p-li', key=KEY)}"
    shift = dt.timedelta(days=date_shift_days("Patient/p-li", key=KEY))
    assert other["effectiveDateTime"] == f"{(dt.date(2026, 5, 1) + shift).isoformat()}T08:30:00+08:00"
    assert other["valueQuantity"] == {"value": 150, "unit": "mmHg"}
    assert found["Observation"]["valueQuantity"]["value"] == 118 and found["Observation"]["code"]["text"] == "血红蛋白"
    assert found["Condition"]["code"]["coding"][0]["code"] == "I10"
    report = found["DiagnosticReport"]
    assert report["result"] == [{"reference": "#f1"}] and report["contained"][0]["id"] == "f1"
    assert all(e["fullUrl"].startswith("https://deidentified.invalid/fhir/") for e in bundle["entry"])
    performer = found["Observation"]["performer"][0]["reference"]  # the HIS's own URL is not kept
    assert performer.startswith("https://deidentified.invalid/fhir/Practitioner/") and "dr-li" not in performer
    assert "generalPractitioner" not in found["Patient"]  # not one of the elements a Patient keeps


def test_the_same_key_gives_the_same_output_and_another_key_unrelated_output() -> None:
    first = deidentify_resources([_record()], key=KEY, patient_system=MRN_SYSTEM)
    again = deidentify_resources([_record()], key=KEY, patient_system=MRN_SYSTEM)
    other = deidentify_resources([_record()], key=b"another key of 32 bytes........", patient_system=MRN_SYSTEM)
    assert first.resources == again.resources
    assert set(first.pseudonyms.values()).isdisjoint(other.pseudonyms.values())


def test_resources_in_separate_files_link_through_the_patient_resource() -> None:
    record = _record()
    patient, observation = record["entry"][0]["resource"], record["entry"][1]["resource"]
    result = deidentify_resources([observation, patient], key=KEY, patient_system=MRN_SYSTEM)
    assert result.resources[0]["subject"]["reference"] == f"Patient/{result.resources[1]['id']}"
    assert result.resources[1]["id"] == pseudonymize_patient_id("MRN-3301", key=KEY)


def test_without_the_dates_option_no_date_is_kept() -> None:
    result = deidentify_resources([_record()], key=KEY, patient_system=MRN_SYSTEM,
                                  options=DeidOptions(retain_modified_dates=False))  # fmt: skip
    text = json.dumps(result.resources)
    assert result.summary.dates_shifted == 0 and result.summary.dates_removed == 9  # every date in the record
    assert "2026-" not in text and "1956" not in text and "2019" not in text


def test_a_modifier_extension_or_a_bad_key_is_refused(tmp_path: Path) -> None:
    record = _record()
    negated = copy.deepcopy(record)
    negated["entry"][3]["resource"]["modifierExtension"] = [{"url": "urn:local:refuted", "valueBoolean": True}]
    for documents, key, code in (([negated], KEY, "modifier_extension"), ([record], b"short", "invalid_key"),
                                 ([["not", "fhir"]], KEY, "not_fhir")):  # fmt: skip
        with pytest.raises(InvalidInputError) as refused:
            deidentify_resources(documents, key=key, patient_system=MRN_SYSTEM)  # type: ignore[arg-type]
        assert refused.value.code == code


def test_a_transaction_bundle_referring_by_urn_uuid_keeps_each_patients_shift() -> None:
    def patient(url: str, mrn: str) -> dict[str, Any]:
        return {"fullUrl": url, "request": {"method": "POST", "url": "Patient"}, "resource": {
            "resourceType": "Patient", "identifier": [{"system": MRN_SYSTEM, "value": mrn}], "name": [{"text": mrn}]}}

    first, second = "urn:uuid:5f0c6a4e-0000-4000-8000-000000000001", "urn:uuid:5f0c6a4e-0000-4000-8000-000000000002"
    observation = {"fullUrl": "urn:uuid:5f0c6a4e-0000-4000-8000-000000000003", "resource": {
        "resourceType": "Observation", "status": "final", "code": {"text": "BP"}, "subject": {"reference": second},
        "effectiveDateTime": "2026-05-01T08:30:00+08:00"}}  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "transaction",
              "entry": [patient(first, "MRN-1"), patient(second, "MRN-2"), observation]}  # fmt: skip
    out = deidentify_resources([bundle], key=KEY, patient_system=MRN_SYSTEM).resources[0]["entry"]
    shift = dt.timedelta(days=date_shift_days("MRN-2", key=KEY))
    assert out[2]["resource"]["effectiveDateTime"] == f"{(dt.date(2026, 5, 1) + shift).isoformat()}T08:30:00+08:00"
    assert out[2]["resource"]["subject"]["reference"] == out[1]["fullUrl"] != out[0]["fullUrl"]
    assert out[1]["resource"]["id"] == pseudonymize_patient_id("MRN-2", key=KEY)
