"""Follow-up rules of the national basic public health service specification (3rd edition), with dated examples."""

from __future__ import annotations

import datetime as dt

import pytest

from cds.pipelines.monitoring.follow_up import Condition, home_bp, schedule, uncontrolled_since, visit

D = dt.date


@pytest.mark.parametrize(("readings", "age", "controlled"), [
    ([(138, 88)], 50, True), ([(140, 80)], 50, False), ([(130, 90)], 50, False),  # 140 and 90 are not below
    ([(145, 85)], 70, True), ([(150, 85)], 70, False), ([(145, 85)], 64, False),  # 150/90 from 65
    ([(145, 85)], None, False),  # age unknown: the general target
    ([(150, 95), (130, 80)], 50, False),  # the day's clinic readings are averaged: 140/87.5 is not below 140
    ([(150, 95), (128, 80)], 50, True),  # 139/87.5
])  # fmt: skip
def test_office_blood_pressure_against_the_age_dependent_target(readings, age, controlled) -> None:  # noqa: ANN001
    assert visit(Condition.HYPERTENSION, D(2026, 1, 5), readings, age).controlled is controlled


def test_fasting_glucose_and_values_needing_referral_at_once() -> None:
    assert visit(Condition.DIABETES, D(2026, 1, 5), [(6.9,)], None).controlled
    assert not visit(Condition.DIABETES, D(2026, 1, 5), [(7.0,)], None).controlled
    assert visit(Condition.DIABETES, D(2026, 1, 5), [(3.9,)], None).refer_now  # hypoglycaemia
    assert visit(Condition.DIABETES, D(2026, 1, 5), [(16.7,)], None).refer_now
    assert not visit(Condition.DIABETES, D(2026, 1, 5), [(16.6,)], None).refer_now
    assert visit(Condition.HYPERTENSION, D(2026, 1, 5), [(182, 100), (150, 90)], 50).refer_now  # any reading
    assert visit(Condition.HYPERTENSION, D(2026, 1, 5), [(150, 110)], 50).refer_now
    assert not visit(Condition.HYPERTENSION, D(2026, 1, 5), [(179, 109)], 50).refer_now


def test_the_next_follow_up_is_quarterly_when_controlled_and_in_two_weeks_when_not() -> None:
    good = visit(Condition.HYPERTENSION, D(2026, 1, 31), [(130, 80)], 50)
    bad = visit(Condition.HYPERTENSION, D(2026, 5, 10), [(152, 92)], 50)
    worse = visit(Condition.HYPERTENSION, D(2026, 5, 24), [(156, 94)], 50)
    never = schedule(D(2026, 1, 2), [], D(2026, 1, 22))
    assert (never.due, never.overdue_days, never.reason) == (D(2026, 1, 2), 20, "no follow-up since enrolment")
    quarterly = schedule(D(2026, 1, 2), [good], D(2026, 3, 1))
    assert (quarterly.due, quarterly.overdue_days, quarterly.referral_advised) == (D(2026, 4, 30), 0, False)  # 31 Apr
    first_miss = schedule(D(2026, 1, 2), [good, bad], D(2026, 5, 30))
    assert (first_miss.due, first_miss.overdue_days, first_miss.referral_advised) == (D(2026, 5, 24), 6, False)
    second_miss = schedule(D(2026, 1, 2), [good, bad, worse], D(2026, 5, 30))
    assert second_miss.due == D(2026, 6, 7) and second_miss.referral_advised and "refer" in second_miss.reason
    urgent = schedule(D(2026, 1, 2), [visit(Condition.DIABETES, D(2026, 2, 1), [(18.2,)], None)], D(2026, 2, 1))
    assert urgent.referral_advised and urgent.due == D(2026, 2, 15)
    assert schedule(D(2025, 11, 30), [visit(Condition.DIABETES, D(2025, 11, 30), [(6.0,)], None)],
                    D(2026, 3, 1)).due == D(2026, 2, 28)  # 30 Feb does not exist


def test_uncontrolled_since_is_the_start_of_the_last_run_of_misses() -> None:
    days = [(D(2026, 1, 5), 130), (D(2026, 3, 1), 150), (D(2026, 3, 15), 148), (D(2026, 4, 1), 151)]
    visits = [visit(Condition.HYPERTENSION, day, [(sbp, 80)], 50) for day, sbp in days]
    assert uncontrolled_since(visits) == D(2026, 3, 1)
    assert uncontrolled_since(visits[:1]) is None and uncontrolled_since([]) is None


def test_home_blood_pressure_is_the_mean_of_the_last_seven_days_against_135_85() -> None:
    today = D(2026, 6, 10)
    at = lambda d, h=7: dt.datetime(2026, 6, d, h, tzinfo=dt.UTC)  # noqa: E731
    week = [(at(4), 150, 70), (at(5), 134, 84), (at(5, 20), 136, 80), (at(9), 130, 80), (at(10), 130, 80)]
    status = home_bp([(at(3), 190, 120), *week], today)  # the 3rd is outside the 7 days (4th-10th)
    assert status.days == 4 and status.mean == (136.0, 78.8) and status.above_target is True
    assert home_bp([(at(9), 130, 80), (at(10), 131, 82)], today).above_target is None  # 2 days only
    assert home_bp([(at(8), 130, 86), (at(9), 130, 86), (at(10), 130, 86)], today).above_target is True  # DBP
    assert home_bp([], today).mean == ()

