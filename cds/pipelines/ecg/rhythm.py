"""The rule-based rhythm, from the measured beats: rate, RR regularity, P waves and premature beats.

In this order:

1. fewer than four beats, or no rate: ``undetermined``;
2. P waves before fewer than half of the dominant beats (no organised atrial activity before the QRS): an
   irregular ventricular rhythm (RR irregularity above :data:`IRREGULAR`) is ``atrial_fibrillation``; a regular
   one at up to 100 per minute ``atrial_flutter`` (fixed conduction; the evidence says a junctional rhythm looks
   alike, and flutter with variable conduction is called fibrillation here: the classifier's opinion is stated
   beside it); a regular one faster than 100 per minute ``undetermined``, as sinus tachycardia with its P waves
   hidden in the T waves, flutter with 2:1 conduction and other supraventricular tachycardias look alike to the
   rules;
3. premature or differently shaped beats, at least :data:`FREQUENT_COUNT` of them and at least
   :data:`FREQUENT_SHARE` of all beats: ``frequent_ectopy``;
4. otherwise sinus, named by the ventricular rate: below 60 per minute ``sinus_bradycardia``, above 100
   ``sinus_tachycardia``, else ``sinus_rhythm`` (the conventional limits).

RR irregularity is the RMSSD of the RR intervals between dominant beats (premature beats and the pause after them
left out) over their mean. The thresholds are this engine's conventions, set on generated ECGs that the held-out
evaluation in the model card does not share; they are not a published standard.
"""

from __future__ import annotations

import numpy as np

from cds.pipelines.ecg.measurements import BeatAnalysis
from cds.results.ecg import RhythmCall
from cds.results.phrase import phrase

MIN_BEATS = 4
P_WAVE_SHARE = 0.5
IRREGULAR = 0.08
PREMATURE = 0.8  # an RR shorter than 80 % of the median RR
FREQUENT_COUNT = 3
FREQUENT_SHARE = 0.1
BRADYCARDIA_BPM = 60.0
TACHYCARDIA_BPM = 100.0


def ectopic_beats(beats: BeatAnalysis, sampling_hz: float) -> np.ndarray:
    """Per beat: premature (RR under :data:`PREMATURE` of the median) or not of the dominant morphology."""
    rr = np.diff(beats.r_peaks) / sampling_hz
    if len(rr) == 0:
        return np.zeros(len(beats.r_peaks), dtype=bool)
    premature = np.concatenate([[False], rr < PREMATURE * np.median(rr)])
    result: np.ndarray = premature | ~np.asarray(beats.dominant, dtype=bool)
    return result


def rr_irregularity(beats: BeatAnalysis, sampling_hz: float, ectopic: np.ndarray) -> float | None:
    """RMSSD over mean of the RR intervals between dominant beats, leaving out each ectopic beat's two intervals."""
    rr = np.diff(beats.r_peaks) / sampling_hz
    keep = ~(ectopic[1:] | ectopic[:-1])
    kept = rr[keep]
    if len(kept) < 3:
        return None
    return float(np.sqrt(np.mean(np.diff(kept) ** 2)) / np.mean(kept))


def classify_rhythm(beats: BeatAnalysis, sampling_hz: float) -> RhythmCall:
    """The rhythm (see the module docstring)."""
    m = beats.measurements
    count = len(beats.r_peaks)
    if count < MIN_BEATS or m.heart_rate_bpm is None:
        return RhythmCall(label="undetermined", evidence=f"{count} beats found; at least {MIN_BEATS} are needed",
                          evidence_phrase=phrase("ecg.rhythm_too_few_beats", count=count, needed=MIN_BEATS))
    ectopic = ectopic_beats(beats, sampling_hz)
    dominant = np.asarray(beats.dominant, dtype=bool)
    p_share = float(np.mean(np.asarray(beats.p_wave, dtype=bool)[dominant])) if dominant.any() else 0.0
    irregularity = rr_irregularity(beats, sampling_hz, ectopic)
    premature = int(ectopic.sum())
    rate = f"ventricular rate {m.heart_rate_bpm:.0f}/min"
    p_percent, bpm = round(p_share * 100), round(m.heart_rate_bpm)  # as the words say them, for the phrases
    common = {"rr_irregularity": irregularity, "p_wave_fraction": round(p_share, 3), "premature_beats": premature}
    if p_share < P_WAVE_SHARE:
        all_rr = np.diff(beats.r_peaks) / sampling_hz
        spread = irregularity if irregularity is not None else float(np.std(all_rr) / np.mean(all_rr))
        p_text = f"P waves before {p_share:.0%} of beats"
        if spread > IRREGULAR:
            return RhythmCall(label="atrial_fibrillation", evidence=f"irregularly irregular RR (RMSSD/mean "
                              f"{spread:.2f}), {p_text}, {rate}",
                              evidence_phrase=phrase("ecg.rhythm_irregular", spread=round(spread, 2),
                                                     p_percent=p_percent, rate=bpm), **common)  # fmt: skip
        if m.heart_rate_bpm > TACHYCARDIA_BPM:
            return RhythmCall(label="undetermined", evidence=f"regular tachycardia without a visible P wave "
                              f"({p_text}), {rate}: sinus tachycardia with P waves hidden in the T waves, atrial "
                              "flutter with 2:1 conduction or another supraventricular tachycardia; look for P "
                              "and flutter waves", **common,
                              evidence_phrase=phrase("ecg.rhythm_regular_tachycardia", p_percent=p_percent,
                                                     rate=bpm))  # fmt: skip
        return RhythmCall(label="atrial_flutter", evidence=f"regular RR (RMSSD/mean {spread:.2f}) without P waves "
                          f"({p_text}), {rate}: flutter with fixed conduction, or a junctional rhythm",
                          evidence_phrase=phrase("ecg.rhythm_regular_without_p", spread=round(spread, 2),
                                                 p_percent=p_percent, rate=bpm), **common)  # fmt: skip
    if premature >= FREQUENT_COUNT and premature >= FREQUENT_SHARE * count:
        return RhythmCall(label="frequent_ectopy", evidence=f"{premature} of {count} beats premature or of another "
                          f"shape; underlying rhythm with P waves, {rate}",
                          evidence_phrase=phrase("ecg.rhythm_ectopy", premature=premature, count=count, rate=bpm),
                          **common)  # fmt: skip
    regularity = f"RR RMSSD/mean {irregularity:.2f}" if irregularity is not None else "RR regularity not measured"
    evidence = f"P waves before {p_share:.0%} of beats, {regularity}, {rate}"
    evidence_phrase = (phrase("ecg.rhythm_with_p", p_percent=p_percent, spread=round(irregularity, 2), rate=bpm)
                       if irregularity is not None
                       else phrase("ecg.rhythm_with_p_rr_unmeasured", p_percent=p_percent, rate=bpm))  # fmt: skip
    if m.heart_rate_bpm < BRADYCARDIA_BPM:
        return RhythmCall(label="sinus_bradycardia", evidence=evidence, evidence_phrase=evidence_phrase, **common)
    if m.heart_rate_bpm > TACHYCARDIA_BPM:
        return RhythmCall(label="sinus_tachycardia", evidence=evidence, evidence_phrase=evidence_phrase, **common)
    return RhythmCall(label="sinus_rhythm", evidence=evidence, evidence_phrase=evidence_phrase, **common)
