"""Fleets and rollouts: the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, NotFound
from farpoint.server.devices import repository as devices_repo
from farpoint.server.fleets import repository as repo
from farpoint.server.fleets import rules
from farpoint.server.fleets.tables import Fleet, FleetRelease, Rollout, RolloutDevice
from farpoint.wire.devices import (
    DeviceModelStatus,
    FleetCreate,
    FleetOut,
    RolloutCreate,
    RolloutOut,
)
from farpoint.wire.devices import RolloutDevice as RolloutDeviceOut


def _matching_counts(s: Session, fleets: Sequence[Fleet]) -> dict[int, int]:
    devices = devices_repo.all_device_labels(s)
    return {
        f.id: sum(1 for _id, labels in devices if rules.selects(f.selector, labels)) for f in fleets
    }


def fleet_out(s: Session, fleet: Fleet, device_count: int) -> FleetOut:
    return FleetOut(
        name=fleet.name,
        selector=fleet.selector,
        desired_release_id=repo.latest_desired_release(s, fleet.id),
        device_count=device_count,
        created_at=fleet.created_at,
    )


def create_fleet(s: Session, body: FleetCreate, actor: str, now: datetime) -> FleetOut:
    if repo.fleet_by_name(s, body.name) is not None:
        raise Conflict(f"fleet {body.name!r} already exists; pick another name")
    fleet = Fleet(name=body.name, selector=dict(body.selector), created_by=actor, created_at=now)
    repo.add(s, fleet)
    s.flush()
    return fleet_out(s, fleet, _matching_counts(s, [fleet])[fleet.id])


def get_fleet(s: Session, name: str) -> FleetOut:
    fleet = repo.fleet_by_name(s, name)
    if fleet is None:
        raise NotFound(f"fleet {name!r} does not exist")
    return fleet_out(s, fleet, _matching_counts(s, [fleet])[fleet.id])


def list_fleets(s: Session) -> list[FleetOut]:
    fleets = repo.list_fleets(s)
    counts = _matching_counts(s, fleets)
    return [fleet_out(s, f, counts[f.id]) for f in fleets]


def create_rollout(s: Session, body: RolloutCreate, actor: str, now: datetime) -> RolloutOut:
    """Make `release_id` the fleet's desired release of its model and track the devices.

    The fleet's devices are snapshotted now; devices that join the fleet later still get
    the release through their desired state, but this rollout does not wait for them.
    A running rollout of the same fleet and model is superseded (`aborted`).
    """
    fleet = repo.fleet_by_name(s, body.fleet)
    if fleet is None:
        raise NotFound(f"fleet {body.fleet!r} does not exist; create it with POST /fleets")
    release = repo.release_by_id(s, body.release_id)
    if release is None:
        raise NotFound(f"release {body.release_id} does not exist")

    desired = repo.fleet_release(s, fleet.id, release.model)
    from_release_id = desired.release_id if desired is not None else None
    if desired is None:
        repo.add(
            s,
            FleetRelease(fleet_id=fleet.id, model=release.model, release_id=release.id, set_at=now),
        )
    else:
        desired.release_id = release.id
        desired.set_at = now

    for older in repo.running_rollouts_of(s, fleet.id, release.model):
        older.state = "aborted"
        older.finished_at = now

    rollout = Rollout(
        fleet_id=fleet.id,
        model=release.model,
        from_release_id=from_release_id,
        to_release_id=release.id,
        strategy=body.strategy,
        state="running",
        created_by=actor,
        created_at=now,
        finished_at=None,
    )
    repo.add(s, rollout)
    s.flush()

    targeted = [
        dev_id
        for dev_id, labels in devices_repo.all_device_labels(s)
        if rules.selects(fleet.selector, labels)
    ]
    reported = {
        st.device_id: st
        for st in devices_repo.model_states(s, targeted)
        if st.model == release.model
    }
    for dev_id in targeted:
        st = reported.get(dev_id)
        phase = rules.phase_on_release(
            st.release_id if st else None, st.phase if st else None, release.id
        )
        error = st.error if st is not None and phase != "pending" else None
        repo.add(
            s,
            RolloutDevice(
                rollout_id=rollout.id, device_id=dev_id, phase=phase, error=error, updated_at=now
            ),
        )
    s.flush()
    _settle(s, rollout, now)
    return rollout_out(s, rollout, fleet.name)


def _settle(s: Session, rollout: Rollout, now: datetime) -> None:
    """Record a terminal state once every targeted device has finished."""
    state = rules.rollout_state(repo.rollout_phases(s, rollout.id))
    if state != "running":
        rollout.state = state
        rollout.finished_at = now
        s.flush()


def advance_for_device(
    s: Session, device_id: str, reports: Sequence[DeviceModelStatus], now: datetime
) -> None:
    """Fold one device's status report into the running rollouts that target it."""
    by_model = {m.model: m for m in reports}
    for rollout in repo.running_rollouts_for_device(s, device_id):
        report = by_model.get(rollout.model)
        if report is None:
            continue
        row = repo.rollout_device(s, rollout.id, device_id)
        if row is None:  # pragma: no cover - the join above found it
            continue
        phase = rules.phase_on_release(report.release_id, report.phase, rollout.to_release_id)
        row.phase = phase
        row.error = report.error if phase != "pending" else None
        row.updated_at = now
        s.flush()
        _settle(s, rollout, now)


def get_rollout(s: Session, rollout_id: int) -> RolloutOut:
    rollout = repo.rollout_by_id(s, rollout_id)
    if rollout is None:
        raise NotFound(f"rollout {rollout_id} does not exist")
    return rollout_out(s, rollout)


def rollout_out(s: Session, rollout: Rollout, fleet_name: str | None = None) -> RolloutOut:
    if fleet_name is None:
        fleet = repo.fleet_by_id(s, rollout.fleet_id)
        assert fleet is not None
        fleet_name = fleet.name
    rows = repo.rollout_devices(s, rollout.id)
    return RolloutOut(
        id=rollout.id,
        fleet=fleet_name,
        model=rollout.model,
        from_release_id=rollout.from_release_id,
        to_release_id=rollout.to_release_id,
        strategy=rollout.strategy,
        state=rollout.state,
        progress=rules.rollout_progress(row.phase for row, _name in rows),
        devices=[
            RolloutDeviceOut(
                device_id=row.device_id,
                device_name=name,
                phase=row.phase,
                error=row.error,
            )
            for row, name in rows
        ],
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        finished_at=rollout.finished_at,
    )
