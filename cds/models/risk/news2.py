"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017): acute-illness severity, 0-20.

Source: Royal College of Physicians. National Early Warning Score (NEWS) 2: Standardising the assessment of
acute-illness severity in the NHS. Updated report of a working party. London: RCP, December 2017; Chart 1 (the
scoring system), Chart 3 (clinical risk thresholds) and Chart 4 (clinical response). The chart was read through a
reproduction of the RCP's Chart 1 and checked band by band against the published openEHR archetype
``openEHR-EHR-OBSERVATION.news2.v1`` (which cites the report); the report's own pages could not be read here. Points
(score 3 | 2 | 1 | 0 | 1 | 2 | 3):

- respiration rate /min: <= 8 | - | 9-11 | 12-20 | - | 21-24 | >= 25
- SpO2 scale 1 %: <= 91 | 92-93 | 94-95 | >= 96
- SpO2 scale 2 % (target 88-92 %, e.g. hypercapnic respiratory failure; only when a clinician has documented it):
  <= 83 | 84-85 | 86-87 | 88-92, or >= 93 on air | 93-94 on oxygen | 95-96 on oxygen | >= 97 on oxygen
- air or oxygen: oxygen 2, air 0
- systolic BP mmHg: <= 90 | 91-100 | 101-110 | 111-219 | - | - | >= 220
- pulse /min: <= 40 | - | 41-50 | 51-90 | 91-110 | 111-130 | >= 131
- consciousness: alert 0; new confusion, voice, pain or unresponsive (CVPU) 3
- temperature °C: <= 35.0 | - | 35.1-36.0 | 36.1-38.0 | 38.1-39.0 | >= 39.1 (2)

