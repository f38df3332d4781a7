"""FINDRISC answers from a FHIR QuestionnaireResponse to cds's FINDRISC Questionnaire.

The Questionnaire (``samples/findrisc-questionnaire.json``, canonical :data:`CANONICAL`) asks the questions of the
FINDRISC form that no measurement answers; age and sex come from the Patient, BMI and waist from Observations. Each
item's ``linkId`` is the input field it answers. Yes/no items take ``valueBoolean`` or a LOINC answer code (LA33-6
yes, LA32-8 no); family history takes a coding from :data:`FAMILY_SYSTEM` (``none``, ``second_degree``,
``first_degree``). Only a response whose status is ``completed`` or ``amended`` is read; the newest one wins. An
answer that cannot be read is named in a warning and left missing, so the FINDRISC card lists it. ``bp_treated``
("ever taken antihypertensive medication regularly") is taken from the answer only when no medication list says
whether the patient is treated.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cds.interop.record_dates import instant
from cds.models.risk.fields import FAMILY_HISTORY

CANONICAL = "urn:cds:questionnaire:findrisc"
FAMILY_SYSTEM = "urn:cds:codesystem:findrisc-family-history"
LOINC_ANSWERS = {"LA33-6": True, "LA32-8": False}
YES_NO_ITEMS = ("physically_active", "daily_vegetables", "bp_treated", "high_glucose_history")
READ_STATUSES = ("completed", "amended")


def is_findrisc(response: Any) -> bool:
    """Whether ``response`` answers cds's FINDRISC Questionnaire (any version) and is complete."""
    questionnaire = str(response.questionnaire or "").split("|")[0]
    return questionnaire == CANONICAL and response.status in READ_STATUSES


def authored(response: Any) -> dt.datetime:
    """When the response was authored (timezone-aware), the oldest possible time when it does not say."""
    return instant(response.authored) or dt.datetime.min.replace(tzinfo=dt.UTC)


def _answer(item: Any) -> Any:
    answers = item.answer or []
    return answers[0] if len(answers) == 1 else None


def _yes_no(answer: Any) -> bool | None:
    if answer.valueBoolean is not None:
        return bool(answer.valueBoolean)
    coding = answer.valueCoding
    if coding is not None and coding.system == "http://loinc.org":
        return LOINC_ANSWERS.get(str(coding.code))
    return None


def answers(response: Any) -> tuple[dict[str, object], list[str]]:
    """The FINDRISC fields the response answers, and a warning per item that could not be read."""
    reference = f"QuestionnaireResponse/{response.id}"
    found: dict[str, object] = {}
    unreadable: list[str] = []
    for item in response.item or []:
        name = str(item.linkId)
        if name not in (*YES_NO_ITEMS, "family_history"):
            continue
        answer = _answer(item)
        value: object = None
        if answer is not None and name in YES_NO_ITEMS:
            value = _yes_no(answer)
        elif answer is not None and answer.valueCoding is not None and answer.valueCoding.system == FAMILY_SYSTEM:
            value = answer.valueCoding.code if answer.valueCoding.code in FAMILY_HISTORY else None
        if value is None:
            unreadable.append(f"{reference}: the answer to {name} could not be read (one answer, coded as the "
                              "Questionnaire says, is expected)")
        else:
            found[name] = value
    return found, unreadable
