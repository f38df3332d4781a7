"""A model's intended use in the reader's language: ``/v1/models/{name}`` says it in the language the request's
``Accept-Language`` prefers (Chinese where the spec gives ``intended_use_zh``), else the site's; the spec itself is
served unchanged, both languages in it."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from cds.serving.api.app import create_app
from cds.serving.api.auth import Role
from cds.settings import Settings
from tests.serving.api.conftest import bearer


@pytest.mark.parametrize(("accept", "chinese"), [("zh-CN", True), ("zh", True), ("fr-FR, zh-Hans;q=0.8", True),
                                                 ("en-US", False), ("zh;q=0.4, en;q=0.9", False), ("", False)])
def test_the_intended_use_comes_in_the_requests_language(client: TestClient, accept: str, chinese: bool) -> None:
    headers = bearer(client, Role.CARDIOLOGIST) | ({"Accept-Language": accept} if accept else {})
    answer = client.get("/v1/models/ecg-rhythm", params={"version": "1.0.1"}, headers=headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    spec = body["spec"]
    assert spec["intended_use"].startswith("Demonstration") and "不是医疗器械" in spec["intended_use_zh"]
    assert body["intended_use"] == (spec["intended_use_zh"] if chinese else spec["intended_use"])


def test_a_chinese_site_answers_in_chinese_when_the_request_names_no_language(tmp_path: Path) -> None:
    settings = Settings(dev_mode=True, data_dir=tmp_path / "data", language="zh-CN")
    with TestClient(create_app(settings)) as client:
        headers = bearer(client, Role.PATHOLOGIST)
        body = client.get("/v1/models/pathology-demo", headers=headers).json()
        assert body["intended_use"] == body["spec"]["intended_use_zh"]
        english = client.get("/v1/models/pathology-demo", headers=headers | {"Accept-Language": "en"}).json()
        assert english["intended_use"] == english["spec"]["intended_use"]
