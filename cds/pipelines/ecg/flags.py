"""The flags a reader must see: possible STEMI, prolonged QTc, the rhythm's warnings, leads not measured.

**ST elevation** (Fourth Universal Definition of Myocardial Infarction, Thygesen et al., Circulation/JACC/EHJ 2018,
"ECG manifestations of acute myocardial ischaemia"): new ST elevation at the J point in two contiguous leads of
≥ 1 mm (0.1 mV) in all leads other than V2–V3, where the cut-points are ≥ 2 mm in men ≥ 40 years, ≥ 2.5 mm in men
< 40 years and ≥ 1.5 mm in women regardless of age. Contiguous leads are taken as that document's lead groups:
neighbours among V1–V6 (V1–V2, ..., V5–V6), any two of the inferior leads II, III and aVF, and the lateral pair I
and aVL. When sex or age is unknown the lowest cut-point that could apply is used (1.5 mm in V2–V3: a missed STEMI
costs more than an extra review) and the flag says so. Met criteria raise ``possible_stemi`` (critical, "possible
STEMI — urgent review") naming the leads; the engine cannot know whether the elevation is new, and with a QRS of
120 ms or more (bundle branch block, ventricular rhythm) ST criteria are unreliable: the text says both.

**QTc** (AHA/ACCF/HRS recommendations for the standardization and interpretation of the ECG, part IV, Rautaharju
et al., Circulation 2009): a QTc of 450 ms or more in men and 460 ms or more in women is prolonged; ≥ 500 ms is
stated as markedly prolonged. Fridericia's correction is used for the flag (Bazett's over-corrects at high rates;
both values are in the text). Unknown sex: the women's limit (460 ms) is not assumed; the men's (450 ms) is.

Each flag's evidence is also given as phrases (:mod:`cds.results.phrase`) for a reader in another language.
"""

from __future__ import annotations

from collections.abc import Sequence

from cds.pipelines.ecg.quality import LeadQuality
from cds.results.ecg import RHYTHM_TEXT, EcgFlag, Measurements, RhythmCall, Severity
from cds.results.phrase import Phrase, phrase

MM_PER_MV = 10.0
LIMB_GROUPS = (("II", "III", "aVF"), ("I", "aVL"))
PRECORDIAL = ("V1", "V2", "V3", "V4", "V5", "V6")
QTC_MEN_MS, QTC_WOMEN_MS, QTC_MARKED_MS = 450.0, 460.0, 500.0
WIDE_QRS_MS = 120.0


def contiguous_pairs() -> list[tuple[str, str]]:
    """The lead pairs that count as contiguous (see the module docstring)."""
    pairs = [(a, b) for a, b in zip(PRECORDIAL, PRECORDIAL[1:], strict=False)]
    for group in LIMB_GROUPS:
        pairs += [(a, b) for i, a in enumerate(group) for b in group[i + 1:]]
    return pairs


def st_cut_point_mv(lead: str, sex: str | None, age_years: float | None) -> float:
    """The ST-elevation cut-point of ``lead`` (mV) for this sex and age (unknown: the lowest that could apply)."""
    if lead not in ("V2", "V3"):
        return 0.1
    if sex == "female":
        return 0.15
    if sex == "male" and age_years is not None:
        return 0.2 if age_years >= 40 else 0.25
    return 0.15  # unknown sex (or a man of unknown age: 0.2 or 0.25, but a woman's 0.15 cannot be ruled out)


def st_elevation_flag(m: Measurements, *, sex: str | None, age_years: float | None) -> EcgFlag | None:
    """``possible_stemi`` when two contiguous leads meet their cut-points, else None."""
    meeting = {lead for lead, level in m.st_j_mv.items() if level >= st_cut_point_mv(lead, sex, age_years) - 1e-9}
    pairs = [pair for pair in contiguous_pairs() if set(pair) <= meeting]
    if not pairs:
        return None
    leads = tuple(lead for lead in (*("I", "II", "III", "aVR", "aVL", "aVF"), *PRECORDIAL)
                  if any(lead in pair for pair in pairs))  # fmt: skip
    each = tuple(f"{lead} {m.st_j_mv[lead] * MM_PER_MV:+.1f} mm" for lead in leads)
    levels = ", ".join(each)
    text = f"Possible STEMI — urgent review: ST elevation at the J point in {levels} (4th UDMI cut-points"
    phrases = [phrase("ecg.st_elevation", levels=each)]
    if sex is None or (sex == "male" and age_years is None):
        text += "; sex or age unknown, so the lowest V2–V3 cut-point, 1.5 mm, was used"
        phrases.append(phrase("ecg.st_lowest_cut_point"))
    text += "). Whether it is new cannot be known from one ECG"
    phrases.append(phrase("ecg.st_not_new"))
    if m.qrs_ms is not None and m.qrs_ms >= WIDE_QRS_MS:
        text += f"; QRS {m.qrs_ms:.0f} ms: ST criteria are unreliable with a wide QRS"
        phrases.append(phrase("ecg.st_wide_qrs", qrs_ms=round(m.qrs_ms)))
    return EcgFlag(code="possible_stemi", severity=Severity.CRITICAL, text=text + ".", leads=leads,
                   phrases=tuple(phrases))  # fmt: skip


