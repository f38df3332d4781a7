"""An ECG read as a FHIR R4 ``DiagnosticReport``: measurements, rhythm and flags as contained Observations.

The report reuses :func:`cds.interop.fhir_report.diagnostic_report` (the contained model ``Device`` with its
sha256, the classifier's per-rhythm probabilities as Observations with their POS/NEG interpretation, the report's
stable identifier) and makes it an ECG report: category ``EC`` (v2-0074 Electrocardiac), code LOINC 11524-6
"EKG study", one Observation per measurement that was made (LOINC code, UCUM unit; a measurement that could not
be made is left out, never sent as zero), one for the rhythm (the rule-based call, with the classifier's top
probability as a component) and one per flag (critical ``AA``, warning ``A``). The conclusion says in words what
a reader must see first: the critical flags, then rhythm, rate and intervals, the other flags and the caveats.

The report is ``preliminary``: an AI pre-read a physician reads and signs. It names the patient only by
``patient_reference``; the source's file name is never written into it. Validated with fhir.resources (R4B).

The words for a flag and for the measurements (:func:`flag_heading`, :func:`measurement_words`) are shared with
the printout (:mod:`cds.interop.ecg_printout`), so both say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cds.errors import MissingDependencyError
from cds.interop.fhir_report import DIAGNOSTIC_SERVICE, INTERPRETATION, LOINC, diagnostic_report
from cds.results.classification import ClassificationResult, Finding
from cds.results.ecg import RHYTHM_TEXT, EcgFlag, EcgResult, Measurements, Severity

UCUM = "http://unitsofmeasure.org"
# v2-0074 "EC": checked against the HL7 v2 table 0074 as FHIR publishes it (hl7.org/fhir/DSTU2/v2/0074 and
# hl7.org/fhir/DSTU1/v2/0074/v2-0074.json: "EC  Electrocardiac (e.g., EKG, EEC, Holter)").
ELECTROCARDIAC = {"system": DIAGNOSTIC_SERVICE, "code": "EC", "display": "Electrocardiac (e.g., EKG, EEC, Holter)"}
# LOINC 11524-6 "EKG study": checked in the Philippine eReferral IG example Observation-ExampleERefObservationECG
# (build.fhir.org), which codes an EKG with http://loinc.org#11524-6 "EKG study".
EKG_STUDY = {"system": LOINC, "code": "11524-6", "display": "EKG study"}
# v3 ObservationInterpretation: AA "Critical abnormal", A "Abnormal" (terminology.hl7.org, value set
# v3-ObservationInterpretationNormalityCriticallyAbnormal).
CRITICAL = {"system": INTERPRETATION, "code": "AA", "display": "Critical abnormal"}
ABNORMAL = {"system": INTERPRETATION, "code": "A", "display": "Abnormal"}
FLAG_NAMES = {"possible_stemi": "Possible STEMI", "qtc_prolonged": "QTc prolonged",
              "atrial_fibrillation": "Atrial fibrillation"}  # fmt: skip
_SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class MeasurementCode:
    """How one field of :class:`~cds.results.ecg.Measurements` is coded: LOINC code and display, UCUM unit."""

    field: str
    code: str
    display: str
    unit: str  # UCUM code
    unit_text: str
    method: str | None = None


# Where each code was checked (search of public pages, 2025):
# - 8867-4 "Heart rate": the US Core heart-rate profile (hl7.org/fhir/us/core, us-core-heart-rate) fixes code
#   8867-4 with UCUM /min. An EKG-specific 76282-3 "Heart rate.beat-to-beat by EKG" exists, but this rate is the
#   mean over the record (60 000 / mean RR), not beat-to-beat, so the generic code with a method text is used.
# - 8625-6 "P-R interval", 8633-0 "QRS duration", 8634-8 "Q-T interval", 8632-2 "QRS axis": the US Core
#   clinical test codes value set (hl7.org/fhir/us/core/ValueSet-us-core-clinical-test-codes, LOINC EKG.MEAS).
# - 76635-2 "Q-T interval corrected based on Bazett formula", 76634-5 "Q-T interval corrected based on
#   Fridericia formula": the LOINC description of 8636-3 (autoicdapi.com/loinc/8636-3, cismef.org LNC_CT_76634-5,
#   healthassure.in loinc-76635-2), which says to use these two for the method-specific QTc.
# - 8637-1 "R-R interval by EKG": NOT verified on loinc.org or an HL7 page; found only in public FHIR sources
#   (FSH profiles citing it as "R-R interval by EKG") and OMOP's LOINC concept name "R-R interval by EKG".
MEASUREMENT_CODES = (
    MeasurementCode("heart_rate_bpm", "8867-4", "Heart rate", "/min", "beats/min",
                    "ventricular rate from the EKG: 60 000 / mean R-R interval of the detected beats"),
    MeasurementCode("rr_ms", "8637-1", "R-R interval by EKG", "ms", "ms", "mean of the detected beats"),
    MeasurementCode("pr_ms", "8625-6", "P-R interval", "ms", "ms", "global, from the median beat"),
    MeasurementCode("qrs_ms", "8633-0", "QRS duration", "ms", "ms", "global, from the median beat"),
    MeasurementCode("qt_ms", "8634-8", "Q-T interval", "ms", "ms", "global, from the median beat"),
    MeasurementCode("qtc_bazett_ms", "76635-2", "Q-T interval corrected based on Bazett formula", "ms", "ms",
                    "Bazett: QT / sqrt(RR in s)"),
    MeasurementCode("qtc_fridericia_ms", "76634-5", "Q-T interval corrected based on Fridericia formula", "ms",
                    "ms", "Fridericia: QT / cbrt(RR in s)"),
    MeasurementCode("qrs_axis_deg", "8632-2", "QRS axis", "deg", "deg",
                    "frontal plane, from the net QRS areas of leads I and aVF"),
)


def flag_heading(flag: EcgFlag) -> str:
    """A flag as a reader sees it first: ``POSSIBLE STEMI — URGENT REVIEW: leads II, III, aVF``.

    Critical flags are upper case and say urgent review; others keep their case. The leads follow when the flag
    names any.
    """
    name = FLAG_NAMES.get(flag.code) or flag.code.replace("_", " ").capitalize()
    heading = f"{name.upper()} — URGENT REVIEW" if flag.severity is Severity.CRITICAL else name
    return f"{heading}: leads {', '.join(flag.leads)}" if flag.leads else heading


def ordered_flags(flags: tuple[EcgFlag, ...]) -> list[EcgFlag]:
    """Critical flags first, then warnings, then notes (each group in its given order)."""
    return sorted(flags, key=lambda flag: _SEVERITY_ORDER[flag.severity])


def _number(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.0f} {unit}"


def measurement_words(m: Measurements) -> list[str]:
    """The measurements a reader looks for, as short phrases (``—`` where one could not be made)."""
    qtc = f"QTc {_number(m.qtc_bazett_ms, 'ms')} (Bazett), {_number(m.qtc_fridericia_ms, 'ms')} (Fridericia)"
    axis = "—" if m.qrs_axis_deg is None else f"{m.qrs_axis_deg:.0f}°"
    return [f"HR {_number(m.heart_rate_bpm, '/min')}", f"PR {_number(m.pr_ms, 'ms')}",
            f"QRS {_number(m.qrs_ms, 'ms')}", f"QT {_number(m.qt_ms, 'ms')}", qtc, f"QRS axis {axis}"]  # fmt: skip


def top_finding(result: EcgResult) -> Finding | None:
    """The classifier's most probable rhythm, or None without a classifier output."""
    return max(result.classifier, key=lambda f: f.probability) if result.classifier else None