Clinical risk (Chart 3) and response (Chart 4): aggregate 0-4 low (0: monitoring at least 12-hourly; 1-4: at least
4-6-hourly, a registered nurse assesses); a score of 3 in any single parameter ("red score") low-medium (urgent
ward-based response, at least hourly); 5-6 medium (urgent response threshold, at least hourly); 7 or more high
(emergency response, continuous monitoring). The chart's bands are whole numbers (temperature in tenths); a value
between them is scored by the band whose upper limit it does not exceed (37.95 °C is in 36.1-38.0; 20.5 /min in
21-24): a local rule, as the RCP states none.
"""

from __future__ import annotations

import numpy as np

from cds.models.risk.base import Columns, FieldKind, FieldSpec, PointScore, RiskBand, banded

RESPIRATORY_RATE = FieldSpec("respiratory_rate", "/min", "respiration rate", plausible=(0, 100))
SPO2 = FieldSpec("spo2", "%", "oxygen saturation (pulse oximetry)", plausible=(0, 100))
ON_OXYGEN = FieldSpec("on_oxygen", "1", "breathing supplemental oxygen (not room air)", FieldKind.BOOLEAN)
SPO2_SCALE_2 = FieldSpec("spo2_scale_2", "1", "SpO2 target 88-92 % documented by a clinician (scale 2); absent: "
                         "scale 1", FieldKind.BOOLEAN, required=False)  # fmt: skip
ACUTE_SBP = FieldSpec("systolic_bp", "mm[Hg]", "systolic blood pressure", plausible=(0, 300))
HEART_RATE = FieldSpec("heart_rate", "/min", "pulse rate", plausible=(0, 350))
CONSCIOUSNESS = FieldSpec("consciousness", "1", "ACVPU: alert, confusion (new), voice, pain or unresponsive",
                          FieldKind.CATEGORY, categories=("alert", "confusion", "voice", "pain", "unresponsive"))
TEMPERATURE = FieldSpec("temperature", "Cel", "body temperature", plausible=(20, 46))
RISK = {  # clinical risk -> (band, what the RCP's Chart 4 asks for)
    "low-0": (RiskBand.LOW, "low: continue routine monitoring, at least 12-hourly"),
    "low": (RiskBand.LOW, "low: a registered nurse assesses; monitoring at least 4-6-hourly"),
    "low-medium": (RiskBand.INTERMEDIATE, "low-medium (a single parameter scores 3): urgent ward-based response; "
                                          "monitoring at least hourly"),
    "medium": (RiskBand.HIGH, "medium: urgent response threshold; monitoring at least hourly"),
    "high": (RiskBand.VERY_HIGH, "high: emergency response threshold; continuous monitoring"),
}  # fmt: skip


def _banded(values: np.ndarray, upper: tuple[float, ...], points: tuple[int, ...]) -> np.ndarray:
    """``points[i]`` for the first band whose inclusive upper limit ``upper[i]`` the value does not exceed."""
    return np.asarray(points, dtype=float)[np.searchsorted(np.asarray(upper), values, side="left")]


class News2(PointScore):
    """NEWS2 aggregate 0-20; the band and category carry the RCP clinical risk and response."""

    name = "news2"
    version = "2017"
    title = "National Early Warning Score 2 (NEWS2)"
    source = "Royal College of Physicians. National Early Warning Score (NEWS) 2. London: RCP, 2017 (Charts 1, 3, 4)"
    population = "adults (16 years or older) in hospital or pre-hospital care; not in pregnancy"
    score_unit = "points (0-20)"
    outcome = "acute clinical deterioration (cardiac arrest, unplanned ICU admission, death) within 24 hours"
    derived_in = ""  # the RCP's national standard, used internationally: no population caveat
    fields = (RESPIRATORY_RATE, SPO2, ON_OXYGEN, SPO2_SCALE_2, ACUTE_SBP, HEART_RATE, CONSCIOUSNESS, TEMPERATURE)

    def points(self, x: Columns) -> dict[str, np.ndarray]:
        """Points per parameter, as Chart 1 gives them."""
        oxygen = x["on_oxygen"] == 1
        spo2 = x["spo2"]
        scale_1 = _banded(spo2, (91, 93, 95), (3, 2, 1, 0))
        low_scale_2 = _banded(spo2, (83, 85, 87), (3, 2, 1, 0))
        high_on_oxygen = _banded(spo2, (92, 94, 96), (0, 1, 2, 3))
        scale_2 = np.where(oxygen & (spo2 > 92), high_on_oxygen, low_scale_2)
        return {
            "respiratory_rate": _banded(x["respiratory_rate"], (8, 11, 20, 24), (3, 1, 0, 2, 3)),
            "spo2": np.where(x["spo2_scale_2"] == 1, scale_2, scale_1),
            "on_oxygen": np.where(oxygen, 2.0, 0.0),
            "systolic_bp": _banded(x["systolic_bp"], (90, 100, 110, 219), (3, 2, 1, 0, 3)),
            "heart_rate": _banded(x["heart_rate"], (40, 50, 90, 110, 130), (3, 1, 0, 1, 2, 3)),
            "consciousness": np.where(x["consciousness"] == "alert", 0.0, 3.0),
            "temperature": _banded(x["temperature"], (35.0, 36.0, 38.0, 39.0), (3, 1, 0, 1, 2)),
        }

    def _risk(self, score: np.ndarray, columns: Columns, part: int) -> np.ndarray:
        """Per row, the clinical risk's band (``part`` 0) or its words and response (1)."""
        red = np.max(np.stack(list(self.points(columns).values())), axis=0) >= 3
        index = np.select([score >= 7, score >= 5, red, score > 0], [0, 1, 2, 3], 4)
        table = np.array([RISK[key][part] for key in ("high", "medium", "low-medium", "low", "low-0")], dtype=object)
        result: np.ndarray = table[index]
        return result

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Low (0-4), low-medium as intermediate (a red score), medium (5-6) as high, high (>= 7) as very high."""
        return self._risk(score, columns, 0)

    def categories(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """The RCP clinical risk and its response."""
        return self._risk(score, columns, 1)


ALTERED_MENTATION = FieldSpec("altered_mentation", "1", "altered mentation (Glasgow Coma Scale below 15)",
                              FieldKind.BOOLEAN)  # fmt: skip


class QuickSofa(PointScore):
    """qSOFA 0-3: one point each for respiratory rate >= 22/min, altered mentation, systolic BP <= 100 mmHg."""

    name = "qsofa"
    version = "2016"
    title = "quick Sequential Organ Failure Assessment (qSOFA)"
    source = ("Seymour CW et al. JAMA 2016;315(8):762-774; Singer M et al. (Sepsis-3) JAMA 2016;315(8):801-810")
    population = "adults with suspected infection outside the ICU"
    score_unit = "points (0-3)"
    outcome = "poor outcome of sepsis (in-hospital death or ICU stay of 3 days or more); positive at 2 or more"
    derived_in = ""  # the international Sepsis-3 definition: no population caveat
    fields = (RESPIRATORY_RATE, ACUTE_SBP, ALTERED_MENTATION)

    def points(self, x: Columns) -> dict[str, np.ndarray]:
        """One point per criterion met."""
        return {
            "respiratory_rate": np.where(x["respiratory_rate"] >= 22, 1.0, 0.0),
            "systolic_bp": np.where(x["systolic_bp"] <= 100, 1.0, 0.0),
            "altered_mentation": np.where(x["altered_mentation"] == 1, 1.0, 0.0),
        }

    def bands(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """``high`` when positive (2 or more), else ``low``."""
        return banded(score, (2,), (RiskBand.LOW, RiskBand.HIGH))

    def categories(self, score: np.ndarray, columns: Columns) -> np.ndarray:
        """Positive or negative, as Sepsis-3 reads the score."""
        return np.where(score >= 2, "positive (2 or more criteria)", "negative").astype(object)
