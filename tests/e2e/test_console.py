"""The web console in a real browser, against a real `farpoint server` process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

SCREENSHOT = Path("/tmp/console-ds.png")
ROLLOUT_SCREENSHOT = Path("/tmp/console-rollout.png")
VITALS_CSV = (
    "patient_name,sex,age,heart_rate,spo2,deteriorated\n"
    "Ann Lee,f,71,88,95,0\n"
    "Bo Chen,m,64,121,89,1\n"
    "Cy Diaz,m,58,76,98,0\n"
    "Di Evans,f,80,110,91,1\n"
)
VITALS_ROLES = {
    "patient_name": "pii",
    "sex": "protected",
    "age": "feature",
    "heart_rate": "feature",
    "spo2": "feature",
    "deteriorated": "label",
}


def _farpoint(*args: str) -> list[str]:
    return [sys.executable, "-m", "farpoint", *args]


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _admin_init(env: dict[str, str]) -> str:
    init = subprocess.run(
        _farpoint("admin", "init", "--json"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert init.returncode == 0, init.stderr[-2000:]
    token: str = json.loads(init.stdout.strip().splitlines()[-1])["token"]
    return token


def _serve(tmp_path: Path, request: pytest.FixtureRequest, env: dict[str, str]) -> str:
    """Start `farpoint server` on a free port; its URL once it answers."""
    port_file = tmp_path / "server.port"
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            _farpoint("server", "--port", "0", "--port-file", str(port_file)),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    request.addfinalizer(lambda: _stop(proc))

    deadline = time.monotonic() + 90
    while not (port_file.exists() and port_file.read_text().strip()):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    base = f"http://127.0.0.1:{int(port_file.read_text())}"
    while True:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                break
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the server never answered:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return base


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, FARPOINT_HOME=str(tmp_path / "home"))
    env.pop("FARPOINT_CONSOLE_SECRET", None)
    return env


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """A `farpoint server` on a free port; returns its URL and an admin token."""
    env = _env(tmp_path)
    admin_token = _admin_init(env)
    return _serve(tmp_path, request, env), admin_token


def _data_scientist_token(base: str, admin_token: str) -> str:
    admin = {"Authorization": f"Bearer {admin_token}"}
    user = httpx.post(
        f"{base}/api/v1/users",
        json={"name": "dana", "roles": ["data-scientist"]},
        headers=admin,
        timeout=30,
    )
    assert user.status_code == 201, user.text
    token = httpx.post(f"{base}/api/v1/tokens", json={"user": "dana"}, headers=admin, timeout=30)
    assert token.status_code == 201, token.text
    secret: str = token.json()["token"]
    return secret


def test_a_data_scientist_signs_in_and_sees_datasets_with_their_column_roles(
    browser: Any, server: tuple[str, str]
) -> None:
    from playwright.sync_api import expect

    base, admin_token = server
    token = _data_scientist_token(base, admin_token)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(20_000)

    # Nobody is signed in: a view sends the browser to the sign-in page.
    page.goto(f"{base}/console/data-science")
    expect(page).to_have_url(f"{base}/console/login")

    # A token the server does not know is refused, and the page says why.
    page.get_by_label("API token").fill("fpt_999_not-a-real-secret")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("That token is not valid:")).to_be_visible()
    expect(page).to_have_url(f"{base}/console/login")

    # The data scientist's token lands on their own view, empty for now.
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/console/data-science")
    expect(page.get_by_text("The data scientist's view.")).to_be_visible()
    expect(page.get_by_text("No datasets yet")).to_be_visible()
    expect(page.get_by_text("dana", exact=True)).to_be_visible()

    upload = httpx.post(
        f"{base}/api/v1/datasets/ward-vitals/versions",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("vitals.csv", VITALS_CSV.encode(), "text/csv")},
        data={"roles": json.dumps(VITALS_ROLES)},
        timeout=60,
    )
    assert upload.status_code == 201, upload.text

    page.reload()
    card = page.locator(".dataset-card").filter(has_text="ward-vitals")
    expect(card).to_be_visible()
    expect(card.get_by_text("4 rows", exact=False)).to_be_visible()
    expect(card.locator(".role-pii")).to_have_text(["patient_name"])
    expect(card.locator(".role-protected")).to_have_text(["sex"])
    expect(card.locator(".role-label")).to_have_text(["deteriorated"])
    expect(card.locator(".role-feature")).to_have_count(3)
    expect(page.get_by_text("No datasets yet")).to_have_count(0)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # The link the demo prints signs a fresh browser straight in.
    fresh = browser.new_context().new_page()
    fresh.goto(f"{base}/console/login?token={token}")
    expect(fresh).to_have_url(f"{base}/console/data-science")
    expect(fresh.get_by_text("ward-vitals", exact=True)).to_be_visible()


def _seed_rollout_awaiting_approval(home: Path, admin_token: str) -> dict[str, str]:
    """In process, on the server's own database before it starts: two devices that sign
    their reports, a release, and a rollout in two batches whose first batch is healthy,
    so it waits for approval. Returns tokens of an MLOps engineer and a business reader."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))
    from fastapi.testclient import TestClient
    from release_fixtures import enroll_device, make_release

    from farpoint.server.app import create_app
    from farpoint.server.settings import Settings

    app = create_app(Settings(home=home, rollout_tick_s=0))
    admin = {"Authorization": f"Bearer {admin_token}"}
    tokens = {}
    with TestClient(app) as api:
        for name, role in (("mo", "mlops-engineer"), ("bea", "business")):
            r = api.post("/api/v1/users", json={"name": name, "roles": [role]}, headers=admin)
            assert r.status_code == 201, r.text
            r = api.post("/api/v1/tokens", json={"user": name}, headers=admin)
            tokens[name] = r.json()["token"]
        beds = [enroll_device(app, api, admin_token, f"bed-{i}") for i in (1, 2)]
        release = make_release(app)
        assert api.post("/api/v1/fleets", json={"name": "ward"}, headers=admin).status_code == 201
        body = {
            "fleet": "ward",
            "release_id": release.id,
            "strategy": "batches",
            "batches": {"count": 2},
            "approve_between_batches": True,
            "health": {"window_s": 0},
        }
        r = api.post("/api/v1/rollouts", json=body, headers=admin)
        assert r.status_code == 201, r.text
        entry = {"model": "vitals", "release_id": release.id, "phase": "active", "error": None}
        r = beds[0].post_json("/api/v1/devices/self/status", {"models": [entry]})
        assert r.status_code == 204, r.text
    app.state.ctx.db.dispose()
    tokens["bed-2"] = beds[1].id
    return tokens


