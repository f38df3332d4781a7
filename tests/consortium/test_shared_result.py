"""A signed report becomes a Bundle of the report, its observations and who stands behind it; a pre-read does not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from cds.consortium.shared_result import shareable_bundle
from cds.errors import InvalidInputError
from tests.consortium.conftest import signed_report


def _by_type(bundle: dict[str, Any]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for entry in bundle["entry"]:
        found.setdefault(entry["resource"]["resourceType"], []).append((entry["fullUrl"], entry["resource"]))
    return found


def test_the_bundle_names_the_signer_the_model_and_the_site_and_keeps_the_ais_findings_apart() -> None:
    bundle = shareable_bundle(signed_report(), site="hub", site_name="市第一人民医院")
    Bundle.model_validate(bundle)
    found = _by_type(bundle)
    assert sorted(found) == ["Device", "DiagnosticReport", "Observation", "Organization", "Practitioner", "Provenance"]
    (report_url, report), = found["DiagnosticReport"]
    (device_url, device), = found["Device"]
    (reader_url, reader), = found["Practitioner"]
    (site_url, site), = found["Organization"]
    (_, provenance), = found["Provenance"]
    assert "#" not in json.dumps(bundle).replace('"#', "")  # no local reference is left
    assert report["resultsInterpreter"][0]["reference"] == reader_url and reader["name"][0]["text"] == "王立新"
    assert report["performer"] == [{"reference": site_url, "display": "市第一人民医院"}]
    assert site["identifier"] == [{"system": "urn:cds:site", "value": "hub"}]
    observation_urls = [u for u, _ in found["Observation"]]
    assert [r["reference"] for r in report["result"]] == observation_urls
    assert all(o["device"] == {"reference": device_url} and o["status"] == "preliminary" for _, o in
               found["Observation"])  # the AI's findings, told apart from the reader's signed report  # fmt: skip
    assert device["deviceName"][0]["name"] == "chest-xray" and device["version"] == [{"value": "1.2.0"}]
    agents = {a["type"]["coding"][0]["code"]: a for a in provenance["agent"]}
    assert agents["verifier"]["who"]["reference"] == reader_url and agents["verifier"]["onBehalfOf"] == {
        "reference": site_url}
    assert agents["author"]["who"] == {"reference": device_url}
    assert agents["custodian"]["who"] == {"reference": site_url}
    assert [t["reference"] for t in provenance["target"]] == [report_url, *observation_urls]


def test_the_same_report_gets_the_same_entry_names_and_another_report_others() -> None:
    first = shareable_bundle(signed_report(), site="hub")
    again = shareable_bundle(signed_report(), site="hub")
    other = shareable_bundle(signed_report(patient="MRN-7"), site="hub")
    urls = [e["fullUrl"] for e in first["entry"]]
    assert urls == [e["fullUrl"] for e in again["entry"]] and len(set(urls)) == len(urls)
    assert first["identifier"] == again["identifier"]
    assert other["entry"][0]["resource"]["subject"]["identifier"]["value"] == "MRN-7"


@pytest.mark.parametrize(("change", "code"), [
    ({"status": "preliminary"}, "not_signed"),
    ({"resultsInterpreter": []}, "not_signed"),
    ({"resourceType": "Observation"}, "not_a_report"),
    ({"identifier": []}, "report_without_identifier"),
])  # fmt: skip
def test_what_no_specialist_signed_is_not_shared(change: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        shareable_bundle(signed_report() | change, site="hub")
    assert refused.value.code == code
