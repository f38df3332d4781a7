"""When a NEWS2 score asks for a response: the RCP's thresholds (Chart 3 and 4) and a rising trend.

- 7 or more: the emergency response threshold (``news2_emergency``, level ``emergency``);
- 5 or 6: the urgent response threshold (``news2_urgent``, level ``urgent``);
- 3 in any single parameter below 5 in total: an urgent ward-based response (``news2_red``, level ``urgent``);
- a rise of 2 or more over the lowest score of the last 24 hours (``news2_rise``, level ``urgent``): deterioration
  before a threshold is crossed.

A score that meets several rules raises one alert at the highest level, naming every rule it met.
"""

from __future__ import annotations

import datetime as dt

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
    if not met:
        return None
    level = max((level for _, level, _ in met), key=RANK.__getitem__)
    return Signal(tuple(rule for rule, _, _ in met), level, "; ".join(text for _, _, text in met))
