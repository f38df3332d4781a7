"""NEWS2 alert rules: the RCP's response thresholds and a rise of 2 within 24 hours."""

from __future__ import annotations

import pytest

from cds.pipelines.monitoring.alert_rules import news2_signal


@pytest.mark.parametrize(("score", "red", "level", "rules"), [
    (0, False, None, None), (4, False, None, None), (3, True, "urgent", ("news2_red",)),
    (5, False, "urgent", ("news2_urgent",)), (6, True, "urgent", ("news2_urgent",)),
    (7, False, "emergency", ("news2_emergency",)), (12, True, "emergency", ("news2_emergency",)),
])  # fmt: skip
def test_thresholds(score: float, red: bool, level: str | None, rules: tuple[str, ...] | None) -> None:
    signal = news2_signal(score, red, None)
    assert (signal.level if signal else None) == level and (signal.rules if signal else None) == rules


def test_a_rise_of_two_over_the_lowest_in_24_hours_is_an_alert() -> None:
    rise = news2_signal(4, False, 2.0)  # the lowest in 24 h (tests/store/test_scores.py: older ones do not count)
    assert rise is not None and rise.rules == ("news2_rise",) and "rose by 2" in rise.text and "from 2" in rise.text
    assert news2_signal(3, False, 2.0) is None  # a rise of 1
    both = news2_signal(7, False, 2.0)
    assert both is not None and both.level == "emergency" and both.rules == ("news2_emergency", "news2_rise")


def test_home_blood_pressure_rules() -> None:
    from cds.pipelines.monitoring.alert_rules import home_bp_signal
    from cds.pipelines.monitoring.follow_up import HomeReadings

    above, below, unknown = HomeReadings(4, (136.0, 80.0), True), HomeReadings(4, (130.0, 80.0), False), \
        HomeReadings(2, (150.0, 95.0), None)  # fmt: skip
    assert home_bp_signal(below, (134, 84)) is None and home_bp_signal(unknown, (150, 95)) is None
    routine = home_bp_signal(above, (136, 80))
    assert routine is not None and (routine.level, routine.rules) == ("routine", ("home_bp_above_target",))
    refer = home_bp_signal(unknown, (150, 110))  # DBP 110 is referred at once, whatever the week's mean
    assert refer is not None and (refer.level, refer.rules) == ("urgent", ("bp_refer_now",))
    assert home_bp_signal(below, (179, 109)) is None
