"""CDS Hooks 2.0: request/response shapes, the prefetch templates, and risk results as cards.

Cards follow the spec: ``summary`` under 140 characters, ``indicator`` info | warning | critical, ``source`` with a
label naming the equation or model and its version, optional ``links``. Prefetched resources (a Patient and
search Bundles of Observations and Conditions) are merged into one collection Bundle for
:func:`cds.interop.fhir_inputs.parse_bundle`.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cds.interop import clinical_codes, findrisc_questionnaire
from cds.interop.card_language import SEPARATOR, Language, band_name, field_names, phrase, topic_name
from cds.models.risk.base import RiskBand, display_unit
from cds.results.risk import NotScored, PanelEntry, RiskResult, RiskStatus

# Every LOINC code the input mapping reads, plus the blood-pressure panel that carries SBP/DBP as components.
OBSERVATION_CODES = (*clinical_codes.OBSERVATION_CODES, clinical_codes.SMOKING_STATUS, clinical_codes.BP_PANEL)
PREFETCH = {
    "patient": "Patient/{{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&code="
    + ",".join(f"http://loinc.org|{c}" for c in OBSERVATION_CODES)
    + "&_sort=-date&_count=200",
    "conditions": "Condition?patient={{context.patientId}}",  # all: a past MI (resolved) is still ASCVD
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    # optional: without them (and with no FHIR server to fetch them from) the cards are computed without
    "procedures": "Procedure?patient={{context.patientId}}&status=completed",
    "questionnaires": "QuestionnaireResponse?subject={{context.patientId}}&questionnaire="
    + findrisc_questionnaire.CANONICAL,
}
OPTIONAL_PREFETCH = ("procedures", "questionnaires")
INDICATOR: dict[RiskBand, Literal["info", "warning", "critical"]] = {
    RiskBand.LOW: "info", RiskBand.BORDERLINE: "info", RiskBand.SLIGHTLY_ELEVATED: "info",
    RiskBand.INTERMEDIATE: "warning", RiskBand.MODERATE: "warning", RiskBand.HIGH: "critical",
    RiskBand.VERY_HIGH: "critical",
}  # fmt: skip


class FhirAuthorization(BaseModel):
    """The access token the CDS Client hands over for fetching from its FHIR server."""

    model_config = ConfigDict(extra="allow")

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - OAuth2 token type, not a secret
    expires_in: int
    scope: str
    subject: str


class HookRequest(BaseModel):
    """A CDS Hooks call (the fields this service uses; others are accepted and ignored)."""

    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: str = Field(min_length=1)  # noqa: N815 - the spec's name
    fhirServer: str | None = None  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None


class Source(BaseModel):
    """Where a card's information comes from."""

    label: str
    url: str | None = None


class Link(BaseModel):
    """A link shown on a card."""

    label: str
    url: str
    type: Literal["absolute", "smart"] = "absolute"


class Card(BaseModel):
    """One CDS Hooks card."""

    uuid: str
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    links: list[Link] | None = None


class HookResponse(BaseModel):
    """The service's answer."""

    cards: list[Card]


class FeedbackItem(BaseModel):
    """The EHR's feedback on one card (the spec's other fields, such as override reasons, are kept as sent)."""

    model_config = ConfigDict(extra="allow")

    card: str = Field(min_length=1, max_length=100)
    outcome: str = Field(pattern="^(accepted|overridden)$")
    outcomeTimestamp: str  # noqa: N815 - the spec's name


class Feedback(BaseModel):
    """The feedback request body."""

    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


def merge_prefetch(prefetch: dict[str, Any]) -> dict[str, Any]:
    """One collection Bundle from the prefetched Patient and search Bundles."""
    entries: list[dict[str, Any]] = []
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            entries += [{"resource": e["resource"]} for e in value.get("entry") or [] if "resource" in e]
        elif "resourceType" in value:
            entries.append({"resource": value})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def _percent(score: float) -> str:
    return f"{100 * score:.1f}%"


def _indicator(result: RiskResult) -> Literal["info", "warning", "critical"]:
    """The band's indicator; never ``critical`` from an equation used outside the population it was derived in."""
    indicator = INDICATOR.get(result.band, "info") if result.band else "info"
    return "warning" if indicator == "critical" and result.outside_population else indicator


