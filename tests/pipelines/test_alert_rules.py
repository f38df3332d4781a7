"""NEWS2 alert rules: the RCP's response thresholds and a rise of 2 within 24 hours."""

from __future__ import annotations

import datetime as dt

import pytest

from cds.pipelines.monitoring.alert_rules import news2_signal

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("score", "red", "level", "rules"), [
    (0, False, None, None), (4, False, None, None), (3, True, "urgent", ("news2_red",)),
    (5, False, "urgent", ("news2_urgent",)), (6, True, "urgent", ("news2_urgent",)),
    (7, False, "emergency", ("news2_emergency",)), (12, True, "emergency", ("news2_emergency",)),
])  # fmt: skip
def test_thresholds(score: float, red: bool, level: str | None, rules: tuple[str, ...] | None) -> None:
    signal = news2_signal(score, red, [], NOW)
    assert (signal.level if signal else None) == level and (signal.rules if signal else None) == rules


def test_a_rise_of_two_within_24_hours_is_an_alert_and_older_scores_do_not_count() -> None:
    earlier = [(NOW - dt.timedelta(hours=30), 0.0), (NOW - dt.timedelta(hours=20), 2.0), (NOW - dt.timedelta(hours=2), 3.0)]
    rise = news2_signal(4, False, earlier, NOW)
    assert rise is not None and rise.rules == ("news2_rise",) and "rose by 2" in rise.text and "from 2" in rise.text
    assert news2_signal(3, False, earlier, NOW) is None  # a rise of 1 from the lowest in 24 h (2); 0 is older
    both = news2_signal(7, False, earlier, NOW)
    assert both is not None and both.level == "emergency" and both.rules == ("news2_emergency", "news2_rise")
