"""A member imports another's signed result once, after verifying it; refusals say why and are audited."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cds.consortium.bundle_signature import sign_bundle
from cds.consortium.shared_result import shareable_bundle
from cds.errors import InvalidInputError
from cds.services.consortium import import_shared, share_report, shared_results
from cds.settings import Settings
from cds.store.audit import Actor
from cds.store.db import Database
from cds.store.tables import AuditEventRow
from tests.consortium.conftest import signed_report

ACTOR = Actor("dr-li", "radiologist")


def _site(tmp_path: Path, site: str, url: str | None = None) -> tuple[Settings, Database]:
    settings = Settings(data_dir=tmp_path / site, site=site, database_url=url,
                        consortium_keys_dir=tmp_path / site / "trusted")  # fmt: skip
    database = Database(settings.resolved_database_url)
    database.migrate()
    return settings, database


def _publish(source: Settings, target: Settings) -> None:
    from cds.consortium.site_keys import public_key_set
    from cds.services.consortium import key_ring

    assert target.consortium_keys_dir is not None
    target.consortium_keys_dir.mkdir(parents=True, exist_ok=True)
    (target.consortium_keys_dir / f"{source.site}.jwks.json").write_text(json.dumps(public_key_set(key_ring(source))))


def _actions(database: Database) -> list[tuple[str, str, str]]:
    with database.session() as session:
        rows = session.scalars(select(AuditEventRow).order_by(AuditEventRow.seq))
        return [(r.action, r.outcome, r.detail) for r in rows]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sites(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    hub, hub_db = _site(tmp_path, "hub")
    clinic, clinic_db = _site(tmp_path, "clinic-a", url)
    from cds.services.consortium import key_ring

    key_ring(hub).rotate()
    _publish(hub, clinic)
    yield hub, hub_db, clinic, clinic_db
    hub_db.close()
    clinic_db.close()


def test_a_shared_result_is_imported_once_and_listed_by_patient(sites: Any) -> None:
    hub, hub_db, clinic, clinic_db = sites
    bundle = share_report(hub_db, hub, signed_report(), actor=Actor("cli:consortium", "admin"))
    assert [a[0] for a in _actions(hub_db)] == ["consortium.share"]
    received = json.loads(json.dumps(bundle, ensure_ascii=False))  # as it arrives over the wire
    first = import_shared(clinic_db, clinic, received, actor=ACTOR)
    second = import_shared(clinic_db, clinic, received, actor=ACTOR)
    assert first.created and not second.created and first.row.id == second.row.id
    assert (first.row.origin_site, first.row.report_status) == ("hub", "final")
    assert first.row.subject == "urn:oid:2.16.840.1.99.1|MRN-0042" and first.row.title == "胸部X线 chest radiograph"
    assert json.loads(first.row.bundle) == bundle
    mine = ["clinic-a"]
    assert [r.id for r in shared_results(clinic_db, actor=ACTOR, sites=mine, subject=first.row.subject)] == [
        first.row.id]  # fmt: skip
    assert shared_results(clinic_db, actor=ACTOR, sites=mine, subject="urn:oid:2.16.840.1.99.1|MRN-9") == []
    imports = [a for a in _actions(clinic_db) if a[0] == "consortium.import"]
    assert [a[1] for a in imports] == ["success", "success"] and json.loads(imports[1][2])["duplicate"] is True
    # another site of the same deployment imports the same Bundle: its own copy, listed to it alone
    theirs = import_shared(clinic_db, clinic, received, actor=Actor("dr-wu", "radiologist", site="clinic-c"))
    assert theirs.created and theirs.row.id != first.row.id and theirs.row.site == "clinic-c"
    assert [r.id for r in shared_results(clinic_db, actor=ACTOR, sites=mine)] == [first.row.id]
    assert [r.id for r in shared_results(clinic_db, actor=ACTOR, sites=["clinic-c"])] == [theirs.row.id]


def _resigned(hub: Settings, bundle: dict[str, Any]) -> dict[str, Any]:
    from cds.services.consortium import key_ring

    return sign_bundle(bundle, key_ring(hub))


def test_refusals_keep_nothing_and_are_audited_with_their_reason(sites: Any, tmp_path: Path) -> None:
    hub, _, clinic, clinic_db = sites
    good = shareable_bundle(signed_report(), site="hub")
    mixed = copy.deepcopy(good)
    mixed["entry"][2]["resource"]["subject"] = {"identifier": {"system": "urn:oid:2.16.840.1.99.1", "value": "MRN-7"}}
    two_reports = copy.deepcopy(good)
    two_reports["entry"].append(copy.deepcopy(good["entry"][0]))
    preliminary = copy.deepcopy(good)
    preliminary["entry"][0]["resource"]["status"] = "preliminary"
    stranger, _ = _site(tmp_path, "clinic-z")
    from cds.services.consortium import key_ring

    key_ring(stranger).rotate()
    cases = {
        "mixed_subjects": _resigned(hub, mixed),
        "not_a_shared_result": _resigned(hub, two_reports),
        "not_signed": _resigned(hub, preliminary),
        "unknown_signer": sign_bundle(shareable_bundle(signed_report(), site="clinic-z"), key_ring(stranger)),
        "unsigned": good,
    }
    tampered = _resigned(hub, good)
    tampered["entry"][0]["resource"]["conclusion"] = "No effusion."
    cases["signature_invalid"] = tampered
    for code, bundle in cases.items():
        with pytest.raises(InvalidInputError) as refused:
            import_shared(clinic_db, clinic, bundle, actor=ACTOR)
        assert refused.value.code == code
    assert shared_results(clinic_db, actor=ACTOR, sites=["clinic-a", ""]) == []
    refusals = [a for a in _actions(clinic_db) if a[0] == "consortium.import"]
    assert [(a[1], json.loads(a[2])["reason"]) for a in refusals] == [("refused", c) for c in cases]
