"""ECG results: what was read, its signal quality, the measurements, the rhythm and the flags a reader must see.

An :class:`EcgResult` carries, like every cds result, the rhythm classifier's identity (name, version, artifact
sha256, backend) and the input's sha256 (of the file's bytes). Measurements come from the engine's own delineation
(not the model); a measurement that could not be made is ``None``, never zero. Flags are what must not be missed:
``possible_stemi`` (critical, with the leads that met the criteria), ``qtc_prolonged``, ``atrial_fibrillation``,
... each with its severity and the evidence in words. The rhythm is stated twice on purpose: the rule-based call
from the measured beats (:attr:`EcgResult.rhythm`) and the learned classifier's per-class probabilities
(:attr:`EcgResult.classifier`), so a reader sees when they disagree (a warning says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from cds.models.backend import ModelRef
from cds.results.classification import Finding
from cds.results.phrase import Phrase

RHYTHMS = ("sinus_rhythm", "sinus_bradycardia", "sinus_tachycardia", "atrial_fibrillation", "atrial_flutter",
           "frequent_ectopy")  # fmt: skip
RHYTHM_TEXT = {"sinus_rhythm": "Sinus rhythm", "sinus_bradycardia": "Sinus bradycardia",
               "sinus_tachycardia": "Sinus tachycardia", "atrial_fibrillation": "Atrial fibrillation",
               "atrial_flutter": "Atrial flutter", "frequent_ectopy": "Frequent ectopic beats",
               "undetermined": "Rhythm undetermined"}  # fmt: skip


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EcgSource(_Frozen):
    """What was read (never a patient identifier: the file name only).

    Attributes:
        name: File name.
        format: The reader that read it: ``dicom``, ``wfdb``, ``aecg`` or ``csv``.
        sampling_hz: Samples per second.
        duration_s: Length of the recording.
        derived_leads: Leads computed from others (III, aVR, aVL, aVF when only eight were stored).
    """

    name: str
    format: str
    sampling_hz: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    derived_leads: tuple[str, ...] = ()


class LeadProblems(_Frozen):
    """One lead's signal-quality problems (empty: usable)."""

    lead: str
    problems: tuple[str, ...] = ()


class Measurements(_Frozen):
    """Global intervals from the median beat across usable leads, and the rate from the beats.

    Attributes:
        heart_rate_bpm: Ventricular rate, 60 000 / mean RR.
        rr_ms: Mean RR interval.
        pr_ms: P onset to QRS onset (None without a P wave: atrial fibrillation, flutter).
        qrs_ms: QRS onset to QRS offset.
        qt_ms: QRS onset to T end.
        qtc_bazett_ms: QT / sqrt(RR in s) (Bazett 1920).
        qtc_fridericia_ms: QT / cbrt(RR in s) (Fridericia 1920).
        qrs_axis_deg: Frontal QRS axis from the net QRS areas of leads I and aVF, in (-180, 180].
        beats: Beats detected.
        st_j_mv: ST deviation at the J point per lead (mV, positive = elevation), relative to the PR baseline.
        leads_measured: The usable leads the median beat was built from.
    """

    heart_rate_bpm: float | None = None
    rr_ms: float | None = None
    pr_ms: float | None = None
    qrs_ms: float | None = None
    qt_ms: float | None = None
    qtc_bazett_ms: float | None = None
    qtc_fridericia_ms: float | None = None
    qrs_axis_deg: float | None = None
    beats: int = Field(default=0, ge=0)
    st_j_mv: dict[str, float] = Field(default_factory=dict)
    leads_measured: tuple[str, ...] = ()


class Severity(StrEnum):
    """How urgently a flag needs a reader."""

    CRITICAL = "critical"  # urgent review (possible STEMI)
    WARNING = "warning"  # needs attention (QTc prolonged, AF)
    INFO = "info"  # noted (a lead not measured)


class EcgFlag(_Frozen):
    """Something a reader must see: its code, severity, the leads involved and the evidence in words.

    ``text`` says it in English, title first; ``phrases`` are the same evidence without the title, as sentences a
    client renders in its reader's language (:mod:`cds.results.phrase`; empty in reads stored before they existed).
    """

    code: str
    severity: Severity
    text: str
    leads: tuple[str, ...] = ()
    phrases: tuple[Phrase, ...] = ()


class RhythmCall(_Frozen):
    """The rule-based rhythm from the measured beats.

    Attributes:
        label: One of :data:`RHYTHMS`, or ``undetermined``.
        evidence: What the call rests on (rate, RR irregularity, P waves, premature beats), in English.
        evidence_phrase: The same as a :class:`~cds.results.phrase.Phrase` (None in reads stored before it).
        rr_irregularity: Coefficient of variation of successive RR differences (RMSSD / mean RR).
        p_wave_fraction: Share of beats with a P wave before them.
        premature_beats: Beats premature by more than 20 % of the preceding RR, or wider than the median beat.
    """

    label: str
    evidence: str
    evidence_phrase: Phrase | None = None
    rr_irregularity: float | None = None
    p_wave_fraction: float | None = None
    premature_beats: int = Field(default=0, ge=0)


class EcgResult(_Frozen):
    """One ECG read: measurements, rhythm (rules and classifier) and flags.

    Attributes:
        model: The rhythm classifier: which model, artifact and backend.
        input_sha256: sha256 of the input file's bytes.
        source: What was read.
        quality: Each lead's problems, in standard order.
        measurements: Intervals, rate, axis and ST levels.
        rhythm: The rule-based rhythm.
        classifier: The classifier's probability per rhythm, against its operating thresholds.
        flags: What a reader must see, critical first.
        r_peaks_s: Beat times (s from the start), for the reader's calipers and rhythm strip.
        intended_use: The model's intended use.
        warnings: Caveats (not for diagnostic use, leads left out, rules and classifier disagree, ...).
        warning_phrases: The same caveats as phrases, one per warning in the same order.
        stage_ms: Wall time per stage.
        inference_ms: Time spent in the backend.
    """

    model: ModelRef
    input_sha256: str
    source: EcgSource
    quality: tuple[LeadProblems, ...]
    measurements: Measurements
    rhythm: RhythmCall
    classifier: tuple[Finding, ...] = ()
    flags: tuple[EcgFlag, ...] = ()
    r_peaks_s: tuple[float, ...] = ()
    intended_use: str
    warnings: tuple[str, ...] = ()
    warning_phrases: tuple[Phrase, ...] = ()
    stage_ms: dict[str, float] = Field(default_factory=dict)
    inference_ms: float = 0.0

    @property
    def critical(self) -> tuple[EcgFlag, ...]:
        """The flags that need urgent review."""
        return tuple(flag for flag in self.flags if flag.severity is Severity.CRITICAL)


@dataclass
class EcgAnalysis:
    """A read ECG on its way to the writers: the typed result and the signals it was read from.

    Attributes:
        result: The typed result.
        signals: float32 [12, samples] in mV, standard lead order (for the printout).
        sampling_hz: Samples per second of ``signals``.
        not_for_diagnostic_use: The model's caveat, carried onto every output.
    """

    result: EcgResult
    signals: np.ndarray
    sampling_hz: float
    not_for_diagnostic_use: bool = True
