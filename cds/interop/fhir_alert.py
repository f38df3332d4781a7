"""An alert as a FHIR R4 ``Communication`` (category ``alert``), the payload of a subscriber's REST hook."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cds.errors import MissingDependencyError

CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
ALERT_SYSTEM = "urn:cds:alert"
PRIORITY = {"routine": "routine", "urgent": "urgent", "emergency": "stat"}


def alert_communication(*, alert_id: str, patient: str, level: str, rules: tuple[str, ...], text: str,
                        result_id: str, event: str, sent: dt.datetime) -> dict[str, Any]:  # fmt: skip
    """The Communication for one alert event (``opened`` or ``escalated``), validated with fhir.resources."""
    try:
        from fhir.resources.R4B.communication import Communication
    except ImportError as exc:
        raise MissingDependencyError("FHIR output needs fhir.resources: pip install fhir.resources") from exc
    resource = {
        "resourceType": "Communication",
        "identifier": [{"system": ALERT_SYSTEM, "value": alert_id}],
        "status": "completed",
        "category": [{"coding": [{"system": CATEGORY, "code": "alert"}], "text": f"NEWS2 alert {event}"}],
        "priority": PRIORITY.get(level, "urgent"),
        "subject": {"reference": patient},
        "topic": {"text": ", ".join(rules)},
        "about": [{"reference": f"RiskAssessment/{result_id}"}],
        "sent": sent.isoformat(),
        "payload": [{"contentString": text}],
    }
    validated: dict[str, Any] = Communication.model_validate(resource).model_dump(mode="json", exclude_none=True)
    return validated