def qtc_flag(m: Measurements, *, sex: str | None) -> EcgFlag | None:
    """``qtc_prolonged`` when Fridericia's QTc reaches the sex-specific limit, else None."""
    if m.qtc_fridericia_ms is None:
        return None
    limit = QTC_WOMEN_MS if sex == "female" else QTC_MEN_MS
    if m.qtc_fridericia_ms < limit:
        return None
    marked = m.qtc_fridericia_ms >= QTC_MARKED_MS
    bazett = f", Bazett {m.qtc_bazett_ms:.0f} ms" if m.qtc_bazett_ms is not None else ""
    who = {"female": "women", "male": "men"}.get(sex or "", "men (sex unknown)")
    text = (f"QTc {'markedly ' if marked else ''}prolonged: Fridericia {m.qtc_fridericia_ms:.0f} ms{bazett} "
            f"(limit {limit:.0f} ms for {who}{'; 500 ms or more' if marked else ''}).")
    fridericia = round(m.qtc_fridericia_ms)
    phrases: list[Phrase] = [
        phrase("ecg.qtc_fridericia", fridericia=fridericia) if m.qtc_bazett_ms is None
        else phrase("ecg.qtc_fridericia_bazett", fridericia=fridericia, bazett=round(m.qtc_bazett_ms)),
        phrase("ecg.qtc_limit_female" if sex == "female" else "ecg.qtc_limit_male" if sex == "male"
               else "ecg.qtc_limit_sex_unknown", limit=round(limit))]
    if marked:
        phrases.append(phrase("ecg.qtc_marked", marked=round(QTC_MARKED_MS)))
    return EcgFlag(code="qtc_prolonged", severity=Severity.WARNING, text=text, phrases=tuple(phrases))


def rhythm_flag(rhythm: RhythmCall) -> EcgFlag | None:
    """A warning for atrial fibrillation, flutter or frequent ectopy; None for sinus rhythms."""
    if rhythm.label not in ("atrial_fibrillation", "atrial_flutter", "frequent_ectopy"):
        return None
    phrases = (rhythm.evidence_phrase,) if rhythm.evidence_phrase is not None else ()
    return EcgFlag(code=rhythm.label, severity=Severity.WARNING, text=f"{RHYTHM_TEXT[rhythm.label]}: "
                   f"{rhythm.evidence}.", phrases=phrases)  # fmt: skip


def quality_flag(quality: Sequence[LeadQuality]) -> EcgFlag | None:
    """An information flag naming the leads left out of the measurements, and why."""
    bad = [q for q in quality if not q.usable]
    if not bad:
        return None
    text = "Not measured: " + "; ".join(f"{q.lead} ({', '.join(q.problems)})" for q in bad) + "."
    phrases = tuple(phrase("ecg.lead_not_measured", lead=q.lead, problems=q.problems) for q in bad)
    return EcgFlag(code="leads_not_measured", severity=Severity.INFO, text=text, leads=tuple(q.lead for q in bad),
                   phrases=phrases)  # fmt: skip


def ecg_flags(m: Measurements, rhythm: RhythmCall, quality: Sequence[LeadQuality], *, sex: str | None,
              age_years: float | None) -> tuple[EcgFlag, ...]:  # fmt: skip
    """Every flag, critical first."""
    found = [st_elevation_flag(m, sex=sex, age_years=age_years), qtc_flag(m, sex=sex), rhythm_flag(rhythm),
             quality_flag(quality)]  # fmt: skip
    order = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
    return tuple(sorted((flag for flag in found if flag is not None), key=lambda flag: order[flag.severity]))
