"""FHIR Bundle in (LOINC + UCUM), RiskAssessment out, validated with fhir.resources."""

import copy
import datetime as dt

import pytest
from fhir.resources.R4B.riskassessment import RiskAssessment

from cds.errors import InvalidInputError
from cds.interop.fhir_inputs import parse_bundle
from cds.interop.fhir_risk import risk_assessment
from cds.interop.units import Quantity, from_canonical, to_canonical
from cds.models.risk import get_equation
from cds.pipelines.risk.equation import EquationPipeline


def observation(id_: str, loinc: str, value: float, unit: str, date: str = "2025-06-01") -> dict:
    quantity = {"value": value, "system": "http://unitsofmeasure.org", "code": unit}
    return {"resource": {"resourceType": "Observation", "id": id_, "status": "final",
                         "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
                         "effectiveDateTime": date, "valueQuantity": quantity}}  # fmt: skip


def bundle() -> dict:
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1970-03-15",
                      "extension": [{"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                                     "extension": [{"url": "ombCategory", "valueCoding": {
                                         "system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3"}}]}]}},
        observation("tc", "2093-3", 5.508, "mmol/L"),          # 213 mg/dL
        observation("hdl", "2085-9", 1.293, "mmol/L"),         # 50 mg/dL
        observation("sbp-old", "8480-6", 150, "mm[Hg]", "2024-01-01"),
        observation("sbp", "8480-6", 16.0, "kPa"),             # 120 mm[Hg]
        observation("cr", "2160-0", 88.42, "umol/L"),          # 1.0 mg/dL
        observation("gfr", "98979-8", 90, "mL/min/{1.73_m2}"),
        {"resource": {"resourceType": "Observation", "id": "smk", "status": "final",
                      "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
                      "effectiveDateTime": "2025-06-01",
                      "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "266919005"}]}}},
    ]}  # fmt: skip


AS_OF = dt.date(2025, 6, 1)  # the sample's newest reading: the worked example's age (55)


def test_bundle_values_are_converted_to_equation_units() -> None:
    inputs = parse_bundle(bundle(), as_of=AS_OF)
    assert inputs.values["total_cholesterol"] == pytest.approx(213, abs=0.1)
    assert inputs.values["hdl_cholesterol"] == pytest.approx(50, abs=0.1)
    assert inputs.values["systolic_bp"] == pytest.approx(120.01, abs=0.01)  # newest reading wins, kPa -> mm[Hg]
    assert inputs.values["creatinine"] == pytest.approx(1.0)
    assert inputs.values["egfr"] == 90
    assert inputs.values["smoker"] is False and inputs.values["race"] == "white" and inputs.values["sex"] == "female"
    assert inputs.values["age"] == 55  # at the evaluation date
    assert inputs.basis["systolic_bp"] == "Observation/sbp"
    assert "diabetes" not in inputs.values  # no Condition: not assumed absent


def test_age_is_computed_at_the_evaluation_date_today_by_default() -> None:
    today = dt.datetime.now(dt.UTC).date()
    born = dt.date(1970, 3, 15)
    expected = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    assert parse_bundle(bundle()).values["age"] == expected
    assert parse_bundle(bundle(), as_of=dt.date(2030, 3, 15)).values["age"] == 60


def test_bundle_to_valid_risk_assessment_reproduces_the_worked_example() -> None:
    inputs = parse_bundle(bundle(), as_of=AS_OF)
    equation = get_equation("pce")
    result = EquationPipeline(equation)(inputs.values | {"bp_treated": False, "diabetes": False})
    assert round(100 * result.score, 1) == 2.1
    resource = risk_assessment(result, outcome=equation.outcome, patient_reference=inputs.patient_reference,
                               basis={k: v for k, v in inputs.basis.items() if k in result.inputs})  # fmt: skip
    parsed = RiskAssessment.model_validate(resource)
    prediction = parsed.prediction[0]
    assert float(prediction.probabilityDecimal) == pytest.approx(result.score, abs=1e-6)
    assert prediction.qualitativeRisk.coding[0].code == "low"
    assert parsed.subject.reference == "Patient/p1"
    assert {b.reference for b in parsed.basis} == {"Observation/tc", "Observation/hdl", "Observation/sbp",
                                                   "Observation/smk"}  # fmt: skip
    assert parsed.method.coding[0].code == "pce@2013"


