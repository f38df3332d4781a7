"""When a NEWS2 score asks for a response: the RCP's thresholds (Chart 3 and 4) and a rising trend.

- 7 or more: the emergency response threshold (``news2_emergency``, level ``emergency``);
- 5 or 6: the urgent response threshold (``news2_urgent``, level ``urgent``);
- 3 in any single parameter below 5 in total: an urgent ward-based response (``news2_red``, level ``urgent``);
- a rise of 2 or more over the lowest score of the last 24 hours (``news2_rise``, level ``urgent``): deterioration
  before a threshold is crossed.

A score that meets several rules raises one alert at the highest level, naming every rule it met.

For a patient in the hypertension registry, home blood pressure (:mod:`cds.pipelines.monitoring.follow_up`):

- the mean of the last 7 days' home readings at or above 135/85 mmHg (``home_bp_above_target``, level
  ``routine``: for the next follow-up);
- a reading with SBP ≥ 180 or DBP ≥ 110 mmHg, which the public health service specification refers at once
  (``bp_refer_now``, level ``urgent``).
"""

from __future__ import annotations

import datetime as dt

from cds.pipelines.monitoring.follow_up import BP_REFER_NOW, HOME_BP_TARGET, HomeReadings
from cds.results.alerts import RANK, AlertLevel, Signal

RISE = 2.0
RISE_WINDOW = dt.timedelta(hours=24)


def news2_signal(score: float, red: bool, lowest_recent: float | None) -> Signal | None:
    """The alert a new NEWS2 ``score`` asks for; ``None`` when none.

    Args:
        score: The new aggregate score.
        red: Whether a single parameter scored 3.
        lowest_recent: The patient's lowest NEWS2 measured in the :data:`RISE_WINDOW` before this one, if any.
    """
    met: list[tuple[str, AlertLevel, str]] = []
    if score >= 7:
        met.append(("news2_emergency", AlertLevel.EMERGENCY, f"NEWS2 {score:g}: emergency response threshold"))
    elif score >= 5:
        met.append(("news2_urgent", AlertLevel.URGENT, f"NEWS2 {score:g}: urgent response threshold"))
    elif red:
        met.append(("news2_red", AlertLevel.URGENT,
                    f"NEWS2 {score:g} with a single parameter scoring 3: urgent ward-based response"))  # fmt: skip
    if lowest_recent is not None and score - lowest_recent >= RISE:
        met.append(("news2_rise", AlertLevel.URGENT,
                    f"NEWS2 rose by {score - lowest_recent:g} within 24 hours (from {lowest_recent:g})"))  # fmt: skip
    return _signal(met)


def home_bp_signal(home: HomeReadings, highest: tuple[float, float] | None) -> Signal | None:
    """The alert new home readings ask for: the week's mean above target, or a reading to refer at once.

    Args:
        home: The last 7 days' home readings, summarised.
        highest: The new readings' highest (SBP, DBP), if any.
    """
    met: list[tuple[str, AlertLevel, str]] = []
    if highest is not None and (highest[0] >= BP_REFER_NOW[0] or highest[1] >= BP_REFER_NOW[1]):
        met.append(("bp_refer_now", AlertLevel.URGENT,
                    f"BP {highest[0]:g}/{highest[1]:g} mmHg: refer at once (SBP ≥ 180 or DBP ≥ 110)"))  # fmt: skip
    if home.above_target:
        met.append(("home_bp_above_target", AlertLevel.ROUTINE,
                    f"home BP mean {home.mean[0]:g}/{home.mean[1]:g} mmHg over {home.days} days of the last 7 "
                    f"(target <{HOME_BP_TARGET[0]:g}/{HOME_BP_TARGET[1]:g})"))  # fmt: skip
    return _signal(met)


def _signal(met: list[tuple[str, AlertLevel, str]]) -> Signal | None:
    """One signal for every rule met, at the highest level; ``None`` when none was."""
    if not met:
        return None
    level = max((level for _, level, _ in met), key=RANK.__getitem__)
    return Signal(tuple(rule for rule, _, _ in met), level, "; ".join(text for _, _, text in met))
