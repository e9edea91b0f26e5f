"""The IT operations view in a real browser against a real `farpoint server`: approve a
pending device, ask a device for its logs and read them, decommission a device."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from identity_world import env_for as _env
from identity_world import prepare as _prepare

from farpoint.core import keys
from farpoint.core.request_signing import sign_request
from farpoint.examples.processes import Child, start_server, stop_all

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _enroll(base: str, token: str, name: str) -> tuple[str, keys.PrivateKey]:
    key = keys.generate_private_key()
    body = {
        "token": token,
        "name": name,
        "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
        "hardware": {"architecture": "aarch64", "execution_providers": ["CPUExecutionProvider"]},
    }
    r = httpx.post(f"{base}/api/v1/devices/enroll", json=body, timeout=30)
    assert r.status_code == 201, r.text
    return r.json()["device_id"], key


def _click_until(button: Any, result: Any, tries: int = 3) -> None:
    """Click until `result` shows. The board redraws every 3 s; a click that lands as its
    button is replaced (or before the page's websocket is up) is lost, so it is repeated."""
    from playwright.sync_api import expect

    for attempt in range(tries):
        button.click()
        try:
            expect(result).to_be_visible(timeout=5_000)
            return
        except AssertionError:
            if attempt == tries - 1:
                raise


def test_it_ops_approves_reads_logs_and_decommissions_in_the_console(
    browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    home = tmp_path / "server"
    _app, admin = _prepare(home)
    children: list[Child] = []
    try:
        server, base = start_server(home, _env(home), console=True)
        children.append(server)
        admin_h = {"Authorization": f"Bearer {admin}"}
        httpx.post(f"{base}/api/v1/users", json={"name": "ida", "roles": ["it-ops"]},
                   headers=admin_h, timeout=30)  # fmt: skip
        ops = httpx.post(f"{base}/api/v1/tokens", json={"user": "ida"}, headers=admin_h,
                         timeout=30).json()["token"]  # fmt: skip
        ops_h = {"Authorization": f"Bearer {ops}"}

        def token(**body: Any) -> str:
            r = httpx.post(f"{base}/api/v1/enrollment-tokens", json=body, headers=ops_h, timeout=30)
            assert r.status_code == 201, r.text
            return str(r.json()["token"])

        pending_id, _ = _enroll(base, token(requires_approval=True), "gw-new")
        active_id, active_key = _enroll(base, token(), "gw-old")

        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        page.goto(f"{base}/console/login?token={ops}")
        expect(page).to_have_url(f"{base}/console/it-ops")

        # A device waiting for approval shows what it is, with Approve and Reject.
        card = page.locator(".pending-device").filter(has_text="gw-new")
        expect(card).to_be_visible()
        expect(card.get_by_text("CPUExecutionProvider", exact=False)).to_be_visible()
        _click_until(
            card.get_by_role("button", name="Approve"), page.get_by_text("gw-new approved")
        )
        expect(page.locator(".pending-device")).to_have_count(0)
        state = httpx.get(f"{base}/api/v1/devices/{pending_id}", headers=ops_h, timeout=30)
        assert state.json()["state"] == "active"

        # Ask gw-old for its logs; the device answers (here, its signed upload); read them.
        row = page.locator("tr").filter(has_text="gw-old")
        dialog = page.locator(".diagnostics-dialog")
        _click_until(
            row.get_by_role("button", name="Logs"), dialog.get_by_text("Nothing asked yet.")
        )
        dialog.get_by_role("button", name="Ask for logs").click()  # the dialog is not redrawn
        expect(dialog.get_by_text("not answered yet", exact=False)).to_be_visible()
        asked = httpx.get(f"{base}/api/v1/devices/{active_id}/diagnostics", headers=ops_h,
                          timeout=30).json()[0]  # fmt: skip
        upload = {
            "logs": [{"at": 1.7e9, "level": "WARNING", "logger": "farpoint.agent",
                      "message": "sync: link down; retrying in 4.0 s"}],
            "errors": [{"at": 1.7e9, "level": "ERROR", "logger": "farpoint.agent",
                        "message": "release 9 refused: self-test failed"}],
        }  # fmt: skip
        path = f"/api/v1/devices/self/diagnostics/{asked['id']}"
        body = json.dumps(upload).encode()
        headers = sign_request(active_key, active_id, "POST", path, body, __import__("time").time())
        r = httpx.post(f"{base}{path}", content=body, timeout=30,
                       headers={**headers, "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 204, r.text
        dialog.get_by_role("button", name="Reload").click()
        expect(dialog.get_by_text("self-test failed", exact=False)).to_be_visible()
        expect(dialog.get_by_text("link down; retrying", exact=False)).to_be_visible()
        dialog.get_by_role("button").filter(has_text="close").click()

        # Decommission gw-old, after confirming.
        confirm = page.get_by_role("dialog").get_by_role("button", name="Decommission")
        _click_until(row.get_by_role("button", name="Decommission"), confirm)
        confirm.click()
        expect(page.get_by_text("gw-old decommissioned")).to_be_visible()
        expect(
            page.locator("tr").filter(has_text="gw-old").get_by_text("decommissioned")
        ).to_be_visible()
        state = httpx.get(f"{base}/api/v1/devices/{active_id}", headers=ops_h, timeout=30)
        assert state.json()["state"] == "decommissioned"
        page.screenshot(path=str(tmp_path / "it-ops.png"), full_page=True)
    finally:
        stop_all(children)