def test_diabetes_condition_is_read() -> None:
    doc = bundle()
    doc["entry"].append({"resource": {"resourceType": "Condition", "id": "dm", "subject": {"reference": "Patient/p1"},
                                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm",
                                                           "code": "E11.9"}]}}})  # fmt: skip
    inputs = parse_bundle(doc)
    assert inputs.values["diabetes"] is True and inputs.basis["diabetes"] == "Condition/dm"


def test_out_of_range_result_has_no_prediction() -> None:
    equation = get_equation("pce")
    values = parse_bundle(bundle()).values | {"bp_treated": False, "diabetes": False, "age": 85}
    result = EquationPipeline(equation)(values)
    resource = risk_assessment(result, outcome=equation.outcome)
    assert "prediction" not in resource and "age outside the range" in resource["note"][0]["text"]


def test_a_unit_that_cannot_be_converted_leaves_only_its_input_missing_naming_supported_ones() -> None:
    doc = bundle()
    doc["entry"][1] = observation("tc", "2093-3", 5.5, "g/L")
    read = parse_bundle(doc)
    assert "total_cholesterol" not in read.values and read.values["hdl_cholesterol"] == pytest.approx(50, abs=0.1)
    assert "Observation/tc not used" in read.problems["total_cholesterol"]
    assert "supported: mg/dL, mmol/L" in read.problems["total_cholesterol"]
    with pytest.raises(InvalidInputError, match="supported: mg/dL, mmol/L") as err:
        to_canonical(5.5, "g/L", Quantity.CHOLESTEROL)
    assert err.value.code == "unsupported_unit"


@pytest.mark.parametrize("breakage", ["not a bundle", "two patients", "bad date"])
def test_invalid_bundles_are_refused(breakage: str) -> None:
    doc = copy.deepcopy(bundle())
    if breakage == "not a bundle":
        doc = {"resourceType": "Patient"}
    elif breakage == "two patients":
        doc["entry"].append(copy.deepcopy(doc["entry"][0]))
    else:
        doc["entry"][0]["resource"]["birthDate"] = "15/03/1970"
    with pytest.raises(InvalidInputError) as err:
        parse_bundle(doc)
    assert err.value.code == "invalid_fhir"


def test_unit_conversions() -> None:
    assert to_canonical(1.0, "mmol/L", Quantity.CHOLESTEROL) == pytest.approx(38.67)
    assert to_canonical(88.42, "µmol/L", Quantity.CREATININE) == pytest.approx(1.0)
    assert to_canonical(3.0, "mg/mmol", Quantity.ACR) == pytest.approx(26.526)
    assert to_canonical(40, "[in_i]", Quantity.LENGTH) == pytest.approx(101.6)


def medication(id_: str, atc: str | None) -> dict:
    concept = {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}]} if atc else {"text": "unknown pill"}
    return {"resource": {"resourceType": "MedicationRequest", "id": id_, "status": "active", "intent": "order",
                         "subject": {"reference": "Patient/p1"}, "medicationCodeableConcept": concept}}  # fmt: skip


def test_complete_lists_turn_absence_into_no_only_when_safe() -> None:
    doc = bundle()
    doc["entry"] += [medication("ramipril", "C09AA05"), medication("metformin", "A10BA02")]
    inputs = parse_bundle(doc, complete_lists=True)
    assert inputs.values["bp_treated"] is True and inputs.basis["bp_treated"] == "MedicationRequest/ramipril"
    assert inputs.values["statin"] is False and inputs.values["diabetes"] is False
    assert "statin" not in parse_bundle(doc).values  # without complete lists nothing is concluded from absence
    doc["entry"].append(medication("mystery", None))
    unclassifiable = parse_bundle(doc, complete_lists=True)
    assert unclassifiable.values["bp_treated"] is True and "statin" not in unclassifiable.values
    doc["entry"].append(observation("a1c", "4548-4", 7.1, "%"))
    assert "diabetes" not in parse_bundle(doc, complete_lists=True).values  # HbA1c >= 6.5 % without a diagnosis


