"""Fleets, and why a device is told to run what it runs: the use cases."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, NotFound
from farpoint.server.devices import repository as devices_repo
from farpoint.server.devices import service as devices_service
from farpoint.server.fleets import repository as repo
from farpoint.server.fleets.rules import selects
from farpoint.server.fleets.tables import Fleet
from farpoint.server.rollouts import desired
from farpoint.wire.devices import FleetCreate, FleetOut
from farpoint.wire.rollouts import DeviceDesiredState, FleetCandidate, ModelDecision

__all__ = ["create_fleet", "explain_desired_state", "get_fleet", "list_fleets"]


def _matching_counts(s: Session, fleets: Sequence[Fleet]) -> dict[int, int]:
    devices = repo.device_labels(s)
    return {
        f.id: sum(1 for _id, _name, labels in devices if selects(f.selector, labels))
        for f in fleets
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


def _decision(choice: desired.Choice) -> ModelDecision:
    candidates = [
        FleetCandidate(
            fleet=c.target.fleet,
            set_at=c.target.set_at,
            fleet_release_id=c.target.release_id,
            rollout_id=c.rollout.id if c.rollout is not None else None,
            rollout_state=c.rollout.state if c.rollout is not None else None,
            release_id=c.gives.release_id,
            rollout_batch=c.gives.batch,
            why=c.gives.why,
        )
        for c in choice.candidates
    ]
    won = choice.chosen
    if won is None:
        reason = "no fleet selecting the device gives it a release of this model now"
        return ModelDecision(
            model=choice.model,
            winner=None,
            release_id=None,
            rollout_id=None,
            batch=None,
            reason=reason,
            candidates=candidates,
        )
    first = choice.candidates[0]
    if won is first:
        why = "its release was set most recently" if len(candidates) > 1 else "the only candidate"
        reason = f"fleet {won.target.fleet} decides ({why}): {won.gives.why}"
    else:
        reason = (
            f"fleet {won.target.fleet} decides: the fleets set more recently give nothing yet "
            f"({first.target.fleet}: {first.gives.why}); {won.gives.why}"
        )
    return ModelDecision(
        model=choice.model,
        winner=won.target.fleet,
        release_id=won.gives.release_id,
        rollout_id=won.gives.rollout_id,
        batch=won.gives.batch,
        reason=reason,
        candidates=candidates,
    )


def explain_desired_state(s: Session, device_id: str) -> DeviceDesiredState:
    """The device's desired state and, per model, every candidate fleet and the winner."""
    device = devices_repo.device_by_id(s, device_id)
    if device is None:
        raise NotFound(f"device {device_id} does not exist")
    state = devices_service.desired_state(s, device_id)
    choices = desired.choices_for_device(s, device_id, device.labels)
    return DeviceDesiredState(
        device_id=device.id,
        device_name=device.name,
        state=state,
        decisions=[_decision(c) for c in choices],
    )
