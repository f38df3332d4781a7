"""From all of a patient's readings of one input to the value a risk equation uses, and what to say about it.

- Blood pressure is the mean of the most recent visit's readings (all readings on that day), as the hypertension
  guidelines prescribe measuring (at least two readings, averaged), never a single one picked by order.
- Any other input takes the most recent day's value. Two readings on that day that disagree (by more than 1 %,
  which leaves room for rounding between units) are a conflict: the input is left out and the conflict named, so
  nothing is settled silently by the order of a Bundle.
- An input older than its staleness limit is still used and is marked stale in the result. Limits are per input,
  in days, with the defaults below (``CDS_RISK_STALE_DAYS`` overrides them, e.g. ``{"total_cholesterol": 1095}``):
  one year for blood pressure, kidney and glucose measures and lifestyle facts, five years for lipids (the longest
  interval any lipid-screening guideline allows for low-risk adults), one day for the vital signs of early-warning
  scores.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

UNDATED = dt.datetime.min.replace(tzinfo=dt.UTC)
AVERAGED = ("systolic_bp", "diastolic_bp")
AGREEMENT = 0.01  # relative difference within which two same-day readings are the same value
YEAR, FIVE_YEARS = 365, 1826
STALE_AFTER_DAYS: dict[str, int] = {
    "systolic_bp": YEAR, "diastolic_bp": YEAR, "total_cholesterol": FIVE_YEARS, "hdl_cholesterol": FIVE_YEARS,
    "ldl_cholesterol": FIVE_YEARS, "creatinine": YEAR, "egfr": YEAR, "uacr": YEAR, "hba1c": YEAR,
    "fasting_glucose": YEAR, "ogtt_2h_glucose": YEAR, "bmi": YEAR, "waist_cm": YEAR, "smoker": YEAR,
    "respiratory_rate": 1, "heart_rate": 1, "spo2": 1, "temperature": 1,  # vital signs for early-warning scores
}  # fmt: skip


@dataclass(frozen=True)
class Reading:
    """One value of an input, when it was taken, and the resource it came from."""

    when: dt.datetime  # timezone-aware; UNDATED when the resource gives no date
    value: float | bool
    reference: str
    unit: str = ""  # the UCUM code the value arrived in (the value itself is in the canonical unit)


@dataclass(frozen=True)
class Resolved:
    """The value an input takes (``None`` when its readings conflict), with its provenance and caveats."""

    value: float | bool | None
    reference: str
    day: dt.date | None
    notes: tuple[str, ...] = ()
    problem: str = ""
    unit: str = ""  # the unit the readings used arrived in, when they all came in one; else ""


def _shown(reading: Reading) -> str:
    value = reading.value if isinstance(reading.value, bool) else f"{reading.value:.4g}"
    return f"{value} ({reading.reference})"


def _agree(readings: Sequence[Reading]) -> bool:
    values = [r.value for r in readings]
    if any(isinstance(v, bool) for v in values):
        return len(set(values)) == 1
    low, high = min(values), max(values)
    return high - low <= AGREEMENT * max(abs(high), abs(low), 1e-12)


def _arrived_in(readings: Sequence[Reading]) -> str:
    units = {r.unit for r in readings}
    return units.pop() if len(units) == 1 else ""


def resolve(name: str, readings: Sequence[Reading], as_of: dt.date, stale_days: Mapping[str, int] | None = None,
            plausible: tuple[float, float] | None = None) -> Resolved:  # fmt: skip
    """The value of input ``name`` from its ``readings`` (at least one), at evaluation date ``as_of``.

    A visit's readings are not averaged when one is outside the physiological limits ``plausible``: that reading is
    the value, so the equations refuse it by what was recorded (a typing slip of 1480 is named, not a mean of 816).
    """
    latest = max(r.when for r in readings)
    undated = latest == UNDATED
    day = None if undated else latest.date()
    same_day = (r for r in readings if (r.when == UNDATED if undated else r.when != UNDATED and r.when.date() == day))
    visit = sorted(same_day, key=lambda r: (r.when, r.reference))  # the Bundle's order never matters
    newest = max(visit, key=lambda r: r.when)
    notes: list[str] = []
    when = "undated" if undated else f"on {day}"
    impossible = [r for r in visit if plausible is not None and not isinstance(r.value, bool)
                  and not plausible[0] <= float(r.value) <= plausible[1]]  # fmt: skip
    if impossible:
        return Resolved(impossible[0].value, impossible[0].reference, day, (
            f"{name}: {_shown(impossible[0])} is outside physiological limits; the visit's readings were not used",),
            unit=impossible[0].unit)
    if name in AVERAGED and len(visit) > 1 and not any(isinstance(r.value, bool) for r in visit):
        mean = sum(float(r.value) for r in visit) / len(visit)
        notes.append(f"{name} is the mean of the {len(visit)} readings {when}: "
                     + ", ".join(_shown(r) for r in visit))
        value: float | bool = mean
        used = visit
    elif len(visit) > 1 and not _agree(visit):
        return Resolved(None, newest.reference, day, problem=(
            f"{name}: readings {when} disagree ({', '.join(_shown(r) for r in visit)}); confirm the right one"))
    else:
        value = newest.value
        used = [newest]
    limit = {**STALE_AFTER_DAYS, **(stale_days or {})}.get(name)
    if undated:
        notes.append(f"{name} has no date ({newest.reference}); how recent it is cannot be judged")
    elif limit is not None and day is not None and (as_of - day).days > limit:
        notes.append(f"{name} is stale: measured {day} ({(as_of - day).days / 365.25:.1f} years before "
                     f"{as_of.isoformat()}; limit {limit} days)")
    return Resolved(value, newest.reference, day, tuple(notes), unit=_arrived_in(used))
