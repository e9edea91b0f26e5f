"""Users, tokens and their checks, through the HTTP API, on every configured database."""

from __future__ import annotations

from conftest import bearer


def test_admin_creates_user_and_token_that_carries_roles(api, admin_token):
    h = bearer(admin_token)
    r = api.post("/api/v1/users", json={"name": "ada", "roles": ["data-scientist"]}, headers=h)
    assert r.status_code == 201
    r = api.post("/api/v1/tokens", json={"user": "ada", "description": "laptop"}, headers=h)
    assert r.status_code == 201
    token = r.json()["token"]
    me = api.get("/api/v1/me", headers=bearer(token)).json()
    assert me["user"] == "ada" and me["roles"] == ["data-scientist"]


def test_token_cannot_carry_roles_the_user_lacks(api, admin_token):
    h = bearer(admin_token)
    api.post("/api/v1/users", json={"name": "bob", "roles": ["business"]}, headers=h)
    r = api.post("/api/v1/tokens", json={"user": "bob", "roles": ["admin"]}, headers=h)
    assert r.status_code == 422
    assert "does not hold the roles" in r.json()["detail"]


def test_revoked_token_is_refused(api, admin_token, token_for):
    token = token_for("it-ops")
    token_id = api.get("/api/v1/me", headers=bearer(token)).json()["token_id"]
    assert api.delete(f"/api/v1/tokens/{token_id}", headers=bearer(token)).status_code == 204
    r = api.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "revoked" in r.json()["detail"]


def test_expired_token_is_refused(app, api, admin_token):
    h = bearer(admin_token)
    api.post("/api/v1/users", json={"name": "carol", "roles": ["business"]}, headers=h)
    token = api.post(
        "/api/v1/tokens", json={"user": "carol", "expires_in_s": 60}, headers=h
    ).json()["token"]
    assert api.get("/api/v1/me", headers=bearer(token)).status_code == 200
    real_clock = app.state.ctx.clock
    app.state.ctx.clock = lambda: real_clock() + 61
    r = api.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 401 and "expired" in r.json()["detail"]


def test_wrong_and_malformed_tokens_are_401_problems(api, admin_token):
    token_id = admin_token.split("_")[1]
    for bad in (f"fpt_{token_id}_wrongsecret", "nonsense", "fpt_999_x"):
        r = api.get("/api/v1/me", headers=bearer(bad))
        assert r.status_code == 401, bad
        assert r.json()["status"] == 401
    assert api.get("/api/v1/me").status_code == 401


def test_service_account_tokens(api, admin_token):
    h = bearer(admin_token)
    r = api.post(
        "/api/v1/users",
        json={"name": "ci-pipeline", "roles": ["mlops-engineer"], "kind": "service"},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["kind"] == "service"
    token = api.post("/api/v1/tokens", json={"user": "ci-pipeline"}, headers=h).json()["token"]
    assert api.get("/api/v1/me", headers=bearer(token)).json()["kind"] == "service"


def test_users_in_teams(api, admin_token):
    h = bearer(admin_token)
    assert api.post("/api/v1/teams", json={"name": "icu"}, headers=h).status_code == 201
    r = api.post(
        "/api/v1/users",
        json={"name": "dana", "roles": ["data-scientist"], "teams": ["icu"]},
        headers=h,
    )
    assert r.json()["teams"] == ["icu"]
    r = api.post(
        "/api/v1/users", json={"name": "eve", "roles": ["business"], "teams": ["nope"]}, headers=h
    )
    assert r.status_code == 404
    assert api.post("/api/v1/teams", json={"name": "icu"}, headers=h).status_code == 409
