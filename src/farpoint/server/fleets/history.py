"""History: which release each device served when, kept as intervals from status reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core.errors import NotFound
from farpoint.server.fleets import repository as repo
from farpoint.server.fleets.rules import selects
from farpoint.server.fleets.tables import ServingInterval
from farpoint.wire.devices import DeviceModelStatus
from farpoint.wire.rollouts import DeviceAtInstant, FleetHistory

__all__ = ["fleet_history", "record_serving", "serving_release"]

_CHUNK = 500
"""Device ids per IN (...) query: well under SQLite's bound-parameter limit."""


def serving_release(m: DeviceModelStatus) -> tuple[bool, int | None]:
    """(known, release) a status entry says the device serves: `serving_release_id` when
    the device sent it (None: nothing), else the release of an `active` phase, else
    unknown (a download in progress says nothing about what is served)."""
    if "serving_release_id" in m.model_fields_set:
        return True, m.serving_release_id
    if m.phase == "active":
        return True, m.release_id
    return False, None


def record_serving(
    s: Session, device_id: str, models: Sequence[DeviceModelStatus], now: datetime
) -> None:
    """Close and open intervals where the report shows the served release changed."""
    if not models:
        return
    current = repo.open_intervals(s, device_id)
    for m in models:
        known, release_id = serving_release(m)
        if not known:
            continue
        was = current.get(m.model)
        if was is not None and was.release_id == release_id:
            continue
        if was is not None:
            was.ended_at = now
        if release_id is not None:
            repo.add(
                s,
                ServingInterval(
                    device_id=device_id, model=m.model, release_id=release_id, started_at=now
                ),
            )
    s.flush()


def fleet_history(s: Session, name: str, at: datetime) -> FleetHistory:
    """For every device the fleet selects now, what it served of each model at `at`."""
    fleet = repo.fleet_by_name(s, name)
    if fleet is None:
        raise NotFound(f"fleet {name!r} does not exist")
    members = sorted(
        ((d[0], d[1]) for d in repo.device_labels(s) if selects(fleet.selector, d[2])),
        key=lambda d: d[1],
    )
    served: dict[str, dict[str, int]] = {}
    ids = [d[0] for d in members]
    for i in range(0, len(ids), _CHUNK):
        for device_id, model, release_id in repo.intervals_at(s, ids[i : i + _CHUNK], at):
            served.setdefault(device_id, {})[model] = release_id
    return FleetHistory(
        fleet=fleet.name,
        at=at,
        devices=[
            DeviceAtInstant(
                device_id=d, device_name=n, releases=dict(sorted(served.get(d, {}).items()))
            )
            for d, n in members
        ],
    )
