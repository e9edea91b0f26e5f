"""What devices write goes through the app's device writer (server/group_commit.py):
status reports, director signing and last-seen updates, many at once, none lost."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from release_fixtures import enroll_device
from sqlalchemy import select
from tuf_fixtures import init_trust

from farpoint.server.devices.tables import Device

DIRECTOR = "/api/v1/tuf/director/targets.json"
DESIRED = "/api/v1/devices/self/desired-state?wait=0"


def test_concurrent_status_reports_are_group_committed_and_all_stored(app, api, token_for):
    ops = token_for("it-ops")
    devices = [enroll_device(app, api, ops, f"gw-{i:02d}") for i in range(24)]
    writer = app.state.ctx.device_writes
    before = writer.batches

    def report(i: int) -> int:
        d = devices[i]
        body = {"models": [], "heartbeat": {"uptime_s": 100 + i}}
        return int(d.post_json("/api/v1/devices/self/status", body).status_code)

    with ThreadPoolExecutor(max_workers=12) as pool:
        codes = list(pool.map(report, range(len(devices))))
    assert codes == [204] * len(devices)
    assert before < writer.batches <= before + len(devices)
    with app.state.ctx.db.session() as s:
        beats = {d.name: d.heartbeat for d in s.scalars(select(Device)).all()}
    assert beats == {f"gw-{i:02d}": {"uptime_s": 100 + i} for i in range(len(devices))}


def test_director_metadata_is_signed_through_the_writer_once_then_read(
    app, api, admin_token, token_for, tmp_path
):
    init_trust(api, admin_token, tmp_path)
    devices = [enroll_device(app, api, token_for("it-ops"), f"bed-{i}") for i in range(8)]
    writer = app.state.ctx.device_writes
    before = writer.batches
    with ThreadPoolExecutor(max_workers=8) as pool:
        first = list(pool.map(lambda d: d.get(DIRECTOR), devices))
    assert [r.status_code for r in first] == [200] * len(devices)
    signed = writer.batches
    assert before < signed <= before + len(devices)
    again = [d.get(DIRECTOR) for d in devices]
    assert [r.content for r in again] == [r.content for r in first]
    assert writer.batches == signed, "an unchanged, fresh copy was written again"


def test_a_poll_of_a_device_not_seen_for_a_while_records_it_seen(app, api, token_for):
    d = enroll_device(app, api, token_for("it-ops"), "bed-x")
    ctx = app.state.ctx
    ctx.clock = lambda: time.time() + 120  # the device was last seen two minutes ago
    before = ctx.device_writes.batches
    assert d.get(DESIRED).status_code == 200
    assert ctx.device_writes.batches == before + 1
    with ctx.db.session() as s:
        seen = s.scalars(select(Device.last_seen_at).where(Device.id == d.id)).one()
    assert seen is not None and abs(seen.timestamp() - ctx.clock()) < 5


def test_request_threads_are_few_on_sqlite_and_can_be_set(api, settings) -> None:
    import anyio.to_thread

    from farpoint.server.settings import Settings

    # `api` started the app: its lifespan set the limiter of this event loop's threads
    limiter = api.portal.call(anyio.to_thread.current_default_thread_limiter)
    expected = 8 if settings.effective_database_url.startswith("sqlite") else 40
    assert limiter.total_tokens == expected
    assert Settings.from_env({"FARPOINT_REQUEST_THREADS": "3"}).effective_request_threads == 3
