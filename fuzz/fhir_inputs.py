"""Fuzz the FHIR input mapper: Bundles as EHRs send them to the risk routes and CDS Hooks prefetch.

Each input is parsed as JSON (what is not JSON, or not an object, the API refuses before the mapper sees it) and
handed to :func:`~cds.interop.fhir_inputs.parse_bundle`, once as a plain Bundle and once as a complete-lists
prefetch. A finding is any exception other than an :class:`~cds.errors.InvalidInputError` (``invalid_fhir``,
``unknown_resource_type``, ``unit_not_convertible`` and the mapper's other reasons), or a hang. Seeds are the
repository's synthetic samples and variants of them; ``fhir.dict`` gives libFuzzer FHIR's keywords.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

INSTRUMENT = ("cds", "fhir", "fhir_core")
AS_OF = dt.date(2026, 12, 1)
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def prepare() -> None:
    """Import the mapper (instrumented, when atheris calls this) and the FHIR models it validates with."""
    from fhir.resources.R4B.bundle import Bundle  # noqa: F401

    import cds.interop.fhir_inputs
    import cds.interop.units  # noqa: F401


def one_input(data: bytes) -> None:
    """Map ``data`` (a JSON Bundle) to risk inputs."""
    from cds.errors import InvalidInputError
    from cds.interop.fhir_inputs import parse_bundle

    try:
        bundle = json.loads(data)
    except (ValueError, RecursionError):
        return  # the API answers 422 before the mapper is reached
    if not isinstance(bundle, dict):
        return
    for complete in (False, True):
        with contextlib.suppress(InvalidInputError):
            parse_bundle(bundle, as_of=AS_OF, complete_lists=complete)


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def seeds() -> Iterator[tuple[str, bytes]]:
    """The repository's synthetic Bundles and variants of them that real records bring.

    The CDS Hooks prefetch as one Bundle; partial dates, SI units and Chinese text; a second patient.
    """
    base = json.loads((SAMPLES / "fhir-bundle-risk.json").read_text())
    yield "bundle.json", json.dumps(base).encode()
    prefetch = json.loads((SAMPLES / "cds-hooks-patient-view.json").read_text())["prefetch"]
    resources = [prefetch["patient"]] + [e["resource"] for key in ("observations", "conditions", "medications")
                                         for e in (prefetch.get(key) or {}).get("entry", [])]  # fmt: skip
    yield "prefetch.json", json.dumps(_bundle(resources)).encode()
    variant = copy.deepcopy(base)
    for entry in variant["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "Patient":
            resource["birthDate"] = "1961-04"
            resource["name"] = [{"text": "张伟"}]
        elif "effectiveDateTime" in resource:
            resource["effectiveDateTime"] = resource["effectiveDateTime"][:7]
        if "valueQuantity" in resource and resource["valueQuantity"].get("unit") == "mg/dL":
            resource["valueQuantity"] = {"value": 5.2, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                         "code": "mmol/L"}  # fmt: skip
    yield "partial-dates-si-units.json", json.dumps(variant, ensure_ascii=False).encode()
    variant["entry"].append({"resource": {"resourceType": "Patient", "id": "other", "gender": "female",
                                          "birthDate": "1950"}})  # fmt: skip
    yield "two-patients.json", json.dumps(variant, ensure_ascii=False).encode()


if __name__ == "__main__":
    from fuzz.harness import main

    main("fuzz.fhir_inputs", INSTRUMENT)
