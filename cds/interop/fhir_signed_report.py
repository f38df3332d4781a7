"""A pre-read's FHIR DiagnosticReport once a specialist signed it: ``final`` (``amended`` for a later version).

The AI's report (:func:`cds.interop.fhir_report.diagnostic_report`) is the starting point and stays inside: its
Observations keep status ``preliminary`` and the model's Device as their device, so a receiver tells the AI's
findings from the reader's. Added: the reader as a contained Practitioner (identifier: their account under
``urn:cds:site:<site>:user``) who is the report's results interpreter; the reader's own Observations (status
``final``, the reader as performer, ``derivedFrom`` the AI's Observation): per radiograph finding present or absent
(:func:`finding_readings`), or an ECG's reviewed rhythm, measurements and flags; the reader's impression as the
conclusion; ``issued`` the signing time. The report keeps the AI
report's identifier: it is the same report, now signed.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass
from typing import Any

from cds.errors import InvalidInputError, MissingDependencyError


@dataclass(frozen=True)
class Signer:
    """Who signed: their name as people read it, their account, and the site they read for."""

    name: str
    login: str
    site: str


def finding_readings(ai_report: dict[str, Any], verdicts: dict[str, str]) -> list[dict[str, Any]]:
    """A radiograph reader's Observations: per finding (by the AI Observation's ``code.text``), present or absent.

    Raises:
        InvalidInputError: ``unknown_finding`` (a verdict on a label the report has no Observation for).
    """
    ai_observations = {o["code"]["text"]: o for o in ai_report.get("contained", ())
                       if o.get("resourceType") == "Observation"}  # fmt: skip
    unknown = sorted(set(verdicts) - set(ai_observations))
    if unknown:
        raise InvalidInputError(f"verdicts on findings the report does not have: {', '.join(unknown)}",
                                code="unknown_finding")  # fmt: skip
    readings = []
    for label, verdict in sorted(verdicts.items()):
        ai = ai_observations[label]
        ai_positive = any(c.get("code") == "POS" for i in ai.get("interpretation", ()) for c in i.get("coding", ()))
        readings.append(reading(ai, valueBoolean=ai_positive if verdict == "accepted" else not ai_positive))
    return readings


def reading(ai: dict[str, Any], *, derived: bool = True, **value: Any) -> dict[str, Any]:
    """The reader's Observation of what AI Observation ``ai`` is about: its code, their ``value[x]``.

    It is derived from ``ai`` unless ``derived`` is off (a value the AI did not give: ``ai`` is then only a template
    of code, subject and time).
    """
    observation = {"resourceType": "Observation", "status": "final", "code": copy.deepcopy(ai["code"]),
                   "subject": copy.deepcopy(ai.get("subject")), "effectiveDateTime": ai.get("effectiveDateTime"),
                   "performer": [{"reference": "#reader"}], **value}  # fmt: skip
    if derived:
        observation["derivedFrom"] = [{"reference": f"#{ai['id']}"}]
    return observation


def signed_report(ai_report: dict[str, Any], *, signer: Signer, readings: list[dict[str, Any]], impression: str,
                  signed_at: dt.datetime, version: int = 1) -> dict[str, Any]:  # fmt: skip
    """The signed DiagnosticReport (JSON-ready), validated with fhir.resources (R4B).

    Args:
        ai_report: The pre-read's preliminary report.
        signer: The specialist.
        readings: Their Observations (:func:`reading`), in the order the report lists them.
        impression: The reader's conclusion.
        signed_at: When they signed.
        version: 1 for the first signature (``final``), more for an amendment (``amended``).
    """
    report = copy.deepcopy(ai_report)
    contained = report.setdefault("contained", [])
    contained.append({"resourceType": "Practitioner", "id": "reader", "name": [{"text": signer.name}],
                      "identifier": [{"system": f"urn:cds:site:{signer.site}:user", "value": signer.login}]})
    named = [{**observation, "id": f"reader-{index}"} for index, observation in enumerate(readings)]
    contained.extend(named)
    report["status"] = "final" if version == 1 else "amended"
    report["resultsInterpreter"] = [{"reference": "#reader", "display": signer.name}]
    report["result"] = [{"reference": f"#{o['id']}"} for o in named] + report.get("result", [])
    report["conclusion"] = impression
    report["issued"] = signed_at.astimezone(dt.UTC).isoformat(timespec="seconds")
    return _validated(report)


def _validated(report: dict[str, Any]) -> dict[str, Any]:
    try:
        from fhir.resources.R4B.diagnosticreport import DiagnosticReport
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    output: dict[str, Any] = DiagnosticReport.model_validate(report).model_dump(mode="json", exclude_none=True)
    return output
