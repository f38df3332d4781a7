"""A report a specialist signed, and member sites with their key rings and trust stores."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cds.consortium.site_keys import SiteKeyRing, TrustStore, public_key_set
from cds.interop.fhir_report import diagnostic_report
from cds.models.backend import ModelRef
from cds.models.spec import BackendKind
from cds.results.classification import ClassificationResult, Finding

RESULT = ClassificationResult(
    model=ModelRef(name="chest-xray", version="1.2.0", sha256="ab" * 32, backend=BackendKind.ONNXRUNTIME),
    input_sha256="cd" * 32,
    findings=(Finding(label="Effusion", probability=0.91, threshold=0.4, positive=True),
              Finding(label="Nodule", probability=0.12, threshold=0.3, positive=False)),
    intended_use="tests", warnings=(), inference_ms=10.0,
)  # fmt: skip


def signed_report(*, patient: str = "MRN-0042", status: str = "final") -> dict[str, Any]:
    """An AI pre-read a hub radiologist signed: final, with the reader as results interpreter (Chinese name kept)."""
    report = diagnostic_report(RESULT, study_uid="1.2.840.99.1", title="胸部X线 chest radiograph",
                               patient_reference=None, validate=False)  # fmt: skip
    report["subject"] = {"identifier": {"system": "urn:oid:2.16.840.1.99.1", "value": patient}}
    for resource in report["contained"]:
        if resource["resourceType"] == "Observation":
            resource["subject"] = report["subject"]
    report["status"] = status
    report["contained"].append({"resourceType": "Practitioner", "id": "reader", "name": [{"text": "王立新"}],
                                "identifier": [{"system": "urn:cds:site:hub:staff", "value": "R-117"}]})
    report["resultsInterpreter"] = [{"reference": "#reader", "display": "王立新"}]
    report["conclusion"] = "右侧少量胸腔积液。 Small right pleural effusion."
    return report


@dataclass
class Member:
    """A member site: its key ring and the folder of other members' key sets it trusts."""

    site: str
    ring: SiteKeyRing
    trusted_dir: Path

    def trust(self, other: Member) -> None:
        """Put ``other``'s published key set in this member's trust folder."""
        self.trusted_dir.mkdir(parents=True, exist_ok=True)
        (self.trusted_dir / f"{other.site}.jwks.json").write_text(json.dumps(public_key_set(other.ring)))

    def trust_store(self) -> TrustStore:
        own = public_key_set(self.ring) if self.ring.entries() else None
        return TrustStore.load(self.trusted_dir, own=own)


@pytest.fixture
def member(tmp_path: Path) -> Any:
    def make(site: str) -> Member:
        ring = SiteKeyRing(tmp_path / site / "keys", site)
        ring.rotate()
        return Member(site=site, ring=ring, trusted_dir=tmp_path / site / "trusted")

    return make