def rhythm_words(result: EcgResult) -> str:
    """The rhythm twice: the rule-based call and the classifier's most probable class."""
    words = f"{RHYTHM_TEXT.get(result.rhythm.label, result.rhythm.label)} (rules)"
    top = top_finding(result)
    if top is not None:
        words += f"; classifier: {RHYTHM_TEXT.get(top.label, top.label)} {top.probability:.2f}"
    return words


def _coded_observation(code: MeasurementCode, value: float, template: dict[str, Any]) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation", "id": code.field.replace("_", "-"), "status": "preliminary",
        "code": {"coding": [{"system": LOINC, "code": code.code, "display": code.display}], "text": code.display},
        **template,
        "valueQuantity": {"value": round(value, 1), "unit": code.unit_text, "system": UCUM, "code": code.unit},
    }
    if code.method:
        observation["method"] = {"text": code.method}
    return observation


def _rhythm_observation(result: EcgResult, template: dict[str, Any]) -> dict[str, Any]:
    rhythm = result.rhythm
    observation: dict[str, Any] = {
        "resourceType": "Observation", "id": "rhythm", "status": "preliminary", "code": {"text": "Rhythm"},
        **template,
        "valueCodeableConcept": {"text": RHYTHM_TEXT.get(rhythm.label, rhythm.label)},
        "method": {"text": "rule-based, from the measured beats (rate, R-R irregularity, P waves, premature beats)"},
        "note": [{"text": f"rules: {rhythm.evidence}"}],
    }
    top = top_finding(result)
    if top is not None:
        observation["component"] = [{
            "code": {"text": f"rhythm classifier probability: {RHYTHM_TEXT.get(top.label, top.label)}"},
            "valueQuantity": {"value": round(top.probability, 6), "unit": "probability", "system": UCUM,
                              "code": "1"}}]  # fmt: skip
        threshold = "" if top.threshold is None else f" (operating threshold {top.threshold:.2f})"
        observation["note"].append({"text": f"classifier, most probable: {RHYTHM_TEXT.get(top.label, top.label)} "
                                            f"{top.probability:.2f}{threshold}"})
    return observation


