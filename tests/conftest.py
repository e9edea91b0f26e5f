"""Shared fixtures: an app per test on SQLite, and on PostgreSQL when it is configured."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

POSTGRES_URL = os.environ.get("FARPOINT_TEST_POSTGRES_URL", "")
DATABASES = ["sqlite", "postgres"]


def _postgres_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=DATABASES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'farpoint.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("FARPOINT_TEST_POSTGRES_URL is not set; PostgreSQL tests skipped")
    from sqlalchemy import create_engine, text

    schema = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _postgres_schema_url(POSTGRES_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    from farpoint.server.settings import Settings

    return Settings(home=tmp_path / "home", database_url=db_url, long_poll_max_s=5)


@pytest.fixture
def app(settings):  # type: ignore[no-untyped-def]
    from farpoint.server.app import create_app

    return create_app(settings)


@pytest.fixture
def api(app):  # type: ignore[no-untyped-def]
    """An httpx client driving the real app in process (lifespan included)."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def admin_token(app) -> str:  # type: ignore[no-untyped-def]
    from farpoint.server.identity.service import bootstrap_admin

    ctx = app.state.ctx
    with ctx.db.session() as s:
        return bootstrap_admin(s, "root", 3600).token


@pytest.fixture
def token_for(api, admin_token) -> Callable[..., str]:  # type: ignore[no-untyped-def]
    """Make a user holding `roles` and return a token for it."""
    made: dict[tuple[str, ...], str] = {}

    def make(*roles: str) -> str:
        key = tuple(sorted(roles))
        if key in made:
            return made[key]
        name = "u-" + "-".join(r.split("-")[0] for r in key) + "-" + uuid.uuid4().hex[:6]
        h = {"Authorization": f"Bearer {admin_token}"}
        r = api.post("/api/v1/users", json={"name": name, "roles": list(roles)}, headers=h)
        assert r.status_code == 201, r.text
        r = api.post("/api/v1/tokens", json={"user": name}, headers=h)
        assert r.status_code == 201, r.text
        made[key] = r.json()["token"]
        return made[key]

    return make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def cli(api, monkeypatch, tmp_path):  # type: ignore[no-untyped-def]
    """Run `farpoint ...` with its client wired to the in-process app: `cli(token, *args,
    input=None)` returns click's result. The CLI's state lives under the test's tmp_path and
    its tables print 160 columns wide (the console measured its width when first imported,
    maybe by another test in this worker, so it is set on the console)."""
    from typer.testing import CliRunner

    from farpoint.cli import main as cli_main
    from farpoint.cli import render
    from farpoint.sdk import Client

    transport = api._transport
    monkeypatch.setattr(
        cli_main,
        "make_client",
        lambda server, token: Client("http://testserver", token, transport=transport),
    )
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(render.console, "_width", 160)
    runner = CliRunner()

    def run(token, *args, input=None):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_main.app, ["--token", token, *args], input=input)

    return run


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    """Debian's Chromium driven by Playwright (never a downloaded browser), for the console
    tests in tests/e2e."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the playwright package is not installed"
    )
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
