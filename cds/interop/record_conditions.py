"""Diagnoses read from a record, each with the resources that show it: diabetes and established ASCVD.

Diabetes comes from a coded diagnosis or from laboratory results; established atherosclerotic cardiovascular
disease (ASCVD) from Conditions and revascularisation Procedures.

Diabetes from laboratory results follows the diagnostic criteria of the Chinese type 2 diabetes guideline (Chinese
Diabetes Society, 2020 edition, table "diagnostic criteria for diabetes"): fasting plasma glucose >= 7.0 mmol/L,
2-h plasma glucose in a 75 g OGTT >= 11.1 mmol/L, or HbA1c >= 6.5 %. Without typical symptoms (which a record's
numbers do not show) the guideline asks for confirmation on another day, so a single abnormal day is reported as
unconfirmed, never taken as diabetes and never as its absence. Random glucose is not used: it counts only with
symptoms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cds.interop.clinical_codes import (
    ASCVD_ICD10,
    ASCVD_ICD10_EXCLUDED,
    ASCVD_SNOMED,
    DIABETES_ICD10,
    DIABETES_SNOMED,
    HYPERTENSION_ICD10,
    HYPERTENSION_SNOMED,
    SNOMED,
    icd10_key,
    icd10_match,
    is_icd10,
)
from cds.interop.record_readings import UNDATED, Reading

CLINICAL_STATUS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION_STATUS = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
NOT_ESTABLISHED = {"refuted", "entered-in-error", "unconfirmed", "provisional", "differential"}
ACTIVE = {"active", "recurrence", "relapse"}
GUIDELINE = "Chinese type 2 diabetes guideline (Chinese Diabetes Society, 2020)"
DIAGNOSTIC: dict[str, tuple[float, str]] = {  # field -> (threshold, how it is written)
    "fasting_glucose": (7.0, "fasting plasma glucose {:.1f} mmol/L"),
    "ogtt_2h_glucose": (11.1, "2-h OGTT glucose {:.1f} mmol/L"),
    "hba1c": (6.5, "HbA1c {:.1f} %"),
}
REVASCULARISATION_ICD9 = ("36.0", "36.1")  # ICD-9-CM vol. 3 (used for procedures in China): PCI, CABG


@dataclass(frozen=True)
class Evidence:
    """A resource that shows a diagnosis, and what it says (code and meaning)."""

    reference: str
    what: str

    def __str__(self) -> str:
        return f"{self.what} ({self.reference})"


def _codes(concept: Any, system: str | None = None) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept, optionally of one system only."""
    if concept is None:
        return []
    return [(str(c.system or ""), str(c.code)) for c in (concept.coding or [])
            if c.code and (system is None or c.system == system)]  # fmt: skip


def _established(condition: Any) -> bool:
    verification = {code for _, code in _codes(condition.verificationStatus, VERIFICATION_STATUS)}
    return not verification & NOT_ESTABLISHED


def _active_condition(condition: Any, snomed: Iterable[str], icd10: Iterable[str]) -> Evidence | None:
    """The evidence that an active, established Condition carries one of these SNOMED CT or ICD-10 codes."""
    if not _established(condition):
        return None
    status = {code for _, code in _codes(condition.clinicalStatus, CLINICAL_STATUS)}
    if status and not status & ACTIVE:
        return None
    reference = f"Condition/{condition.id}"
    for system, code in _codes(condition.code):
        if system == SNOMED and code in snomed:
            return Evidence(reference, f"SNOMED CT {code}")
        if is_icd10(system) and icd10_match(code, icd10):
            return Evidence(reference, f"ICD-10 {icd10_key(code)}")
    return None


def diabetes_condition(condition: Any) -> Evidence | None:
    """The evidence that an active, established Condition is diabetes mellitus."""
    return _active_condition(condition, DIABETES_SNOMED, DIABETES_ICD10)


def hypertension_condition(condition: Any) -> Evidence | None:
    """The evidence that an active, established Condition is hypertension (essential or secondary)."""
    return _active_condition(condition, HYPERTENSION_SNOMED, HYPERTENSION_ICD10)


def ascvd_evidence(resource: Any) -> Evidence | None:
    """The evidence that a Condition or completed Procedure shows established ASCVD (active or past)."""
    kind = resource.get_resource_type()
    if kind == "Condition" and not _established(resource):
        return None
    if kind == "Procedure" and resource.status != "completed":
        return None
    reference = f"{kind}/{resource.id}"
    for system, code in _codes(resource.code):
        if system == SNOMED and code in ASCVD_SNOMED:
            return Evidence(reference, f"{ASCVD_SNOMED[code]}, SNOMED CT {code}")
        if is_icd10(system) and not icd10_match(code, ASCVD_ICD10_EXCLUDED):
            matched = icd10_match(code, ASCVD_ICD10)
            if matched:
                return Evidence(reference, f"{ASCVD_ICD10[matched]}, ICD-10 {icd10_key(code)}")
        if kind == "Procedure" and "icd-9" in system.lower() and code.startswith(REVASCULARISATION_ICD9):
            return Evidence(reference, f"coronary revascularisation, ICD-9-CM-3 {code}")
    return None


@dataclass(frozen=True)
class LabDiabetes:
    """What laboratory results say about diabetes: confirmed, unconfirmed (one abnormal day), or nothing."""

    confirmed: bool
    abnormal: tuple[tuple[str, Reading], ...]  # (field, reading) at or above the diagnostic threshold

    @property
    def reference(self) -> str:
        """The first abnormal result's resource."""
        return self.abnormal[0][1].reference

    def describe(self) -> str:
        """The abnormal results, each with its date and source."""
        return ", ".join(f"{DIAGNOSTIC[name][1].format(float(r.value))} on "
                         f"{'an unknown date' if r.when == UNDATED else r.when.date()} ({r.reference})"
                         for name, r in self.abnormal)  # fmt: skip


def diabetes_from_labs(readings: Mapping[str, Sequence[Reading]]) -> LabDiabetes | None:
    """Diabetes by the guideline's laboratory criteria, or ``None`` when no result meets them.

    Confirmed when abnormal results (the same test or different ones) fall on two different dates.
    """
    abnormal = sorted(((name, r) for name, (threshold, _) in DIAGNOSTIC.items()
                       for r in readings.get(name, ()) if float(r.value) >= threshold), key=lambda x: x[1].when)
    if not abnormal:
        return None
    days = {r.when.date() for _, r in abnormal if r.when != UNDATED}
    return LabDiabetes(len(days) >= 2, tuple(abnormal))