def about_url(base_url: str, method: str) -> str:
    """The public page describing a risk method (source, population, inputs); it needs no token."""
    return f"{base_url}/about/risk/{method}"


def _not_scored_card(entry: PanelEntry, base_url: str, language: Language) -> Card:
    topic = topic_name(entry.topic.value, language)
    result = entry.result
    if entry.not_scored is NotScored.ESTABLISHED_ASCVD:
        detail = phrase("secondary_detail", language, evidence=entry.reason) + " " + phrase("not_diagnostic", language)
        return Card(uuid=str(uuid.uuid4()), summary=phrase("secondary", language, topic=topic), detail=detail,
                    indicator="warning", source=Source(label="cds secondary prevention",
                                                       url=about_url(base_url, "secondary_prevention")))  # fmt: skip
    if entry.not_scored is NotScored.KNOWN_DIABETES:
        summary = phrase("known_diabetes", language, topic=topic, evidence=entry.reason)
        return Card(uuid=str(uuid.uuid4()), summary=summary[:140], detail=phrase("not_diagnostic", language),
                    indicator="info", source=Source(label=f"cds {entry.method}",
                                                    url=about_url(base_url, entry.method)))  # fmt: skip
    if result is not None:  # scored as out of range
        reason = phrase("out_of_range", language, fields=field_names(result.out_of_range_fields, language))
        detail = "; ".join(result.warnings)
    else:
        if entry.not_scored is NotScored.IMPOSSIBLE_VALUE and language is not Language.EN:
            reason = phrase("impossible", language, detail=entry.reason)
        elif language is Language.EN and entry.reason:
            reason = entry.reason  # names why an input the record holds could not be used
        else:
            reason = phrase("missing", language, fields=field_names(entry.missing, language))
        detail = phrase("needs", language, method=entry.method, reason=reason)
        plain = f"missing {', '.join(entry.missing)}"
        if language is Language.ZH and entry.reason and entry.reason != plain:
            detail += f" ({entry.reason})"  # why an input the record holds was not used, as the record says it
    detail += " " + phrase("not_diagnostic", language)
    summary = phrase("not_calculated", language, topic=topic, reason=reason)
    return Card(uuid=str(uuid.uuid4()), summary=summary[:140], detail=detail, indicator="info",
                source=Source(label=f"cds {entry.method}", url=about_url(base_url, entry.method)))


def card_for(entry: PanelEntry, base_url: str, language: Language = Language.EN) -> Card:
    """The card of one panel entry, in ``language``: the score and band, or why there is none."""
    result = entry.result
    if result is None or result.status is RiskStatus.OUT_OF_RANGE:
        return _not_scored_card(entry, base_url, language)
    topic = topic_name(entry.topic.value, language)
    method = result.method
    unit = display_unit(result.score_unit)
    value = _percent(result.score) if result.score_unit.startswith("probability") and result.score is not None else (
        f"{result.score:.3g} {unit}" if result.score is not None else "n/a"
    )  # fmt: skip
    qualifiers = [q for q in (band_name(result.band, language) if result.band else "", result.category or "") if q]
    colon = "：" if language is Language.ZH else ": "
    summary = f"{topic}{colon}{value}" + (f" ({', '.join(qualifiers)})" if qualifiers else "")
    top = sorted((c for c in result.contributions if c.contribution > 0), key=lambda c: -c.contribution)[:3]
    detail = f"**{method.title}** ({method.source}). " + phrase("outcome", language, outcome=entry.outcome) + "\n\n"
    if top:
        items = SEPARATOR[language].join(f"{field_names([c.field], language)} ({c.contribution:+.3g})" for c in top)
        detail += phrase("largest", language, items=items) + "\n\n"
    detail += phrase("population", language, population=result.population) + " " + phrase("not_diagnostic", language)
    if result.warnings:  # the equation's caveats, and what reading the record left out
        detail += "\n\n" + phrase("caveats", language, items="; ".join(result.warnings))
    return Card(
        uuid=str(uuid.uuid4()),
        summary=summary[:140],
        detail=detail,
        indicator=_indicator(result),
        source=Source(label=f"cds {method.name} {method.version}", url=about_url(base_url, method.name)),
        links=[Link(label=phrase("about", language, method=method.name), url=about_url(base_url, method.name))],
    )
