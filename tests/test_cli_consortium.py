"""``cds consortium``: a hub makes and publishes its key, signs a report a specialist signed, and a clinic holding
the hub's key set verifies it; a changed file or a rotated-then-revoked key fails with exit code 2 and the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cds.cli.main import app
from tests.consortium.conftest import signed_report


def _as(monkeypatch: pytest.MonkeyPatch, root: Path, site: str) -> None:
    monkeypatch.setenv("CDS_SITE", site)
    monkeypatch.setenv("CDS_DATA_DIR", str(root / site))
    monkeypatch.setenv("CDS_CONSORTIUM_KEYS_DIR", str(root / site / "trusted"))
    monkeypatch.delenv("CDS_DATABASE_URL", raising=False)
    monkeypatch.delenv("CDS_SITE_KEYS_DIR", raising=False)


def test_a_hub_signs_and_a_clinic_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    report = tmp_path / "report.json"
    report.write_text(json.dumps(signed_report(), ensure_ascii=False), encoding="utf-8")
    _as(monkeypatch, tmp_path, "hub")
    unkeyed = runner.invoke(app, ["consortium", "share", str(report)])
    assert unkeyed.exit_code == 1 and "site_keys_missing" in unkeyed.output
    made = runner.invoke(app, ["consortium", "keys", "rotate"])
    assert made.exit_code == 0, made.output
    (tmp_path / "clinic-a" / "trusted").mkdir(parents=True)
    key_set = tmp_path / "clinic-a" / "trusted" / "hub.jwks.json"
    assert runner.invoke(app, ["consortium", "keys", "export", "--output", str(key_set)]).exit_code == 0
    shared = tmp_path / "shared.json"
    signed = runner.invoke(app, ["consortium", "share", str(report), "--output", str(shared)])
    assert signed.exit_code == 0, signed.output
    preliminary = tmp_path / "preliminary.json"
    preliminary.write_text(json.dumps(signed_report(status="preliminary")))
    refused = runner.invoke(app, ["consortium", "share", str(preliminary)])
    assert refused.exit_code == 2 and "not_signed" in refused.output

    _as(monkeypatch, tmp_path, "clinic-a")
    verified = runner.invoke(app, ["consortium", "verify", str(shared)])
    assert verified.exit_code == 0 and "signed by site hub" in verified.output, verified.output
    changed = tmp_path / "changed.json"
    changed.write_text(shared.read_text(encoding="utf-8").replace("右侧少量胸腔积液", "未见胸腔积液"), encoding="utf-8")
    tampered = runner.invoke(app, ["consortium", "verify", str(changed)])
    assert tampered.exit_code == 2 and "signature_invalid" in tampered.output

    _as(monkeypatch, tmp_path, "hub")
    kid = runner.invoke(app, ["consortium", "keys", "list"]).output.split()[0]
    assert runner.invoke(app, ["consortium", "keys", "rotate"]).exit_code == 0
    assert runner.invoke(app, ["consortium", "keys", "revoke", kid]).exit_code == 0
    assert runner.invoke(app, ["consortium", "keys", "export", "--output", str(key_set)]).exit_code == 0
    _as(monkeypatch, tmp_path, "clinic-a")
    revoked = runner.invoke(app, ["consortium", "verify", str(shared)])
    assert revoked.exit_code == 2 and "unknown_signer" in revoked.output