@pytest.mark.parametrize(("born", "age", "bounds"), [
    ("1961-04", 65, None), ("1961-11-30", 65, None), ("1961-12-02", 64, None),
    ("1961-12", 64, "64-65"),  # 1 Dec 1961 would be 65 on 1 Dec 2026; the middle of December, 64
    ("1961", 65, "64-65"),  # born before 2 Dec: 65; from 2 to 31 Dec: 64; mid-year: 65
])  # fmt: skip
def test_a_partial_birth_date_gives_an_age_stated_as_approximate_with_its_bounds(born: str, age: int,
                                                                                  bounds: str | None) -> None:
    doc = bundle()
    patient = next(e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["birthDate"] = born  # FHIR allows YYYY and YYYY-MM
    read = parse_bundle(doc, as_of=dt.date(2026, 12, 1))
    assert read.values["age"] == age
    if bounds is None:
        assert "age" not in read.notes
    else:
        (note,) = read.notes["age"]
        assert f"gives {bounds} years at 2026-12-01" in note and "approximate" in note


def test_a_birth_date_after_the_evaluation_date_gives_no_age_and_says_why() -> None:
    doc = bundle()
    doc["entry"][0]["resource"]["birthDate"] = "2030"
    read = parse_bundle(doc, as_of=dt.date(2026, 12, 1))
    assert "age" not in read.values and "after the evaluation date" in read.problems["age"]


def _about(entry: dict, reference: str) -> dict:
    entry["resource"]["subject"] = {"reference": reference}
    return entry


def test_only_the_patients_own_resources_are_read_and_the_rest_named() -> None:
    own = bundle()
    own["entry"][0]["fullUrl"] = "urn:uuid:5b1d2f4e-7c1a-4e55-9a3a-0c2b7f6d1e10"
    _about(own["entry"][1], "Patient/p1")
    _about(own["entry"][2], "urn:uuid:5b1d2f4e-7c1a-4e55-9a3a-0c2b7f6d1e10")  # by the Patient entry's fullUrl
    _about(own["entry"][3], "https://ehr.example.org/fhir/Patient/p1")  # absolute URL of the same patient
    mixed = copy.deepcopy(own)
    newest = observation("sbp-other", "8480-6", 190, "mm[Hg]", "2025-06-20")  # another patient's, and newer
    mixed["entry"].append(_about(newest, "Patient/p2"))
    mixed["entry"].append(_about(observation("tc-group", "2093-3", 9.0, "mmol/L"), "Group/ward-7"))
    clean, read = parse_bundle(own), parse_bundle(mixed)
    assert read.values == clean.values and read.basis["systolic_bp"] == "Observation/sbp"
    assert clean.warnings == []
    (warning,) = read.warnings
    assert "2 resource(s) about another subject ignored" in warning
    assert "Observation/sbp-other" in warning and "Observation/tc-group" in warning


def test_an_observation_dated_after_the_evaluation_date_is_ignored_with_a_warning() -> None:
    future = bundle()
    future["entry"].append(observation("sbp-future", "8480-6", 180, "mm[Hg]", "2031-01-01"))
    read = parse_bundle(future, as_of=dt.date(2025, 7, 1))
    assert read.values["systolic_bp"] == pytest.approx(120.01, abs=0.01) and read.values["age"] == 55
    assert read.warnings == ["1 Observation(s) dated after 2025-07-01 ignored: Observation/sbp-future"]


@pytest.mark.parametrize(("value", "unit", "quantity"), [
    (5.2, "mmol/l", Quantity.CHOLESTEROL), (97.0, "µmol/L", Quantity.CREATININE), (53.0, "mmol/mol", Quantity.HBA1C),
    (99.5, "°F", Quantity.TEMPERATURE), (154.0, "lbs", Quantity.MASS), (18.0, "kPa", Quantity.PRESSURE)])
def test_a_value_converts_back_to_the_unit_it_arrived_in(value: float, unit: str, quantity: Quantity) -> None:
    canonical = to_canonical(value, unit, quantity)
    assert canonical != pytest.approx(value)  # a real conversion, not the identity
    assert from_canonical(canonical, unit, quantity) == pytest.approx(value)
    assert from_canonical(canonical, "g/L", quantity) is None  # not a unit of this quantity
