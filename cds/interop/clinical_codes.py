"""The codes a record's risk inputs are recognised by: LOINC, ICD-10 (any edition), SNOMED CT and ATC.

LOINC names measurements; ICD-10 and SNOMED CT conditions and procedures; ATC medicines.

ICD-10 is matched by category whatever the edition: WHO ICD-10, ICD-10-CM, and China's national clinical edition
(国家临床版, e.g. ``E11.900x001``) all extend the same three-character categories, so a code is read by its first
three characters after dropping the dot. A code system counts as ICD-10 when its URI names ICD-10 (``icd-10``,
``icd10``, WHO's ``id.who.int/icd/release/10``, any case; not the procedure system ICD-10-PCS) or is one of the
registered OIDs listed below. SNOMED CT is matched by concept id against the lists below (no terminology server:
descendants not listed are not seen).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cds.interop.units import Quantity

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ATC = "http://www.whocc.no/atc"
ICD10_OIDS = {
    "urn:oid:2.16.840.1.113883.6.3",  # ICD-10 (WHO)
    "urn:oid:2.16.840.1.113883.6.90",  # ICD-10-CM
    "urn:oid:2.16.156.10011.2.3.3.11",  # China, GB/T 14396 (ICD-10) in the national health data standards
}


@dataclass(frozen=True)
class Measure:
    """What a LOINC code measures: the input field it feeds and the kind of quantity (for unit conversion)."""

    field: str
    quantity: Quantity


# LOINC code -> what it measures. Mass and molar variants of one analyte feed the same field; the unit the
# Observation states decides the conversion, so an mmol/L value under a mass code is still read right.
OBSERVATION_CODES: dict[str, Measure] = {
    "8480-6": Measure("systolic_bp", Quantity.PRESSURE),
    "8462-4": Measure("diastolic_bp", Quantity.PRESSURE),
    "2093-3": Measure("total_cholesterol", Quantity.CHOLESTEROL),  # mass/volume
    "14647-2": Measure("total_cholesterol", Quantity.CHOLESTEROL),  # moles/volume
    "2085-9": Measure("hdl_cholesterol", Quantity.CHOLESTEROL),
    "14646-4": Measure("hdl_cholesterol", Quantity.CHOLESTEROL),
    "2089-1": Measure("ldl_cholesterol", Quantity.CHOLESTEROL),
    "13457-7": Measure("ldl_cholesterol", Quantity.CHOLESTEROL),  # calculated
    "18262-6": Measure("ldl_cholesterol", Quantity.CHOLESTEROL),  # direct assay
    "22748-8": Measure("ldl_cholesterol", Quantity.CHOLESTEROL),  # moles/volume
    "2160-0": Measure("creatinine", Quantity.CREATININE),  # mass/volume, serum or plasma
    "38483-4": Measure("creatinine", Quantity.CREATININE),  # mass/volume, blood
    "14682-9": Measure("creatinine", Quantity.CREATININE),  # moles/volume, serum or plasma (umol/L)
    "77140-2": Measure("creatinine", Quantity.CREATININE),  # moles/volume, serum, plasma or blood
    "39156-5": Measure("bmi", Quantity.BMI),
    "8280-0": Measure("waist_cm", Quantity.LENGTH),
    "9318-7": Measure("uacr", Quantity.ACR),
    "14959-1": Measure("uacr", Quantity.ACR),
    "4548-4": Measure("hba1c", Quantity.HBA1C),  # NGSP %
    "17856-6": Measure("hba1c", Quantity.HBA1C),  # NGSP %, by HPLC
    "59261-8": Measure("hba1c", Quantity.HBA1C),  # IFCC mmol/mol
    "1558-6": Measure("fasting_glucose", Quantity.GLUCOSE),  # mass/volume, serum or plasma
    "14771-0": Measure("fasting_glucose", Quantity.GLUCOSE),  # moles/volume, serum or plasma
    "1518-0": Measure("ogtt_2h_glucose", Quantity.GLUCOSE),  # 2 h after 75 g glucose by mouth
    "9279-1": Measure("respiratory_rate", Quantity.RATE),
    "8867-4": Measure("heart_rate", Quantity.RATE),
    "59408-5": Measure("spo2", Quantity.SATURATION),  # by pulse oximetry
    "2708-6": Measure("spo2", Quantity.SATURATION),
    "8310-5": Measure("temperature", Quantity.TEMPERATURE),
    "2345-7": Measure("glucose", Quantity.GLUCOSE),  # any time, serum or plasma (mass)
    "14749-6": Measure("glucose", Quantity.GLUCOSE),  # any time, serum or plasma (moles)
    "2339-0": Measure("glucose", Quantity.GLUCOSE),  # any time, blood (mass)
    "15074-8": Measure("glucose", Quantity.GLUCOSE),  # any time, blood (moles), as the FHIR spec's example sends
    "41653-7": Measure("glucose", Quantity.GLUCOSE),  # capillary blood by glucometer (mass): home meters
    "14743-9": Measure("glucose", Quantity.GLUCOSE),  # capillary blood by glucometer (moles)
    "29463-7": Measure("weight_kg", Quantity.MASS),
    "98979-8": Measure("egfr", Quantity.EGFR),  # eGFR by CKD-EPI 2021 (creatinine)
    "62238-1": Measure("egfr", Quantity.EGFR),  # eGFR by CKD-EPI (creatinine)
}
BP_PANEL = "85354-9"  # carries SBP and DBP as components
OXYGEN_FLOW = "3151-8"  # inhaled oxygen flow rate, L/min: above 0 is "on oxygen"
OXYGEN_CONCENTRATION = "3150-0"  # inhaled oxygen concentration, %: above room air's 21 % is "on oxygen"
ACVPU_SNOMED = "1104441000000107"  # ACVPU scale score (UK SNOMED CT extension), as NHS NEWS2 messages code it
RESPONSIVENESS_LOINC = "67775-7"  # level of responsiveness
ALERT_SNOMED = "248234008"  # mentally alert
SMOKING_STATUS = "72166-2"
CURRENT_SMOKER = {"449868002", "428041000124106", "77176002", "65568007", "428071000124103", "428061000124105"}
NOT_SMOKER = {"8517006", "266919005"}

# Diabetes mellitus: ICD-10 categories (E08/E09 are ICD-10-CM's secondary forms; E12 is WHO's malnutrition-related)
DIABETES_ICD10 = ("E08", "E09", "E10", "E11", "E12", "E13", "E14")
DIABETES_SNOMED = {"73211009", "44054006", "46635009", "11530004", "8801005", "313436004", "81531005", "359642000"}

# Hypertension: ICD-10 I10-I13 and I15 (hypertensive diseases; I16, hypertensive crisis, is ICD-10-CM's), and SNOMED
# CT's hypertensive disorder with its common essential, benign, malignant and secondary forms
HYPERTENSION_ICD10 = ("I10", "I11", "I12", "I13", "I15", "I16")
HYPERTENSION_SNOMED = {"38341003", "59621000", "1201005", "10725009", "78975002", "31992008"}

# Established atherosclerotic cardiovascular disease: coronary heart disease (angina, MI, chronic ischaemic heart
# disease), ischaemic stroke and TIA, peripheral arterial disease, and coronary revascularisation.
ASCVD_ICD10 = {
    "I20": "angina pectoris", "I21": "acute myocardial infarction", "I22": "subsequent myocardial infarction",
    "I23": "complication after myocardial infarction", "I24": "acute ischaemic heart disease",
    "I25": "chronic ischaemic heart disease", "I63": "cerebral infarction", "I64": "stroke",
    "G45": "transient ischaemic attack", "I70.2": "atherosclerosis of the arteries of the extremities",
    "I73.9": "peripheral vascular disease", "I69.3": "sequelae of cerebral infarction",
    "Z95.1": "coronary artery bypass graft", "Z95.5": "coronary angioplasty implant",
    "Z86.73": "history of TIA or cerebral infarction",
}  # fmt: skip
ASCVD_ICD10_EXCLUDED = ("G45.4",)  # transient global amnesia is not vascular
ASCVD_SNOMED = {
    "22298006": "myocardial infarction", "1755008": "old myocardial infarction",
    "399211009": "history of myocardial infarction", "414545008": "ischaemic heart disease",
    "53741008": "coronary arteriosclerosis", "194828000": "angina", "230690007": "stroke",
    "422504002": "ischaemic stroke", "432504007": "cerebral infarction", "266257000": "transient ischaemic attack",
    "399957001": "peripheral arterial occlusive disease", "840580004": "peripheral arterial disease",
    "232717009": "coronary artery bypass graft", "415070008": "percutaneous coronary intervention",
}  # fmt: skip

ANTIHYPERTENSIVE_ATC = ("C02", "C03", "C07", "C08", "C09")
STATIN_ATC = ("C10AA", "C10BA", "C10BX")


# Physiological limits of inputs no equation declares (the equations' own limits cover the rest).
EXTRA_LIMITS = {"glucose": (0.5, 60.0), "weight_kg": (0.3, 500.0)}


@functools.cache
def plausible_limits() -> dict[str, tuple[float, float]]:
    """Each measured input's physiological limits: the widest any equation declares, and :data:`EXTRA_LIMITS`."""
    from cds.models.risk import available_equations  # the equations, not an import at module load

    limits: dict[str, tuple[float, float]] = dict(EXTRA_LIMITS)
    for equation in available_equations().values():
        for spec in equation.fields:
            if spec.plausible is not None:
                low, high = limits.get(spec.name, spec.plausible)
                limits[spec.name] = (min(low, spec.plausible[0]), max(high, spec.plausible[1]))
    return limits