def test_an_mlops_engineer_approves_pauses_resumes_and_aborts_a_rollout(
    browser: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from playwright.sync_api import expect

    env = _env(tmp_path)
    admin_token = _admin_init(env)
    seeded = _seed_rollout_awaiting_approval(tmp_path / "home", admin_token)
    base = _serve(tmp_path, request, env)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(f"{base}/console/login?token={seeded['mo']}")
    expect(page).to_have_url(f"{base}/console/mlops")

    # The MLOps view lists the rollout; its page shows the batches and each device.
    page.locator(".rollout-link").filter(has_text="Rollout #1").click()
    expect(page).to_have_url(f"{base}/console/rollouts/1")
    expect(page.locator(".paused-reason")).to_have_text("Paused: awaiting approval of batch 1")
    cards = page.locator(".batch-card")
    expect(cards).to_have_count(2)
    expect(cards.nth(0)).to_contain_text("1 of 1 healthy")
    expect(cards.nth(1)).to_contain_text("waiting")
    devices = page.locator(".rollout-devices")
    expect(devices).to_contain_text("bed-1")
    expect(devices).to_contain_text("bed-2")
    page.screenshot(path=str(ROLLOUT_SCREENSHOT), full_page=True)

    page.get_by_role("button", name="Approve batch 1").click()
    expect(page.locator(".rollout-state")).to_have_text("running")
    expect(cards.nth(1)).to_contain_text("running")
    page.get_by_role("button", name="Pause").click()
    expect(page.locator(".paused-reason")).to_have_text("Paused: paused by mo")
    page.get_by_role("button", name="Resume").click()
    expect(page.locator(".rollout-state")).to_have_text("running")
    page.get_by_role("button", name="Abort").click()
    expect(page.locator(".rollout-state")).to_have_text("aborted")
    expect(page.locator(".stop-reason")).to_have_text("aborted by mo")
    expect(page.get_by_role("button", name="Abort")).to_have_count(0)

    # What the browser did is what the API says; bed-2 keeps the release it was given.
    mo = {"Authorization": f"Bearer {seeded['mo']}"}
    out = httpx.get(f"{base}/api/v1/rollouts/1", headers=mo, timeout=10).json()
    assert out["state"] == "aborted"
    bed2 = next(d for d in out["devices"] if d["device_name"] == "bed-2")
    assert bed2["assigned_release_id"] == out["to_release_id"]

    # A business reader sees the rollout but gets no controls.
    reader = browser.new_context().new_page()
    reader.goto(f"{base}/console/login?token={seeded['bea']}")
    reader.goto(f"{base}/console/rollouts/1")
    expect(reader.locator(".rollout-state")).to_have_text("aborted")
    expect(reader.get_by_role("button", name="Pause")).to_have_count(0)
