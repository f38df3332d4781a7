"""A signed result as a FHIR Bundle other member sites recognise: the report, its observations, who stands behind it.

Only a report a specialist signed is shared (status ``final``, ``amended`` or ``corrected``, with a results
interpreter): an AI pre-read awaiting a reader is not a result another site should recognise. The Bundle
(``collection``) holds the DiagnosticReport with its contained resources lifted to entries of their own (each
Observation, the AI model's Device, the signer's Practitioner), the site's Organization, and a Provenance whose
agents are the signer (``verifier``, on behalf of the site), the AI model (``author`` of the preliminary findings;
its Observations keep naming it as their device, so the AI's findings stay told apart from the reader's) and the
site (``custodian``). Entries are named ``urn:uuid:`` from the report's identifier, so the same report gives the
same names at every export. :func:`~cds.consortium.bundle_signature.sign_bundle` then signs it.
"""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from typing import Any

from cds.consortium.bundle_signature import SITE_SYSTEM
from cds.errors import InvalidInputError, MissingDependencyError

SIGNED_STATUSES = ("final", "amended", "corrected")
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
SHARE_NAMESPACE = uuid.UUID("0b7f5a55-2f0e-4a7e-9a55-6d0f3c1e8b21")


def _participant(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": PARTICIPANT_TYPE, "code": code, "display": display}]}


def _retarget(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every local reference ``#id`` replaced by the entry it became."""
    if isinstance(value, dict):
        return {key: (names.get(item, item) if key == "reference" and isinstance(item, str) else
                      _retarget(item, names)) for key, item in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [_retarget(item, names) for item in value]
    return value


def _report_identifier(report: dict[str, Any]) -> str:
    for identifier in report.get("identifier") or ():
        if isinstance(identifier, dict) and identifier.get("value"):
            return f"{identifier.get('system', '')}|{identifier['value']}"
    raise InvalidInputError("the report has no identifier to share it by", code="report_without_identifier")


def shareable_bundle(report: dict[str, Any], *, site: str, site_name: str | None = None,
                     now: dt.datetime | None = None, validate: bool = True) -> dict[str, Any]:  # fmt: skip
    """The signed ``report`` (a DiagnosticReport as JSON) as a Bundle for other members, not yet signed by the site.

    Raises:
        InvalidInputError: ``not_a_report``; ``not_signed`` (a preliminary report, or one without a results
            interpreter); ``report_without_identifier``.
    """
    if report.get("resourceType") != "DiagnosticReport":
        raise InvalidInputError(f"a {report.get('resourceType')!r} is not a DiagnosticReport", code="not_a_report")
    if report.get("status") not in SIGNED_STATUSES or not report.get("resultsInterpreter"):
        raise InvalidInputError(f"a {report.get('status')!r} report without a signing reader is not shared; only "
                                "a report a specialist signed is", code="not_signed")  # fmt: skip
    base = _report_identifier(report)

    def url(local: str) -> str:
        return f"urn:uuid:{uuid.uuid5(SHARE_NAMESPACE, f'{base}#{local}')}"

    body = copy.deepcopy(report)
    contained = body.pop("contained", [])
    names = {f"#{resource['id']}": url(resource["id"]) for resource in contained if resource.get("id")}
    organization_url, report_url = url("organization"), url("report")
    lifted = [(names.get(f"#{r.get('id')}", url(str(index))), _retarget({k: v for k, v in r.items() if k != "id"},
              names)) for index, r in enumerate(contained)]  # fmt: skip
    body = _retarget(body, names)
    body.setdefault("performer", [{"reference": organization_url, "display": site_name or site}])
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
    devices = [u for u, r in lifted if r.get("resourceType") == "Device"]
    observations = [u for u, r in lifted if r.get("resourceType") == "Observation"]
    agents = [{"type": _participant("verifier", "Verifier"), "who": interpreter,
               "onBehalfOf": {"reference": organization_url}} for interpreter in body["resultsInterpreter"]]
    agents += [{"type": _participant("author", "Author"), "who": {"reference": device}} for device in devices]
    agents.append({"type": _participant("custodian", "Custodian"), "who": {"reference": organization_url}})
    provenance = {"resourceType": "Provenance", "target": [{"reference": report_url}] +
                  [{"reference": o} for o in observations], "recorded": when, "agent": agents}  # fmt: skip
    organization = {"resourceType": "Organization", "identifier": [{"system": SITE_SYSTEM, "value": site}],
                    "name": site_name or site}  # fmt: skip
    entries = [(report_url, body), *lifted, (organization_url, organization), (url("provenance"), provenance)]
    bundle = {"resourceType": "Bundle", "identifier": {"system": "urn:ietf:rfc:3986", "value": url("bundle")},
              "type": "collection", "timestamp": when,
              "entry": [{"fullUrl": full_url, "resource": resource} for full_url, resource in entries]}  # fmt: skip
    if validate:
        validate_bundle(bundle)
    return bundle


def validate_bundle(bundle: dict[str, Any]) -> None:
    """Validate with fhir.resources (R4B), each entry's resource as its own type.

    Raises:
        InvalidInputError: ``invalid_fhir``.
    """
    try:
        from fhir.resources.R4B import get_fhir_model_class
    except ImportError as exc:
        raise MissingDependencyError("sharing needs fhir.resources: pip install fhir.resources") from exc
    from pydantic import ValidationError

    try:
        get_fhir_model_class("Bundle").model_validate(bundle)
    except (ValidationError, ValueError) as exc:
        raise InvalidInputError(f"the Bundle is not valid FHIR R4: {str(exc)[:300]}", code="invalid_fhir") from None
