"""Reading risk inputs from records the way hospitals write them: other editions of ICD-10, SNOMED CT, molar units
under their own LOINC codes, diabetes shown only by laboratory results, established ASCVD, several readings per
visit, conflicting and stale values, and per-input caveats that travel with the results that use them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cds.interop.fhir_inputs import parse_bundle
from cds.interop.record_readings import STALE_AFTER_DAYS
from cds.models.risk import get_equation
from cds.models.risk.base import RiskPopulation
from cds.pipelines.risk.equation import EquationPipeline
from cds.pipelines.risk.panel import assess_patient
from cds.results.risk import NotScored, Topic
from cds.services.risk import assess_record
from cds.settings import REPO_ROOT

AS_OF = dt.date(2026, 11, 20)
PATIENT = "urn:uuid:9a1c0c4e-3b7e-4a86-8f0e-2f1b6f6b8d11"


def patient(birth: str = "1966-04-12", gender: str = "male") -> dict:
    return {"fullUrl": PATIENT, "resource": {
        "resourceType": "Patient", "id": "zhang-san", "gender": gender, "birthDate": birth,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "11010119660412001X"}],
        "name": [{"text": "张三", "family": "张", "given": ["三"]}]}}  # fmt: skip


def obs(id_: str, loinc: str, value: float, unit: str, when: str = "2026-10-08", display: str = "") -> dict:
    return {"fullUrl": f"urn:uuid:{id_}", "resource": {
        "resourceType": "Observation", "id": id_, "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc, "display": display or loinc},
                            {"system": "urn:oid:1.2.156.112604.1.2.1", "code": f"LOCAL-{loinc}"}],
                 "text": display or loinc},
        "subject": {"reference": PATIENT}, "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}}}  # fmt: skip


def condition(id_: str, system: str, code: str, *, status: str | None = "active", text: str = "") -> dict:
    resource: dict = {"resourceType": "Condition", "id": id_, "subject": {"reference": "Patient/zhang-san"},
                      "code": {"coding": [{"system": system, "code": code}], "text": text or code}}
    if status:
        resource["clinicalStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": status}]}
    return {"resource": resource}


def record(*entries: dict, birth: str = "1966-04-12") -> dict:
    base = [obs("tc", "14647-2", 5.6, "mmol/L", display="总胆固醇"), obs("hdl", "14646-4", 1.1, "mmol/L"),
            obs("sbp1", "8480-6", 148, "mm[Hg]", "2026-10-08T09:10:00+08:00"),
            obs("sbp2", "8480-6", 152, "mm[Hg]", "2026-10-08T09:12:00+08:00")]  # fmt: skip
    return {"resourceType": "Bundle", "type": "collection", "entry": [patient(birth), *base, *entries]}


@pytest.mark.parametrize(("system", "code"), [
    ("urn:oid:2.16.156.10011.2.3.3.11", "E11.900x001"),  # China's national clinical edition, with its extension
    ("http://hl7.org/fhir/sid/icd-10-cn", "E11.900"),
    ("http://id.who.int/icd/release/10/2019", "E119"),  # WHO, dotless
    ("http://hl7.org/fhir/sid/icd-10-cm", "E11.65"),
    ("http://snomed.info/sct", "313436004"),
])  # fmt: skip
def test_diabetes_is_read_from_any_icd10_edition_and_snomed(system: str, code: str) -> None:
    read = parse_bundle(record(condition("dm", system, code, text="2型糖尿病")), as_of=AS_OF)
    assert read.values["diabetes"] is True and read.basis["diabetes"] == "Condition/dm"
    assert any("recorded diagnosis" in n for n in read.notes["diabetes"])


@pytest.mark.parametrize(("system", "code", "status"), [
    ("http://hl7.org/fhir/sid/icd-10-pcs", "E11", "active"),  # a procedure code system, not a diagnosis
    ("urn:oid:2.16.156.10011.2.3.3.11", "E11.900x001", "resolved"),
    ("urn:oid:2.16.156.10011.2.3.3.11", "E16.2", "active"),  # hypoglycaemia, not diabetes
])  # fmt: skip
def test_what_is_not_active_diabetes_is_not_read_as_diabetes(system: str, code: str, status: str) -> None:
    assert "diabetes" not in parse_bundle(record(condition("c", system, code, status=status)), as_of=AS_OF).values


@pytest.mark.parametrize("verification", ["refuted", "provisional", "entered-in-error"])
def test_a_refuted_or_unconfirmed_diagnosis_is_not_read(verification: str) -> None:
    entry = condition("dm", "http://hl7.org/fhir/sid/icd-10", "E11.9")
    entry["resource"]["verificationStatus"] = {"coding": [{
        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]}
    assert "diabetes" not in parse_bundle(record(entry), as_of=AS_OF).values
    assert parse_bundle(record(entry), as_of=AS_OF, complete_lists=True).values["diabetes"] is False


def test_one_abnormal_fasting_glucose_is_unconfirmed_diabetes_never_no_diabetes() -> None:
    fpg = obs("fpg", "14771-0", 8.0, "mmol/L", "2026-10-08", "空腹血糖")
    read = parse_bundle(record(fpg), as_of=AS_OF, complete_lists=True)
    assert "diabetes" not in read.values  # complete lists would otherwise say "no"
    problem = read.problems["diabetes"]
    assert "unconfirmed" in problem and "fasting plasma glucose 8.0 mmol/L on 2026-10-08 (Observation/fpg)" in problem
    cardiovascular = next(e for e in assess_record(read, RiskPopulation.CHINA) if e.topic is Topic.CARDIOVASCULAR)
    assert cardiovascular.result is None and "diabetes" in cardiovascular.missing
    assert "unconfirmed" in cardiovascular.reason


@pytest.mark.parametrize(("second", "confirmed"), [
    (obs("a1c", "59261-8", 53, "mmol/mol", "2026-10-20"), True),  # IFCC 53 mmol/mol = 7.0 % NGSP, another day
    (obs("fpg2", "1558-6", 140, "mg/dL", "2026-10-21"), True),  # 7.8 mmol/L by mass, another day
    (obs("a1c", "4548-4", 7.1, "%", "2026-10-08"), False),  # the same day: the guideline asks for another day
    (obs("fpg2", "1558-6", 100, "mg/dL", "2026-10-21"), False),  # normal on the second day
])  # fmt: skip
def test_diabetes_from_labs_needs_an_abnormal_result_on_a_second_day(second: dict, confirmed: bool) -> None:
    fpg = obs("fpg", "14771-0", 8.0, "mmol/L", "2026-10-08")
    read = parse_bundle(record(fpg, second), as_of=AS_OF, complete_lists=True)
    assert (read.values.get("diabetes") is True) is confirmed
    if confirmed:
        assert read.basis["diabetes"] == "Observation/fpg" and "two days" in read.notes["diabetes"][0]
    else:
        assert "unconfirmed" in read.problems["diabetes"]


def test_hba1c_in_ifcc_units_converts_by_the_master_equation() -> None:
    read = parse_bundle(record(obs("a1c", "59261-8", 48, "mmol/mol")), as_of=AS_OF)
    assert read.values["hba1c"] == pytest.approx(0.09148 * 48 + 2.152)  # 6.54 % NGSP


def test_molar_creatinine_under_its_own_code_feeds_a_derived_egfr_that_prevent_uses() -> None:
    read = parse_bundle(record(obs("cr", "14682-9", 97, "umol/L", display="肌酐")), as_of=AS_OF)
    assert read.values["creatinine"] == pytest.approx(97 / 88.42)
    expected = get_equation("ckd_epi_2021").evaluate({"creatinine": 97 / 88.42, "age": 60, "sex": "male"}).score[0]
    assert read.values["egfr"] == pytest.approx(expected) and read.basis["egfr"] == "Observation/cr"
    assert "computed from creatinine" in read.notes["egfr"][0]
    values = read.values | {"bp_treated": True, "diabetes": False, "smoker": False, "statin": False,
                           "race": "other"}
    entries = assess_patient(values, problems=read.problems)
    cardiovascular = next(e for e in entries if e.topic is Topic.CARDIOVASCULAR)
    assert cardiovascular.method == "prevent_cvd" and cardiovascular.result is not None  # no "missing egfr"
    assert cardiovascular.result.inputs["egfr"] == pytest.approx(expected)


def test_a_recorded_egfr_is_used_rather_than_derived() -> None:
    read = parse_bundle(record(obs("cr", "14682-9", 97, "umol/L"), obs("gfr", "98979-8", 71, "mL/min/{1.73_m2}")),
                        as_of=AS_OF)  # fmt: skip
    assert read.values["egfr"] == 71 and "egfr" not in read.notes


@pytest.mark.parametrize(("entry", "evidence"), [
    (condition("mi", "urn:oid:2.16.156.10011.2.3.3.11", "I25.200", status="resolved", text="陈旧性心肌梗死"),
     "chronic ischaemic heart disease, ICD-10 I25.200"),
    (condition("stroke", "http://snomed.info/sct", "422504002", status="inactive"), "ischaemic stroke"),
    (condition("pad", "http://hl7.org/fhir/sid/icd-10", "I70.21"), "extremities"),
    ({"resource": {"resourceType": "Procedure", "id": "pci", "status": "completed",
                   "subject": {"reference": "Patient/zhang-san"},
                   "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-9-cm", "code": "36.06"}]}}},
     "coronary revascularisation"),
])  # fmt: skip
def test_established_ascvd_gives_secondary_prevention_never_a_primary_prevention_score(entry: dict,
                                                                                    evidence: str) -> None:
    read = parse_bundle(record(entry), as_of=AS_OF)
    assert len(read.ascvd) == 1 and evidence in read.ascvd[0]
    values = read.values | {"bp_treated": True, "diabetes": False, "smoker": False, "egfr": 80.0}
    entries = assess_patient(values, ascvd=read.ascvd)
    cardiovascular = next(e for e in entries if e.topic is Topic.CARDIOVASCULAR)
    assert cardiovascular.not_scored is NotScored.ESTABLISHED_ASCVD and cardiovascular.result is None
    assert evidence in cardiovascular.reason
    assert next(e for e in entries if e.topic is Topic.KIDNEY).not_scored is not NotScored.ESTABLISHED_ASCVD


def test_excluded_and_unrelated_codes_are_not_ascvd() -> None:
    amnesia = condition("tga", "http://hl7.org/fhir/sid/icd-10", "G45.4")  # transient global amnesia
    haemorrhage = condition("ich", "http://hl7.org/fhir/sid/icd-10", "I61.9")
    planned = {"resource": {"resourceType": "Procedure", "id": "cabg", "status": "preparation",
                            "subject": {"reference": "Patient/zhang-san"},
                            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "232717009"}]}}}
    assert parse_bundle(record(amnesia, haemorrhage, planned), as_of=AS_OF).ascvd == []


def test_blood_pressure_is_the_mean_of_the_last_visits_readings() -> None:
    older = obs("sbp0", "8480-6", 170, "mm[Hg]", "2026-09-01")
    read = parse_bundle(record(older), as_of=AS_OF)
    assert read.values["systolic_bp"] == pytest.approx(150.0)  # (148 + 152) / 2 on 2026-10-08; September ignored
    assert any("mean of the 2 readings on 2026-10-08" in n for n in read.notes["systolic_bp"])


def test_conflicting_same_day_lab_values_are_flagged_not_settled_by_order() -> None:
    doc = record(obs("tc-b", "2093-3", 260, "mg/dL"))  # 6.7 mmol/L beside 5.6 mmol/L the same day
    read = parse_bundle(doc, as_of=AS_OF)
    assert "total_cholesterol" not in read.values
    assert "disagree" in read.problems["total_cholesterol"] and "Observation/tc-b" in read.problems["total_cholesterol"]
    doc["entry"][1], doc["entry"][-1] = doc["entry"][-1], doc["entry"][1]  # the other order: the same answer
    assert parse_bundle(doc, as_of=AS_OF).problems == read.problems
    same = parse_bundle(record(obs("tc-b", "2093-3", 216.5, "mg/dL")), as_of=AS_OF)  # 5.6 mmol/L in mg/dL
    assert same.values["total_cholesterol"] == pytest.approx(216.5, abs=0.2) and not same.problems


def test_stale_inputs_are_used_and_marked_stale_in_the_results_that_use_them() -> None:
    doc = record()
    doc["entry"][1] = obs("tc", "14647-2", 5.6, "mmol/L", "2011-05-01")  # 15-year-old total cholesterol
    read = parse_bundle(doc, as_of=AS_OF)
    assert read.values["total_cholesterol"] == pytest.approx(5.6 * 38.67)
    (note,) = read.notes["total_cholesterol"]
    assert "stale" in note and "2011-05-01" in note and f"limit {STALE_AFTER_DAYS['total_cholesterol']} days" in note
    values = read.values | {"bp_treated": True, "diabetes": False, "smoker": False, "statin": False,
                           "race": "other"}
    result = EquationPipeline(get_equation("pce"))({f: values.get(f) for f in get_equation("pce").field_names()})
    from cds.services.risk import with_input_warnings

    assert any("total_cholesterol is stale" in w for w in with_input_warnings(result, read).warnings)
    kidney = EquationPipeline(get_equation("ckd_epi_2021"))({"creatinine": 1.0, "age": 60, "sex": "male"})
    assert not any("stale" in w for w in with_input_warnings(kidney, read).warnings)  # not an input of it
    assert "total_cholesterol" not in parse_bundle(doc, as_of=AS_OF, stale_days={"total_cholesterol": 9000}).notes


def test_an_impossible_value_affects_only_the_topics_that_need_it() -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"))
    doc["entry"][3] = obs("sbp1", "8480-6", 1480, "mm[Hg]", "2026-10-08T09:10:00+08:00")  # a typing slip
    doc["entry"][4] = obs("sbp2", "8480-6", 1520, "mm[Hg]", "2026-10-08T09:12:00+08:00")
    read = parse_bundle(doc, as_of=AS_OF)
    entries = {e.topic: e for e in assess_patient(read.values | {"bp_treated": True, "diabetes": False,
                                                                 "smoker": False, "statin": False})}  # fmt: skip
    assert entries[Topic.CARDIOVASCULAR].not_scored is NotScored.IMPOSSIBLE_VALUE
    # the recorded slip is named, not the mean of the visit's readings (1500)
    assert "systolic_bp is impossible (1480)" in entries[Topic.CARDIOVASCULAR].reason
    assert any("outside physiological limits" in n for n in read.notes["systolic_bp"])
    assert entries[Topic.KIDNEY].result is not None  # creatinine, age and sex are fine


def test_a_seventeen_year_old_gets_cards_that_say_why_not_instead_of_no_answer() -> None:
    read = parse_bundle(record(obs("cr", "14682-9", 80, "umol/L"), birth="2009-05-01"), as_of=AS_OF)
    entries = assess_patient(read.values)  # some topics also lack inputs: the impossible age is named first
    assert len(entries) == 3
    for entry in entries:
        assert entry.not_scored is NotScored.IMPOSSIBLE_VALUE and entry.result is None
        assert entry.reason.startswith("age is impossible (17); allowed 18")
    diabetes = next(e for e in entries if e.topic is Topic.DIABETES)
    assert "family_history" in diabetes.reason  # and what else it lacks


QUESTIONNAIRE = json.loads((REPO_ROOT / "samples" / "findrisc-questionnaire.json").read_text(encoding="utf-8"))


def response(answers: dict[str, dict], *, authored: str = "2026-10-08T10:00:00+08:00", id_: str = "qr",
             status: str = "completed") -> dict:
    return {"resource": {"resourceType": "QuestionnaireResponse", "id": id_, "status": status,
                         "questionnaire": f"{QUESTIONNAIRE['url']}|{QUESTIONNAIRE['version']}",
                         "subject": {"reference": "Patient/zhang-san"}, "authored": authored,
                         "item": [{"linkId": k, "answer": [v]} for k, v in answers.items()]}}  # fmt: skip


YES = {"valueCoding": {"system": "http://loinc.org", "code": "LA33-6"}}
NO = {"valueCoding": {"system": "http://loinc.org", "code": "LA32-8"}}


def test_the_findrisc_questionnaire_is_valid_fhir_and_names_the_fields_it_answers() -> None:
    from fhir.resources.R4B.questionnaire import Questionnaire

    questionnaire = Questionnaire.model_validate(QUESTIONNAIRE)
    findrisc = get_equation("findrisc")
    asked = {item.linkId for item in questionnaire.item}
    assert asked <= set(findrisc.field_names())
    assert set(findrisc.field_names()) - asked == {"age", "sex", "bmi", "waist_cm"}  # Patient and Observations


def test_findrisc_from_a_questionnaire_response_scores_with_the_forms_points() -> None:
    family = {"valueCoding": {"system": "urn:cds:codesystem:findrisc-family-history", "code": "first_degree"}}
    answers = {"physically_active": NO, "daily_vegetables": {"valueBoolean": True}, "bp_treated": YES,
               "high_glucose_history": NO, "family_history": family}  # fmt: skip
    doc = record(response(answers), obs("bmi", "39156-5", 27.5, "kg/m2"), obs("waist", "8280-0", 96, "cm"))
    read = parse_bundle(doc, as_of=AS_OF)
    assert read.basis["family_history"] == "QuestionnaireResponse/qr"
    diabetes = next(e for e in assess_record(read, RiskPopulation.US) if e.topic is Topic.DIABETES)
    assert diabetes.result is not None and diabetes.method == "findrisc"
    # man of 60: age 55-64 -> 3; BMI 25-30 -> 1; waist 94-102 (men) -> 3; inactive -> 2; vegetables daily -> 0;
    # treated -> 2; no high glucose -> 0; parent or sibling with diabetes -> 5: 16 points, "high" (15-20)
    assert diabetes.result.score == 16 and diabetes.result.band == "high"


def test_unanswered_or_unreadable_findrisc_items_are_listed_as_missing() -> None:
    doc = record(response({"physically_active": YES, "daily_vegetables": {"valueString": "sometimes"}}),
                 obs("bmi", "39156-5", 27.5, "kg/m2"), obs("waist", "8280-0", 96, "cm"))  # fmt: skip
    read = parse_bundle(doc, as_of=AS_OF)
    assert any("daily_vegetables could not be read" in w for w in read.warnings)
    diabetes = next(e for e in assess_record(read, RiskPopulation.US) if e.topic is Topic.DIABETES)
    assert diabetes.result is None
    assert set(diabetes.missing) == {"daily_vegetables", "bp_treated", "high_glucose_history", "family_history"}


def test_only_the_newest_completed_response_counts() -> None:
    older = response({"high_glucose_history": YES}, authored="2025-01-01", id_="old")
    newer = response({"high_glucose_history": NO}, authored="2026-09-01", id_="new")
    draft = response({"high_glucose_history": YES}, authored="2026-11-01", id_="draft", status="in-progress")
    read = parse_bundle(record(older, newer, draft), as_of=AS_OF)
    assert read.values["high_glucose_history"] is False and read.basis["high_glucose_history"] == "QuestionnaireResponse/new"


def test_a_chinese_site_scores_diabetes_with_the_chinese_score_and_says_where_us_equations_do_not_belong() -> None:
    family = {"valueCoding": {"system": "urn:cds:codesystem:findrisc-family-history", "code": "first_degree"}}
    doc = record(response({"family_history": family}), obs("bmi", "39156-5", 25.0, "kg/m2"),
                 obs("waist", "8280-0", 88, "cm"), obs("cr", "14682-9", 97, "umol/L"))  # fmt: skip
    read = parse_bundle(doc, as_of=AS_OF)
    values = read.values | {"bp_treated": True, "diabetes": False, "smoker": True, "statin": False}
    china = {e.topic: e for e in assess_patient(values, population=RiskPopulation.CHINA)}
    us = {e.topic: e for e in assess_patient(values, population=RiskPopulation.US)}
    diabetes = china[Topic.DIABETES]
    assert diabetes.method == "cdrs" and diabetes.result is not None
    # man of 60 (16) + male (2) + waist 88 (7) + BMI 25 (3) + SBP 150 (8) + parent or sibling (6) = 42: OGTT
    assert diabetes.result.score == 42 and diabetes.result.category == "OGTT recommended"
    assert not diabetes.result.outside_population
    cardiovascular = china[Topic.CARDIOVASCULAR].result
    assert cardiovascular is not None and cardiovascular.outside_population
    assert any("used outside its derivation population" in w for w in cardiovascular.warnings)
    assert us[Topic.DIABETES].method == "findrisc"
    assert us[Topic.CARDIOVASCULAR].result is not None and not us[Topic.CARDIOVASCULAR].result.outside_population


def test_an_asian_patient_scored_with_the_white_pce_says_so() -> None:
    doc = record(obs("cr", "14682-9", 97, "umol/L"))
    doc["entry"][0]["resource"]["extension"] = [{
        "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "extension": [{"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238",
                                                             "code": "2028-9", "display": "Asian"}}]}]  # fmt: skip
    read = parse_bundle(doc, as_of=AS_OF)
    assert read.values["race"] == "other"
    values = read.values | {"bp_treated": True, "diabetes": True, "smoker": True}
    result = EquationPipeline(get_equation("pce"), population=RiskPopulation.US)(
        {f: values.get(f) for f in get_equation("pce").field_names()})
    assert result.outside_population and any("race 'other'" in w for w in result.warnings)


def test_vital_signs_are_read_for_early_warning_scores_and_go_stale_after_a_day() -> None:
    doc = record(obs("rr", "9279-1", 22, "/min"), obs("hr", "8867-4", 112, "{beats}/min"),
                 obs("sat", "59408-5", 93, "%"), obs("temp", "8310-5", 101.3, "[degF]"))  # fmt: skip
    read = parse_bundle(doc, as_of=dt.date(2026, 10, 8))
    assert read.values["respiratory_rate"] == 22 and read.values["heart_rate"] == 112 and read.values["spo2"] == 93
    assert read.values["temperature"] == pytest.approx((101.3 - 32) * 5 / 9)  # 38.5 °C
    assert "temperature" not in read.notes
    later = parse_bundle(doc, as_of=dt.date(2026, 10, 10))
    assert any("stale" in n for n in later.notes["temperature"])
    news2 = get_equation("news2").evaluate(read.values | {"on_oxygen": False, "consciousness": "alert"})
    # RR 22 (2) + SpO2 93 on scale 1 (2) + SBP mean 150 (0) + pulse 112 (2) + 38.5 °C (1) = 7: high
    assert news2.score[0] == 7 and news2.category[0].startswith("high")