def _flag_observation(index: int, flag: EcgFlag, template: dict[str, Any]) -> dict[str, Any]:
    observation: dict[str, Any] = {
        "resourceType": "Observation", "id": f"flag-{index}", "status": "preliminary",
        "code": {"text": flag_heading(flag)}, **template, "valueString": flag.text,
        "note": [{"text": f"{flag.code} ({flag.severity.value})"
                          + (f"; leads {', '.join(flag.leads)}" if flag.leads else "")}],
    }  # fmt: skip
    interpretation = {Severity.CRITICAL: CRITICAL, Severity.WARNING: ABNORMAL}.get(flag.severity)
    if interpretation is not None:
        observation["interpretation"] = [{"coding": [interpretation]}]
    return observation


def conclusion(result: EcgResult) -> str:
    """Plain English: critical flags first, then rhythm, rate and intervals, the other flags and the caveats."""
    flags = ordered_flags(result.flags)
    parts = [f"{flag_heading(f)} ({f.text})." for f in flags if f.severity is Severity.CRITICAL]
    words = measurement_words(result.measurements)
    parts.append(f"AI ECG pre-read: {rhythm_words(result)}; {words[0]}; {', '.join(words[1:])}.")
    others = [f"{flag_heading(f)} ({f.text})" for f in flags if f.severity is not Severity.CRITICAL]
    if others:
        parts.append("Also flagged: " + "; ".join(others) + ".")
    if result.warnings:
        parts.append("Caveats: " + "; ".join(result.warnings) + ".")
    return " ".join(parts)


def ecg_report(result: EcgResult, *, title: str, patient_reference: str | None = None) -> dict[str, Any]:
    """The FHIR R4 DiagnosticReport (JSON-ready dict) of one ECG read, validated.

    Args:
        result: The ECG read.
        title: The report's title (``code.text``); it must not name the file or the patient.
        patient_reference: A literal reference to the patient (``Patient/123``), when known.

    Raises:
        MissingDependencyError: fhir.resources is not installed.
    """
    try:
        from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    base = ClassificationResult(model=result.model, input_sha256=result.input_sha256, findings=result.classifier,
                                intended_use=result.intended_use, inference_ms=result.inference_ms)
    report = diagnostic_report(base, study_uid="", title=title, patient_reference=patient_reference,
                               validate=False)  # validated once, whole, below
    report["category"] = [{"coding": [ELECTROCARDIAC]}]
    report["code"] = {"coding": [EKG_STUDY], "text": title}
    for observation in report.get("contained", []):
        if observation["resourceType"] == "Observation":  # the classifier's per-rhythm probabilities
            label = observation["code"]["text"]
            observation["code"]["text"] = f"rhythm classifier probability: {RHYTHM_TEXT.get(label, label)}"
    template = {"subject": report["subject"], "effectiveDateTime": report["effectiveDateTime"],
                "device": {"reference": "#model"}}
    m = result.measurements
    extra = [_coded_observation(code, value, template) for code in MEASUREMENT_CODES
             if (value := getattr(m, code.field)) is not None]
    extra.append(_rhythm_observation(result, template))
    extra += [_flag_observation(i, flag, template) for i, flag in enumerate(ordered_flags(result.flags))]
    report["contained"] = [*report.get("contained", []), *extra]
    report["result"] = [*({"reference": f"#{o['id']}"} for o in extra), *report.get("result", [])]
    report["conclusion"] = conclusion(result)
    DiagnosticReport.model_validate(report)  # raises on anything FHIR R4 does not allow
    return report  # already JSON-ready: serialising the validated model again would cost as much as validating


def review_readings(report: dict[str, Any], result: EcgResult, reviews: dict[str, tuple[str, str]]
                    ) -> list[dict[str, Any]]:  # fmt: skip
    """A cardiologist's Observations of their reviewed items (``item -> (verdict, value)``) of the read's ``report``.

    The rhythm as they called it, each reviewed measurement with their value (the AI's when accepted), and each
    reviewed flag as present (accepted) or absent (rejected), each derived from the AI's Observation.
    """
    from cds.interop.fhir_signed_report import reading

    ai = {o["id"]: o for o in report.get("contained", ()) if o.get("resourceType") == "Observation"}
    readings = []
    if "rhythm" in reviews:
        label = reviews["rhythm"][1]
        text = RHYTHM_TEXT.get(label, label.replace("_", " ").capitalize())
        readings.append(reading(ai["rhythm"], valueCodeableConcept={"text": text}))
    for code in MEASUREMENT_CODES:
        if code.field in reviews and reviews[code.field][1]:
            quantity = {"value": float(reviews[code.field][1]), "unit": code.unit_text, "system": UCUM,
                        "code": code.unit}  # fmt: skip
            source = ai.get(code.field.replace("_", "-")) or {  # the AI could not measure it; the reader did
                "code": {"coding": [{"system": LOINC, "code": code.code, "display": code.display}],
                         "text": code.display},
                "subject": report.get("subject"), "effectiveDateTime": report.get("effectiveDateTime")}  # fmt: skip
            readings.append(reading(source, derived="id" in source, valueQuantity=quantity))
    for index, flag in enumerate(ordered_flags(result.flags)):
        if flag.code in reviews:
            readings.append(reading(ai[f"flag-{index}"], valueBoolean=reviews[flag.code][0] == "accepted"))
    return readings
