"""Chronic-disease follow-up for family doctors: registries, control status, due dates, the lists a site works from.

A patient enters the hypertension or diabetes registry from the EHR's diagnosis (a FHIR Condition, with the Patient
for the birth date) or by a doctor's enrolment. Their status is computed on reading from the observations stored
under ``/v1/observations`` (clinic and home readings told apart, :mod:`cds.interop.fhir_observations`) by the rules
of :mod:`cds.pipelines.monitoring.follow_up`. Enrolments and reads are audited.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session

from cds.errors import ForbiddenError, InvalidInputError
from cds.interop.fhir_observations import CLINIC, PATIENT_REFERENCE, patient_of
from cds.interop.record_conditions import diabetes_condition, hypertension_condition
from cds.interop.record_dates import age_at, birth_range, instant
from cds.pipelines.monitoring.alert_rules import home_bp_signal
from cds.pipelines.monitoring.follow_up import (
    FASTING_GLUCOSE_TARGET,
    HBA1C_TARGET,
    HBA1C_VALID,
    HOME_BP_TARGET,
    HOME_WINDOW,
    Condition,
    Visit,
    home_bp,
    office_bp_target,
    schedule,
    uncontrolled_since,
    visit,
)
from cds.pipelines.risk.equation import hash_inputs
from cds.results.alerts import Signal
from cds.results.follow_up import Control, FollowUpStatus, RegistryEntry
from cds.services.engine import Engine
from cds.store import observations, registry
from cds.store.audit import Actor, AuditAction, record_event
from cds.store.results import release_result
from cds.store.sites import acting_site
from cds.store.tables import ObservationRow, RegistryRow

HYPERTENSION = Condition.HYPERTENSION
HOME_BP_METHOD = "home_bp@2018"  # the 7-day home mean against the Chinese hypertension guideline's 135/85 (2018)
HISTORY = dt.timedelta(days=730)  # the observations a status is computed from
FIELDS = {Condition.HYPERTENSION: ("systolic_bp", "diastolic_bp"), Condition.DIABETES: ("fasting_glucose", "hba1c")}


@dataclass(frozen=True)
class Local:
    """A stored value, timed in the site's zone (whose days follow-ups are counted in)."""

    field: str
    value: float | None
    setting: str
    source: str
    effective: dt.datetime


class Enrolment(BaseModel):
    """A doctor's enrolment of a patient (when no Condition is at hand)."""

    model_config = ConfigDict(extra="forbid")

    patient: str = Field(pattern=PATIENT_REFERENCE)
    site: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9\-_.]{0,99}$")
    birth_date: str | None = Field(default=None, description="FHIR date: 1958, 1958-03 or 1958-03-02")
    enrolled_on: dt.date | None = None


def _from_fhir(condition: Condition, document: Mapping[str, Any], today: dt.date) -> Enrolment:
    """The enrolment a Condition (alone, or in a Bundle with its Patient) gives.

    Raises:
        InvalidInputError: ``invalid_fhir``, ``missing_subject``, ``not_this_condition`` (422).
    """
    from fhir.resources.R4B.bundle import Bundle
    from fhir.resources.R4B.condition import Condition as FhirCondition

    try:
        if document.get("resourceType") == "Bundle":
            entries: list[Any] = [e for e in Bundle.model_validate(dict(document)).entry or [] if e.resource]
            resources = [e.resource for e in entries]
            full_urls = {str(e.fullUrl): f"Patient/{e.resource.id}" for e in entries
                         if e.fullUrl and e.resource.get_resource_type() == "Patient" and e.resource.id}  # fmt: skip
        else:
            resources, full_urls = [FhirCondition.model_validate(dict(document))], {}
    except (ValidationError, ValueError, TypeError, AttributeError, KeyError) as exc:
        raise InvalidInputError(f"not a valid FHIR R4 Condition or Bundle: {str(exc)[:300]}",
                                code="invalid_fhir") from None  # fmt: skip
    test = hypertension_condition if condition is Condition.HYPERTENSION else diabetes_condition
    matching: list[Any] = [r for r in resources if r.get_resource_type() == "Condition" and test(r) is not None]
    if not matching:
        raise InvalidInputError(f"no active, confirmed {condition.value} Condition (ICD-10 or SNOMED CT) in the "
                                "document", code="not_this_condition")  # fmt: skip
    found = matching[0]
    patient = patient_of(str(found.subject.reference or ""), full_urls) if found.subject else None
    if patient is None:
        raise InvalidInputError("the Condition names no Patient as its subject", code="missing_subject")
    people: list[Any] = [r for r in resources if r.get_resource_type() == "Patient" and f"Patient/{r.id}" == patient]
    born = str(people[0].birthDate) if people and people[0].birthDate else None
    onset = instant(found.onsetDateTime) or instant(found.recordedDate)
    return Enrolment(patient=patient, birth_date=born,
                     enrolled_on=min(onset.date(), today) if onset else None)  # fmt: skip


