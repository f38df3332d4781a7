"""One ECG read: file → record → lead quality → measurements → rhythm (rules and classifier) → flags.

The record is checked against the model's contract first; the answer is an :class:`~cds.results.ecg.EcgAnalysis`.

The classifier reads the recording in windows (:mod:`cds.pipelines.ecg.preprocess`) and its probabilities are
averaged; several ECGs can be read in one backend call (:meth:`EcgPipeline.read_many`), which is how the CLI and
the benchmark reach their throughput. Sex and age for the ST and QTc limits come from the caller or, failing that,
from the file (DICOM Patient's Sex and Age); unknown is allowed and said in the flags.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cds.errors import InvalidSpecError
from cds.models.backend import Backend
from cds.models.spec import Modality, WaveformInput
from cds.pipelines.classification import findings_from_probabilities
from cds.pipelines.ecg.flags import ecg_flags
from cds.pipelines.ecg.measurements import BeatAnalysis, measure
from cds.pipelines.ecg.preprocess import contract_of, model_windows
from cds.pipelines.ecg.quality import LeadQuality, record_quality
from cds.pipelines.ecg.readers import read_ecg
from cds.pipelines.ecg.record import EcgRecord
from cds.pipelines.ecg.rhythm import classify_rhythm
from cds.pipelines.timing import StageTimer
from cds.results.ecg import RHYTHM_TEXT, EcgAnalysis, EcgFlag, EcgResult, EcgSource, LeadProblems, RhythmCall
from cds.results.identity import hash_files, hash_path
from cds.results.phrase import Phrase, phrase

SEXES = {"m": "male", "male": "male", "f": "female", "female": "female"}


@dataclass(frozen=True)
class Patient:
    """What the ST and QTc limits depend on: ``male``, ``female`` or None; age in years or None."""

    sex: str | None = None
    age_years: float | None = None


def patient_of(record: EcgRecord, given: Patient | None = None) -> Patient:
    """The caller's sex and age where given, else what the file states."""
    given = given or Patient()
    sex = given.sex or SEXES.get(record.metadata.get("PatientSex", "").strip().lower())
    age = given.age_years
    if age is None and record.metadata.get("age_years"):
        age = float(record.metadata["age_years"])
    return Patient(sex=sex, age_years=age)


def input_sha256(path: Path, reader: str) -> str:
    """The input's sha256: the file's bytes, or for a WFDB record every file of the record's name.

    ``rec.hea``, ``rec.dat`` and whatever else is stored as ``rec.*``: the signal is in the ``.dat``, not the header.
    """
    if reader != "wfdb":
        return hash_path(path)
    record = path.with_suffix("")
    return hash_files(path.parent, sorted(p for p in path.parent.glob(f"{glob.escape(record.name)}.*") if p.is_file()))


@dataclass
class _Prepared:
    """A record read and measured, waiting for the classifier."""

    path: Path
    record: EcgRecord
    windows: np.ndarray
    timer: StageTimer
    quality: list[LeadQuality]
    beats: BeatAnalysis
    rhythm: RhythmCall
    flags: tuple[EcgFlag, ...]


