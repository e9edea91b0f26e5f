"""Every route checks its token: the right role passes, a wrong one gets 403, none gets 401.

Routes are enumerated from the app itself, so a new route without a role requirement
fails here until it is listed as public or device-signed on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from farpoint.server.app import build_api, create_app
from farpoint.server.auth import ANY_ROLE, Requires
from farpoint.server.settings import Settings
from farpoint.wire.common import Role

# Routes reachable without a bearer token, on purpose.
PUBLIC = {
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/devices/enroll"),
    ("GET", "/api/v1/tls/ca.pem"),  # devices pin it by the hash their token names
}
# Routes authenticated by a device signature instead of a bearer token.
DEVICE_SIGNED_PREFIXES = ("/api/v1/devices/self/", "/api/v1/tuf/director/")


def _requirement(route: APIRoute) -> frozenset[Role] | None:
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, Requires):
            return dep.call.roles
        stack.extend(dep.dependencies)
    return None


def _routes() -> list[tuple[str, str, frozenset[Role] | None]]:
    app = FastAPI()
    app.include_router(build_api())
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if not isinstance(route, APIRoute):
            continue
        for method in sorted(ctx.methods or ()):
            out.append((method, ctx.path, _requirement(route)))
    return out


ROUTES = _routes()


def _concrete(path: str) -> str:
    path = path.replace("{digest}", "sha256:" + "0" * 64)
    return re.sub(r"\{[a-z_]*id\}|\{version\}", "999999", re.sub(r"\{name\}", "nothing", path))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    home: Path = tmp_path_factory.mktemp("roles")
    app = create_app(Settings(home=home))
    from farpoint.server.identity.service import bootstrap_admin

    with app.state.ctx.db.session() as s:
        admin = bootstrap_admin(s, "root", 3600).token
    with TestClient(app) as client:
        tokens = {}
        for role in Role:
            if role == Role.ADMIN:
                tokens[role] = admin
                continue
            h = {"Authorization": f"Bearer {admin}"}
            r = client.post("/api/v1/users", json={"name": f"u-{role}", "roles": [role]}, headers=h)
            assert r.status_code == 201, r.text
            tokens[role] = client.post(
                "/api/v1/tokens", json={"user": f"u-{role}"}, headers=h
            ).json()["token"]
        yield client, tokens


def test_every_route_declares_who_may_call_it():
    undeclared = [
        (m, p)
        for m, p, req in ROUTES
        if req is None and (m, p) not in PUBLIC and not p.startswith(DEVICE_SIGNED_PREFIXES)
    ]
    assert undeclared == []


@pytest.mark.parametrize(
    ("method", "path", "roles"),
    [r for r in ROUTES if r[2] is not None],
    ids=[f"{m} {p}" for m, p, req in ROUTES if req is not None],
)
def test_route_checks_roles(env, method, path, roles):
    client, tokens = env
    url = _concrete(path)
    r = client.request(method, url)
    assert r.status_code == 401, (url, r.text)
    assert r.json()["status"] == 401

    allowed = sorted(roles)[0]
    r = client.request(method, url, headers={"Authorization": f"Bearer {tokens[allowed]}"})
    assert r.status_code not in (401, 403), (url, allowed, r.text)

    if roles != ANY_ROLE:
        wrong = next(role for role in Role if role not in roles and role != Role.ADMIN)
        r = client.request(method, url, headers={"Authorization": f"Bearer {tokens[wrong]}"})
        assert r.status_code == 403, (url, wrong, r.text)
        assert wrong.value in r.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [(m, p) for m, p, _ in ROUTES if p.startswith(DEVICE_SIGNED_PREFIXES)],
)
def test_device_routes_refuse_unsigned_requests(env, method, path):
    client, tokens = env
    url = _concrete(path)
    # A person's bearer token is no device credential.
    r = client.request(method, url, headers={"Authorization": f"Bearer {tokens[Role.ADMIN]}"})
    assert r.status_code == 401, (url, r.text)