def enroll(engine: Engine, condition: Condition, document: Mapping[str, Any], *, actor: Actor,
           authorize: Callable[[str], None] | None = None) -> tuple[RegistryEntry, bool]:  # fmt: skip
    """Enrol the patient a Condition (or a doctor's enrolment) names at ``actor``'s site; ``(entry, new)``.

    Raises:
        InvalidInputError: The document is neither, or not about this condition.
        ForbiddenError: ``other_site``: the enrolment names another site than the caller's.
    """
    home = acting_site(actor, engine.settings.site)
    today = dt.datetime.now(zoneinfo.ZoneInfo(engine.settings.timezone)).date()  # the site's day, as statuses
    if "resourceType" in document:
        enrolment = _from_fhir(condition, document, today)
        source = f"Condition/{document.get('id') or ''}" if document.get("resourceType") == "Condition" else "Bundle"
    else:
        try:
            enrolment = Enrolment.model_validate(dict(document))
        except ValidationError as exc:
            raise InvalidInputError(f"not an enrolment: {str(exc)[:300]}", code="invalid_enrolment") from None
        source = f"enrolled by {actor.subject}"
    if enrolment.birth_date is not None and birth_range(enrolment.birth_date) is None:
        raise InvalidInputError(f"birth_date {enrolment.birth_date[:20]!r} is not a FHIR date", code="invalid_date")
    if enrolment.site not in (None, home):
        raise ForbiddenError(f"you enrol patients at {home}, not at {enrolment.site}", code="other_site")
    if authorize is not None:
        authorize(enrolment.patient)
    with engine.database.session() as session:
        row, new = registry.enroll(session, patient=enrolment.patient, condition=condition.value, site=home,
                                   enrolled_on=enrolment.enrolled_on or today, birth_date=enrolment.birth_date,
                                   source=source, enrolled_by=actor.subject)  # fmt: skip
        if new:
            record_event(session, AuditAction.REGISTRY_ENROL, actor, f"Registry/{condition.value}",
                         subject=enrolment.patient, detail={"site": row.site})
        return _entry(row), new


def _entry(row: RegistryRow) -> RegistryEntry:
    return RegistryEntry(patient=row.patient, condition=row.condition, site=row.site, enrolled_on=row.enrolled_on,
                         birth_date=row.birth_date, source=row.source)  # fmt: skip


def _visits(condition: Condition, rows: Sequence[Local], age: int | None) -> list[Visit]:
    """One follow-up per (local) day with clinic readings of the condition's measure."""
    by_day: dict[dt.date, list[tuple[float, ...]]] = defaultdict(list)
    for reading in _readings(condition, [r for r in rows if r.setting == CLINIC]):
        by_day[reading[0].date()].append(reading[1:])
    return [visit(condition, day, values, age) for day, values in sorted(by_day.items())]