def codes(concept: Any, system: str) -> list[str]:
    """The codes of a CodeableConcept in ``system`` (none when the concept is absent)."""
    return [str(c.code) for c in (concept.coding or []) if c.system == system and c.code] if concept else []


def is_icd10(system: str | None) -> bool:
    """Whether ``system`` is an edition of ICD-10 (diagnoses; ICD-10-PCS procedures are not)."""
    if not system:
        return False
    lowered = system.lower()
    if "pcs" in lowered:
        return False
    return system in ICD10_OIDS or "icd-10" in lowered or "icd10" in lowered or "/icd/release/10" in lowered


def icd10_key(code: str) -> str:
    """A code in dotted form, upper case: ``e11900x001`` -> ``E11.900X001``; ``I252`` -> ``I25.2``."""
    compact = code.strip().upper().replace(".", "")
    return compact[:3] + ("." + compact[3:] if len(compact) > 3 else "")


def icd10_match(code: str, prefixes: Iterable[str]) -> str | None:
    """The first of ``prefixes`` (categories like ``E11`` or subcategories like ``I70.2``) that ``code`` is in."""
    key = icd10_key(code)
    for prefix in prefixes:
        if (key.startswith(prefix) if "." in prefix else key[:3] == prefix):
            return prefix
    return None
