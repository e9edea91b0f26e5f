"""A dataset's page in the console, in a real browser against a real `farpoint server`: the
quality report, the histograms, and a proposed PII column accepted with one click."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from identity_world import env_for, prepare

from farpoint.examples.processes import Child, start_server, stop_all

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SCREENSHOT = Path("/tmp/dataset_detail.png")
ROLES = {"mrn": "id", "sex": "protected", "age": "feature", "deteriorated": "label"}


def vitals_csv(rows: int, seed: int, shift: float = 0.0) -> bytes:
    """Ward vitals with an `email` column nobody labelled (it holds patients' addresses)
    and a few oxygen readings missing."""
    rng = random.Random(seed)
    lines = ["mrn,email,sex,age,heart_rate,spo2,deteriorated"]
    for i in range(rows):
        hr = round(rng.gauss(82 + shift, 12), 1)
        spo2 = "" if rng.random() < 0.08 else rng.randint(86, 100)
        label = int((hr > 95) != (rng.random() < 0.25))  # noisy: no single column gives it away
        lines.append(
            f"MRN{100000 + i},patient{i}@example.org,{rng.choice('fm')},{rng.randint(18, 95)},"
            f"{hr},{spo2},{label}"
        )
    return ("\n".join(lines) + "\n").encode()


def _user(base: str, admin: str, name: str, role: str) -> str:
    h = {"Authorization": f"Bearer {admin}"}
    r = httpx.post(f"{base}/api/v1/users", json={"name": name, "roles": [role]}, headers=h,
                   timeout=30)  # fmt: skip
    assert r.status_code == 201, r.text
    r = httpx.post(f"{base}/api/v1/tokens", json={"user": name}, headers=h, timeout=30)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _upload(base: str, token: str, data: bytes) -> dict[str, Any]:
    r = httpx.post(
        f"{base}/api/v1/datasets/ward-vitals/versions",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("vitals.csv", data, "text/csv")},
        data={"roles": json.dumps(ROLES)},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def test_a_data_scientist_reads_a_dataset_version_and_accepts_a_proposed_pii_column(
    browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    home = tmp_path / "server"
    _app, admin = prepare(home)
    children: list[Child] = []
    try:
        server, base = start_server(home, env_for(home), console=True)
        children.append(server)
        dana = _user(base, admin, "dana", "data-scientist")
        bea = _user(base, admin, "bea", "business")
        _upload(base, dana, vitals_csv(300, seed=1))
        v2 = _upload(base, dana, vitals_csv(300, seed=2, shift=15))
        assert "email" in v2["pending_classification"], v2

        # The datasets list says what needs attention and links to the dataset's page.
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(20_000)
        page.goto(f"{base}/console/login?token={dana}")
        expect(page).to_have_url(f"{base}/console/data-science")
        card = page.locator(".dataset-card").filter(has_text="ward-vitals")
        expect(card.locator(".pending-badge")).to_have_text("1 to review")
        expect(card.locator(".quality-badge")).to_be_visible()
        card.locator(".dataset-link").click()
        expect(page).to_have_url(f"{base}/console/datasets/ward-vitals")

        # The latest version: its quality checks, a histogram per column, drift since v1.
        expect(page.locator(".dataset-ref")).to_have_text("ward-vitals@2")
        quality = page.locator(".quality-table")
        expect(quality).to_be_visible()
        expect(quality.locator("tbody tr").filter(has_text="out_of_range")).to_contain_text("error")
        expect(page.locator(".passed-checks")).to_contain_text("checks passed")
        heart = page.locator(".profile-card").filter(has_text="heart_rate")
        expect(heart.locator(".histogram canvas")).to_be_visible()
        expect(page.locator(".missing-chart canvas")).to_be_visible()
        drift = page.locator(".drift-table").locator("tr").filter(has_text="heart_rate")
        expect(drift).to_contain_text("significant")
        # Identifiers never show their values, only counts.
        expect(
            page.locator(".profile-card").filter(has_text="mrn").locator(".redacted")
        ).to_be_visible()

        finding = page.locator(".finding").filter(has_text="email")
        expect(finding).to_contain_text("proposed: pii")
        expect(finding.locator(".role-now")).to_have_text("feature")
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A business reader sees the proposal but cannot settle it.
        reader = browser.new_context().new_page()
        reader.set_default_timeout(20_000)
        reader.goto(f"{base}/console/login?token={bea}")
        reader.goto(f"{base}/console/datasets/ward-vitals")
        expect(
            reader.locator(".finding")
            .filter(has_text="email")
            .get_by_role("button", name="Accept as pii")
        ).to_be_disabled()

        finding.get_by_role("button", name="Accept as pii").click()
        expect(page.get_by_text("email is now pii")).to_be_visible()
        accepted = page.locator(".finding").filter(has_text="email")
        expect(accepted.locator(".role-now")).to_have_text("pii")
        expect(accepted.locator(".finding-status")).to_have_text("accepted by dana")
        expect(page.locator(".pending-badge")).to_have_count(0)
        # Now a PII column, its values leave the profile too.
        email = page.locator(".profile-card").filter(has_text="email")
        expect(email.locator(".redacted")).to_be_visible()

        got = httpx.get(f"{base}/api/v1/datasets/ward-vitals/versions/2",
                        headers={"Authorization": f"Bearer {dana}"}, timeout=30).json()  # fmt: skip
        assert got["roles"]["email"] == "pii"
        assert got["pending_classification"] == []

        # A pseudonymized copy shows where it came from, there and in its lineage.
        r = httpx.post(f"{base}/api/v1/datasets/ward-vitals/versions/2/pseudonymize",
                       json={"columns": ["email"]}, headers={"Authorization": f"Bearer {dana}"},
                       timeout=60)  # fmt: skip
        assert r.status_code == 201, r.text
        page.goto(f"{base}/console/datasets/ward-vitals")
        expect(page.locator(".dataset-ref")).to_have_text("ward-vitals@3")
        expect(page.locator(".dataset-facts")).to_contain_text("by pseudonymize")
        expect(page.locator(".lineage")).to_contain_text("ward-vitals@2")

        # The version selector goes back to v1, which has nothing to compare with.
        page.goto(f"{base}/console/datasets/ward-vitals?version=1")
        expect(page.locator(".dataset-ref")).to_have_text("ward-vitals@1")
        expect(page.get_by_text("This is the first version")).to_be_visible()
    finally:
        stop_all(children)
