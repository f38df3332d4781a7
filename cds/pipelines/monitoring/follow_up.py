"""Chronic-disease follow-up by the national basic public health service schedule: control status and due dates.

Sources. The schedule and the office targets are those of the 国家基本公共卫生服务规范（第三版）(National Basic
Public Health Service Specification, 3rd edition, National Health and Family Planning Commission, 2017), its
高血压患者健康管理服务规范 and 2型糖尿病患者健康管理服务规范, as reproduced in public copies (the NHC's own PDF
could not be read from this machine). The copies agree on every rule below except the 150/90 mmHg target from age
65, which some omit; cds applies it, as the Chinese hypertension guideline (2018 revision) sets <150/90 mmHg first
for patients aged 65 and over:

- at least four face-to-face follow-ups a year (quarterly);
- hypertension controlled: office BP below 140/90 mmHg (below 150/90 mmHg from age 65);
- type 2 diabetes controlled: fasting glucose below 7.0 mmol/L;
- controlled, and nothing else wrong: the next follow-up is booked (quarterly);
- not controlled for the first time: treatment adjusted, follow-up within 2 weeks;
- not controlled at two consecutive follow-ups: referral to a higher-level hospital, and a follow-up of the
  referral within 2 weeks;
- at any visit, SBP ≥ 180 or DBP ≥ 110 mmHg, or glucose ≥ 16.7 or ≤ 3.9 mmol/L: referral at once.

Home blood pressure is compared with 135/85 mmHg, the home threshold the Chinese hypertension guideline (2018
revision) gives as equivalent to 140/90 mmHg in the office, over the mean of the last 7 days' readings, as the
guideline asks home readings to be summarised; fewer than 3 days of readings in that week give no home status.
HbA1c is compared with 7.0 %, the general target of the Chinese type 2 diabetes guideline (2020), and counts for
6 months.

Which readings count: a follow-up is a day with a reading taken in the clinic (an Observation with an encounter or a
practitioner as performer); the visit's value is the mean of that day's clinic readings. Every other reading is a
home reading.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

QUARTER_MONTHS = 3
RECHECK = dt.timedelta(days=14)
HOME_WINDOW = dt.timedelta(days=7)
HOME_MIN_DAYS = 3
HOME_BP_TARGET = (135.0, 85.0)
FASTING_GLUCOSE_TARGET = 7.0  # mmol/L: controlled below
HBA1C_TARGET = 7.0  # %: controlled below
HBA1C_VALID = dt.timedelta(days=183)
BP_REFER_NOW = (180.0, 110.0)
GLUCOSE_REFER_NOW = (3.9, 16.7)  # mmol/L: at or beyond either


REASONS = {
    "no_follow_up": "no follow-up since enrolment",
    "quarterly": "controlled: quarterly follow-up",
    "recheck": "not controlled: follow-up within 2 weeks",
    "refer_consecutive": "not controlled at two consecutive follow-ups: refer, and follow up on the referral within "
                         "2 weeks",
    "refer_now": "a value needing referral at once at the last follow-up: refer, and follow up within 2 weeks",
}


class Condition(StrEnum):
    """The registries a family doctor keeps."""

    HYPERTENSION = "hypertension"
    DIABETES = "diabetes"


@dataclass(frozen=True)
class Visit:
    """One follow-up: the day, the clinic value(s) (SBP and DBP, or fasting glucose) and whether it was controlled."""

    day: dt.date
    values: tuple[float, ...]
    controlled: bool
    refer_now: bool


@dataclass(frozen=True)
class Schedule:
    """When the next follow-up is due, and why."""

    due: dt.date
    overdue_days: int  # 0 when not yet due
    reason: str
    referral_advised: bool
    code: str  # the rule: no_follow_up, quarterly, recheck, refer_consecutive, refer_now


@dataclass(frozen=True)
class HomeReadings:
    """The mean of the last 7 days' home readings, and whether it is above the home target (``None``: too few)."""

    days: int
    mean: tuple[float, ...]
    above_target: bool | None


def office_bp_target(age: int | None) -> tuple[float, float]:
    """The office BP below which hypertension is controlled: 150/90 mmHg from age 65, else 140/90 mmHg."""
    return (150.0, 90.0) if age is not None and age >= 65 else (140.0, 90.0)


def visit(condition: Condition, day: dt.date, readings: Sequence[Sequence[float]], age: int | None) -> Visit:
    """One follow-up from that day's clinic readings: (SBP, DBP) pairs, or (fasting glucose,) in mmol/L."""
    width = len(readings[0])
    mean = tuple(round(sum(r[i] for r in readings) / len(readings), 1) for i in range(width))
    if condition is Condition.HYPERTENSION:
        systolic, diastolic = mean
        target = office_bp_target(age)
        controlled = systolic < target[0] and diastolic < target[1]
        refer = any(r[0] >= BP_REFER_NOW[0] or r[1] >= BP_REFER_NOW[1] for r in readings)
    else:
        controlled = mean[0] < FASTING_GLUCOSE_TARGET
        refer = any(r[0] <= GLUCOSE_REFER_NOW[0] or r[0] >= GLUCOSE_REFER_NOW[1] for r in readings)
    return Visit(day, mean, controlled, refer)


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    days_in_month = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, days_in_month))


def schedule(enrolled_on: dt.date, visits: Sequence[Visit], today: dt.date) -> Schedule:
    """The next follow-up after ``visits`` (oldest first), by the specification's rules."""
    if not visits:
        due, code, refer = enrolled_on, "no_follow_up", False
    else:
        last = visits[-1]
        if last.refer_now:
            due, code, refer = last.day + RECHECK, "refer_now", True
        elif last.controlled:
            due, code, refer = _add_months(last.day, QUARTER_MONTHS), "quarterly", False
        elif len(visits) >= 2 and not visits[-2].controlled:
            due, code, refer = last.day + RECHECK, "refer_consecutive", True
        else:
            due, code, refer = last.day + RECHECK, "recheck", False
    return Schedule(due, max(0, (today - due).days), REASONS[code], refer, code)


def uncontrolled_since(visits: Sequence[Visit]) -> dt.date | None:
    """The first day of the trailing run of uncontrolled follow-ups; ``None`` when the last one was controlled."""
    since = None
    for item in reversed(visits):
        if item.controlled:
            break
        since = item.day
    return since


def home_bp(readings: Sequence[tuple[dt.datetime, float, float]], today: dt.date) -> HomeReadings:
    """The mean of the home (time, SBP, DBP) readings of the 7 days up to ``today``, against 135/85 mmHg."""
    start = today - HOME_WINDOW + dt.timedelta(days=1)
    recent = [(s, d) for when, s, d in readings if start <= when.date() <= today]
    days = len({when.date() for when, _, _ in readings if start <= when.date() <= today})
    if not recent:
        return HomeReadings(0, (), None)
    mean = (round(sum(s for s, _ in recent) / len(recent), 1), round(sum(d for _, d in recent) / len(recent), 1))
    above = None if days < HOME_MIN_DAYS else mean[0] >= HOME_BP_TARGET[0] or mean[1] >= HOME_BP_TARGET[1]
    return HomeReadings(days, mean, above)
