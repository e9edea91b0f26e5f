"""What `GET /devices/{id}` says a device serves: the whole of its last status per model
(committed, the release served, the rollout), so a rolled-back device shows the release
it went back to; on every configured database."""

from __future__ import annotations

from release_fixtures import enroll_device, make_release
from rollout_helpers import report

from conftest import bearer


def _shown(api, token, device_id):  # type: ignore[no-untyped-def]
    r = api.get(f"/api/v1/devices/{device_id}", headers=bearer(token))
    assert r.status_code == 200, r.text
    [entry] = r.json()["models"]
    return {k: entry[k] for k in ("release_id", "phase", "committed", "serving_release_id",
                                  "rollout_id", "error")}  # fmt: skip


def test_a_device_shows_what_it_serves_after_a_rollback(app, api, token_for):
    ops = token_for("it-ops")
    bed = enroll_device(app, api, ops, "bed", labels={"site": "icu"})
    v1, v2 = make_release(app), make_release(app)

    report(bed, v1.id, "active", committed=True, serving=v1.id, rollout_id=7)
    assert _shown(api, ops, bed.id) == {
        "release_id": v1.id, "phase": "active", "committed": True,
        "serving_release_id": v1.id, "rollout_id": 7, "error": None,
    }  # fmt: skip
    report(bed, v2.id, "rolled_back", serving=v1.id, rollout_id=8, error="error rate 0.3")
    assert _shown(api, ops, bed.id) == {
        "release_id": v2.id, "phase": "rolled_back", "committed": False,
        "serving_release_id": v1.id, "rollout_id": 8, "error": "error rate 0.3",
    }  # fmt: skip
    report(bed, v2.id, "failed", serving=None, error="no previous release to go back to")
    assert _shown(api, ops, bed.id)["serving_release_id"] is None


def test_a_report_without_the_served_release_is_read_as_history_reads_it(app, api, token_for):
    """An agent that does not send `serving_release_id` serves the release it reports
    active; of a download in progress nothing is known."""
    ops = token_for("it-ops")
    bed = enroll_device(app, api, ops, "bed", labels={"site": "icu"})
    v1, v2 = make_release(app), make_release(app)
    report(bed, v1.id, "active")
    assert _shown(api, ops, bed.id)["serving_release_id"] == v1.id
    report(bed, v2.id, "downloading")
    assert _shown(api, ops, bed.id)["serving_release_id"] is None