def _readings(condition: Condition, rows: Sequence[Local]) -> list[tuple[Any, ...]]:
    """(time, SBP, DBP) pairs measured together, or (time, fasting glucose)."""
    if condition is Condition.DIABETES:
        return [(r.effective, float(r.value)) for r in rows if r.field == "fasting_glucose" and r.value is not None]
    pairs: dict[tuple[dt.datetime, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r.value is not None and r.field in ("systolic_bp", "diastolic_bp"):
            pairs[(r.effective, r.source)][r.field] = float(r.value)
    return [(when, p["systolic_bp"], p["diastolic_bp"]) for (when, _), p in sorted(pairs.items())
            if len(p) == 2]  # fmt: skip


def _status(row: RegistryRow, rows: Sequence[Local], today: dt.date) -> FollowUpStatus:
    condition = Condition(row.condition)
    known = age_at(row.birth_date, today)
    age = known.years if known is not None and not known.approximate else None
    if known is not None and known.approximate and (known.low >= 65 or known.high < 65):
        age = known.low  # a partial birth date that does not straddle 65 decides the target all the same
    visits = _visits(condition, rows, age)
    plan = schedule(row.enrolled_on, visits, today)
    last = visits[-1] if visits else None
    controls: list[Control] = []
    if condition is Condition.HYPERTENSION:
        target = office_bp_target(age)
        note = "" if age is not None else "age unknown: the general target"
        controls.append(Control(measure="office_bp", value=list(last.values) if last else [], unit="mmHg",
                                measured_on=last.day if last else None, target=f"<{target[0]:g}/{target[1]:g}",
                                controlled=last.controlled if last else None, note=note))  # fmt: skip
        home = home_bp([r for r in _readings(condition, [r for r in rows if r.setting != CLINIC])], today)
        controls.append(Control(measure="home_bp", value=list(home.mean), unit="mmHg",
                                measured_on=today if home.days else None,
                                target=f"<{HOME_BP_TARGET[0]:g}/{HOME_BP_TARGET[1]:g}", controlled=(
                                    None if home.above_target is None else not home.above_target),
                                note=f"mean of {home.days} day(s) of home readings in the last 7 days"))  # fmt: skip
    else:
        controls.append(Control(measure="fasting_glucose", value=list(last.values) if last else [], unit="mmol/L",
                                measured_on=last.day if last else None, target=f"<{FASTING_GLUCOSE_TARGET:g}",
                                controlled=last.controlled if last else None))  # fmt: skip
        hba1c = [r for r in rows if r.field == "hba1c" and r.value is not None
                 and r.effective.date() > today - HBA1C_VALID]  # fmt: skip
        newest = hba1c[-1] if hba1c else None
        controls.append(Control(measure="hba1c", value=[round(float(newest.value or 0), 1)] if newest else [],
                                unit="%", measured_on=newest.effective.date() if newest else None,
                                target=f"<{HBA1C_TARGET:g}", controlled=(float(newest.value or 0) < HBA1C_TARGET)
                                if newest else None, note="" if newest else "none in the last 6 months"))  # fmt: skip
    year_ago = today - dt.timedelta(days=365)
    return FollowUpStatus(entry=_entry(row), age=age, controls=controls,
                          controlled=last.controlled if last else None, uncontrolled_since=uncontrolled_since(visits),
                          last_follow_up=last.day if last else None,
                          follow_ups_past_year=sum(v.day > year_ago for v in visits), due=plan.due,
                          overdue_days=plan.overdue_days, reason=plan.reason, reason_code=plan.code,
                          referral_advised=plan.referral_advised,
                          as_of=today)  # fmt: skip


def statuses(engine: Engine, *, condition: Condition | None, sites: Sequence[str], patient: str | None, actor: Actor,
             today: dt.date | None = None, audited: bool = True) -> list[FollowUpStatus]:  # fmt: skip
    """Each entry's status at ``today`` in the registries of ``sites``: the most overdue first, then the uncontrolled.

    ``audited``: record the read (``registry.read``); a caller that audits the whole request itself (a CDS Hooks
    call) passes ``False``.
    """
    zone = zoneinfo.ZoneInfo(engine.settings.timezone)
    today = today or dt.datetime.now(zone).date()
    conditions = [condition] if condition else list(Condition)
    with engine.database.session() as session:
        rows = [r for c in conditions for r in registry.entries(session, sites=sites, condition=c.value,
                                                                 patient=patient)]  # fmt: skip
        fields = sorted({f for c in conditions for f in FIELDS[c]})
        since = dt.datetime.combine(today, dt.time(), dt.UTC) - HISTORY
        found: dict[str, list[Local]] = defaultdict(list)
        for o in observations.series(session, sorted({r.patient for r in rows}), since, fields, sites=sites):
            local = _local(o, zone)
            if local.effective.date() <= today:  # a status at an earlier day knows nothing of what came after
                found[o.patient].append(local)
        if audited:
            record_event(session, AuditAction.REGISTRY_READ, actor, "Registry", subject=patient or "",
                         detail={"entries": len(rows)})
    result = [_status(row, found[row.patient], today) for row in rows]
    return sorted(result, key=lambda s: (-s.overdue_days, s.controlled is not False, s.due, s.entry.patient))


def home_bp_check(engine: Engine, session: Session, patient: str, added: Sequence[ObservationRow], now: dt.datetime,
                  actor: Actor) -> tuple[Signal, str] | None:  # fmt: skip
    """The alert new home BP readings of a hypertension-registry patient ask for, and the result it rests on.

    The result is the week's home readings, released and audited. ``None`` when the patient is not enrolled or
    nothing is wrong.
    """
    new = [r for r in added if r.patient == patient and r.setting != CLINIC and r.field in FIELDS[HYPERTENSION]]
    sites = (acting_site(actor, engine.settings.site),)  # the registry and the readings of the site that sent them
    if not new or not registry.entries(session, sites=sites, condition=HYPERTENSION.value, patient=patient):
        return None
    zone = zoneinfo.ZoneInfo(engine.settings.timezone)
    rows = observations.series(session, patient, now - HOME_WINDOW - dt.timedelta(days=1), FIELDS[HYPERTENSION],
                               sites=sites)  # fmt: skip
    week = _readings(HYPERTENSION, [_local(r, zone) for r in rows if r.setting != CLINIC])
    home = home_bp(week, now.astimezone(zone).date())
    pairs = _readings(HYPERTENSION, [_local(r, zone) for r in new])
    highest = (max(p[1] for p in pairs), max(p[2] for p in pairs)) if pairs else None
    signal = home_bp_signal(home, highest)
    if signal is None:
        return None
    payload = {"measure": "home_bp", "mean": list(home.mean), "days": home.days, "highest_new": highest,
               "target": list(HOME_BP_TARGET), "above_target": home.above_target, "rules": list(signal.rules)}
    result_id = release_result(session, kind="follow_up", subject=patient, method=HOME_BP_METHOD,
                               input_sha256=hash_inputs({"readings": json.dumps(week, default=str)}),
                               payload=payload, actor=actor)  # fmt: skip
    return signal, result_id


def _local(row: ObservationRow, zone: zoneinfo.ZoneInfo) -> Local:
    return Local(row.field, row.value, row.setting, row.source, row.effective.astimezone(zone))
