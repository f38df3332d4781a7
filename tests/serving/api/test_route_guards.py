"""Every route of the OpenAPI document, found by introspection: 401 without credentials, 403 for a role it does
not declare, both audited. A new route without a role guard fails here unless it is listed as public."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from cds.serving.api.auth import Role
from tests.serving.api.conftest import bearer

PUBLIC = {"/healthz", "/readyz", "/metrics", "/cds-services", "/v1/dev/token", "/v1/dev/hooks-token",
          "/about/risk/{method}"}  # a method's description, linked from CDS Hooks cards: no patient data
HOOK_SIGNED = {"/cds-services/{service_id}", "/cds-services/{service_id}/feedback"}  # the EHR's own JWT
SAMPLE_PARAMS = {"study": "1.2.3", "series": "1.2.3.4", "sop": "1.2.3.4.5", "uid": "1.2.3.4", "name": "result.json",
                 "job_id": "00000000-0000-0000-0000-000000000000", "result_id": "00000000-0000-0000-0000-000000000000",
                 "score": "pce", "name_": "lesion-demo", "service_id": "cds-risk"}  # fmt: skip


def _roles(route: APIRoute) -> frozenset[Role] | None:
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        roles = getattr(dependant.call, "roles", None)
        if roles is not None:
            return frozenset(roles)
        pending.extend(dependant.dependencies)
    return None


def _walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # FastAPI 0.165 wraps included routers
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)


def _routes(client: TestClient) -> list[tuple[str, str, APIRoute]]:
    found = [(method, path, route) for path, route in _walk(client.app.routes)
             for method in route.methods if method != "HEAD"]  # fmt: skip
    assert len(found) >= 30  # the walk reached the included routers
    return sorted(found, key=lambda entry: entry[:2])


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PARAMS.get(m.group(1), "lesion-demo"), path)


def test_every_route_is_public_or_guarded_by_roles(client: TestClient) -> None:
    unguarded = [(m, p) for m, p, r in _routes(client) if _roles(r) is None and p not in PUBLIC | HOOK_SIGNED]
    assert unguarded == []


def test_every_guarded_route_answers_401_and_403_and_audits_both(client: TestClient) -> None:
    checked = 0
    for method, path, route in _routes(client):
        roles = _roles(route)
        if roles is None:
            continue
        url = _url(path)
        anonymous = client.request(method, url, json={} if method == "POST" else None)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.json()["code"] == "missing_credentials"
        outsiders = [role for role in Role if role not in roles]
        if outsiders:
            wrong = client.request(method, url, json={} if method == "POST" else None,
                                   headers=bearer(client, outsiders[0]))  # fmt: skip
            assert wrong.status_code == 403 and wrong.json()["code"] == "role_required", (method, path, wrong.text)
        insider = client.request(method, url, json={} if method == "POST" else None,
                                 headers=bearer(client, sorted(roles)[0]))  # fmt: skip
        assert insider.status_code not in (401, 403), (method, path, insider.text)
        checked += 1
    events = client.get("/v1/audit/events?limit=1000", headers=bearer(client, Role.ADMIN)).json()
    denials = [e for e in events if e["type"]["code"] == "access.denied"]
    assert checked >= 20 and len(denials) >= checked


@pytest.mark.parametrize("path", sorted(HOOK_SIGNED))
def test_cds_hooks_calls_need_the_ehr_signature(client: TestClient, path: str) -> None:
    answer = client.post(_url(path), json={}, headers=bearer(client, Role.ADMIN))  # a user token is not an EHR's
    assert answer.status_code == 401