class EcgPipeline:
    """Reads ECG files with a rhythm classifier (an ECG model with a ``waveform`` section).

    Args:
        backend: The classifier's backend.

    Raises:
        InvalidSpecError: The model is not an ECG classifier.
    """

    def __init__(self, backend: Backend) -> None:
        spec = backend.spec
        if spec.modality is not Modality.ECG or spec.waveform is None:
            raise InvalidSpecError(f"{spec.key} is not an ECG model (modality {spec.modality.value}, no waveform "
                                   "section)")  # fmt: skip
        self.backend = backend
        self.spec = spec
        self.waveform: WaveformInput = spec.waveform
        self.contract = contract_of(spec.waveform)

    def __call__(self, path: Path, *, patient: Patient | None = None, name: str | None = None) -> EcgAnalysis:
        """Read one ECG file.

        Raises:
            InvalidInputError: The reader's or the quality check's reason (see :mod:`cds.pipelines.ecg.readers`).
        """
        return self.read_many([(path, patient, name)])[0]

    def prepare(self, path: Path, patient: Patient | None = None, name: str | None = None) -> _Prepared:
        """Everything but the classifier: read and check, quality, measurements, rhythm rules, flags, windows.

        Raises:
            InvalidInputError: The reader's reason, or ``unreadable_ecg`` from the quality check.
        """
        timer = StageTimer()
        with timer.stage("read"):
            record = read_ecg(path, contract=self.contract, name=name)
        with timer.stage("quality"):
            quality = record_quality(record)
        with timer.stage("measure"):
            beats = measure(record, quality)
        with timer.stage("rules"):
            rhythm = classify_rhythm(beats, record.sampling_hz)
            known = patient_of(record, patient)
            flags = ecg_flags(beats.measurements, rhythm, quality, sex=known.sex, age_years=known.age_years)
        with timer.stage("preprocess"):
            windows = model_windows(record.signals, record.sampling_hz, self.waveform)
        return _Prepared(path, record, windows, timer, quality, beats, rhythm, flags)

    def read_many(self, inputs: Sequence[tuple[Path, Patient | None, str | None]]) -> list[EcgAnalysis]:
        """Read several ECG files with one backend call for all their windows.

        Raises:
            InvalidInputError: The first file that cannot be read (callers that must go on past a bad file read
                one at a time, or :meth:`prepare` each and call :meth:`finish`).
        """
        return self.finish([self.prepare(*item) for item in inputs])

    def finish(self, prepared: Sequence[_Prepared]) -> list[EcgAnalysis]:
        """Classify prepared records together, then measure, call the rhythm and flag each."""
        if not prepared:
            return []
        batch = np.concatenate([item.windows for item in prepared])
        input_name, output_name = self.spec.inputs[0].name, self.spec.outputs[0].name
        tic = StageTimer()
        with tic.stage("infer"):
            probabilities = np.concatenate([
                self.backend.infer({input_name: batch[start:start + self.spec.max_batch_size]})[output_name]
                for start in range(0, len(batch), self.spec.max_batch_size)])  # fmt: skip
        infer_ms = tic.ms["infer_ms"]
        results, offset = [], 0
        for item in prepared:
            count = len(item.windows)
            mean = probabilities[offset:offset + count].mean(axis=0)
            offset += count
            item.timer.add("infer", infer_ms * count / len(batch) / 1000.0)
            results.append(self._analyse(item, mean, infer_ms * count / len(batch)))
        return results

    def _analyse(self, item: _Prepared, probabilities: np.ndarray, inference_ms: float) -> EcgAnalysis:
        record, timer, rhythm, beats = item.record, item.timer, item.rhythm, item.beats
        findings = findings_from_probabilities(self.spec, probabilities)
        with timer.stage("hash"):
            digest = input_sha256(item.path, record.format)
        top = max(findings, key=lambda f: f.probability)
        warnings: list[tuple[str, Phrase]] = []  # each in English and as a phrase
        if self.spec.not_for_diagnostic_use:
            warnings.append(("not for diagnostic use: a demonstration rhythm classifier trained on generated ECGs",
                             phrase("ecg.demo_classifier")))
        if rhythm.label != "undetermined" and top.label != rhythm.label:
            warnings.append((f"the rhythm classifier favours {RHYTHM_TEXT[top.label].lower()} "
                             f"({top.probability:.2f}); the measured beats say {RHYTHM_TEXT[rhythm.label].lower()}",
                             phrase("ecg.classifier_disagrees", classifier=top.label,
                                    probability=round(top.probability, 2), rhythm=rhythm.label)))
        if record.derived:
            warnings.append((f"leads {', '.join(record.derived)} derived from I and II (not recorded)",
                             phrase("ecg.derived_leads", leads=tuple(record.derived))))
        result = EcgResult(
            model=self.backend.metadata().model, input_sha256=digest,
            source=EcgSource(name=record.source, format=record.format or "unknown", sampling_hz=record.sampling_hz,
                             duration_s=round(record.duration_s, 3), derived_leads=record.derived),
            quality=tuple(LeadProblems(lead=q.lead, problems=q.problems) for q in item.quality),
            measurements=beats.measurements, rhythm=rhythm, classifier=findings, flags=item.flags,
            r_peaks_s=tuple(round(float(p) / record.sampling_hz, 4) for p in beats.r_peaks),
            intended_use=self.spec.intended_use, warnings=tuple(text for text, _ in warnings),
            warning_phrases=tuple(said for _, said in warnings), stage_ms=dict(timer.ms),
            inference_ms=inference_ms)  # fmt: skip
        return EcgAnalysis(result=result, signals=record.signals, sampling_hz=record.sampling_hz,
                           not_for_diagnostic_use=self.spec.not_for_diagnostic_use)  # fmt: skip
