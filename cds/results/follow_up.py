"""Chronic-disease follow-up as a family doctor reads it: who is in a registry, how controlled, when due."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict


class RegistryEntry(BaseModel):
    """A patient in a registry: since when, at which site, on what evidence."""

    model_config = ConfigDict(frozen=True)

    patient: str
    condition: str
    site: str
    enrolled_on: dt.date
    birth_date: str | None  # as the record gives it, possibly partial
    source: str


class Control(BaseModel):
    """One measure against its target: the value, when, and whether it is below target (``None``: no value)."""

    model_config = ConfigDict(frozen=True)

    measure: str  # office_bp, home_bp, fasting_glucose, hba1c
    value: list[float]
    unit: str
    measured_on: dt.date | None
    target: str  # e.g. "<140/90"
    controlled: bool | None
    note: str = ""


class FollowUpStatus(BaseModel):
    """A registry patient's control and follow-up, by the national basic public health service schedule."""

    model_config = ConfigDict(frozen=True)

    entry: RegistryEntry
    age: int | None
    controls: list[Control]
    controlled: bool | None  # at the last follow-up; None before the first
    uncontrolled_since: dt.date | None
    last_follow_up: dt.date | None
    follow_ups_past_year: int
    due: dt.date
    overdue_days: int
    reason: str
    reason_code: str  # no_follow_up, quarterly, recheck, refer_consecutive, refer_now
    referral_advised: bool
    as_of: dt.date
