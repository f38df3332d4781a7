"""A sample patient for the clinician's risk panel: the repository's FHIR samples merged into one Bundle.

``GET /v1/risk/panel/sample`` answers ``samples/fhir-bundle-risk.json`` (Patient and Observations) with the
resources of ``samples/cds-hooks-patient-view.json``'s prefetch added (its active MedicationRequest, its Conditions),
each resource once. Synthetic data: no real patient. Where the service runs without the repository's ``samples``
folder the answer is 404 ``sample_not_found``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from cds.errors import ModelNotFoundError
from cds.serving.api.auth import Principal, Role
from cds.serving.api.deps import require
from cds.settings import REPO_ROOT

router = APIRouter(prefix="/v1/risk", tags=["risk"])
SAMPLES = REPO_ROOT / "samples"
BUNDLE, HOOK_REQUEST = "fhir-bundle-risk.json", "cds-hooks-patient-view.json"


Clinical = Annotated[Principal, Depends(require(Role.CLINICIAN, Role.ADMIN))]


def _resources(prefetch: dict[str, Any]) -> list[dict[str, Any]]:
    """The resources of a CDS Hooks prefetch: single resources and the entries of searchset Bundles."""
    found = []
    for value in prefetch.values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            found += [entry["resource"] for entry in value.get("entry", []) if isinstance(entry.get("resource"), dict)]
        elif "resourceType" in value:
            found.append(value)
    return found


def sample_bundle(folder: Path = SAMPLES) -> dict[str, Any]:
    """The merged sample Bundle (``collection``), each ``resourceType/id`` once, the Bundle's own copy first.

    Raises:
        ModelNotFoundError: ``sample_not_found`` when the sample files are not there.
    """
    try:
        bundle = json.loads((folder / BUNDLE).read_text(encoding="utf-8"))
        hook = json.loads((folder / HOOK_REQUEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"the sample patient is not available: {exc}", code="sample_not_found") from exc
    resources = [entry["resource"] for entry in bundle.get("entry", [])] + _resources(hook.get("prefetch", {}))
    seen: set[tuple[str, str]] = set()
    entries = []
    for resource in resources:
        key = (str(resource.get("resourceType")), str(resource.get("id")))
        if key not in seen:
            seen.add(key)
            entries.append({"resource": resource})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


@router.get("/panel/sample")
def panel_sample(_principal: Clinical) -> dict[str, Any]:
    """A synthetic patient's FHIR Bundle (Patient, Observations, medication) to try the panel with."""
    return sample_bundle()
