"""Which release of each model a device is told to run, and why (precedence, then rollout).

Called on every device poll and director fetch, so the per-device path is a handful of
indexed queries whatever the fleet size: the fleets' desired releases (one row per fleet
and model), the rollouts that set them, and the device's own rows in those rollouts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from farpoint.server.fleets import repository as fleets_repo
from farpoint.server.fleets.rules import FleetTarget, candidates_by_model, selects
from farpoint.server.rollouts import repository as repo
from farpoint.server.rollouts.rules import (
    Assignment,
    Governing,
    InFleet,
    first_with_release,
    resolve_in_fleet,
)
from farpoint.server.rollouts.tables import Rollout, RolloutDevice
from farpoint.wire.devices import HealthPolicy

__all__ = [
    "Candidate",
    "Choice",
    "choices_for_device",
    "governing_of",
    "health_of",
    "joiner_release",
    "previous_for",
    "selecting",
]

_DEFAULT_HEALTH: dict[str, Any] = HealthPolicy().model_dump(mode="json")


def health_of(rollout: Rollout | None) -> dict[str, Any]:
    """The health window a rollout sends devices (the defaults without a rollout)."""
    if rollout is None or not rollout.settings or "health" not in rollout.settings:
        return dict(_DEFAULT_HEALTH)
    return HealthPolicy.model_validate(rollout.settings["health"]).model_dump(mode="json")


def governing_of(rollout: Rollout) -> Governing:
    return Governing(
        id=rollout.id,
        state=rollout.state,
        to_release_id=rollout.to_release_id,
        from_release_id=rollout.from_release_id,
        from_rollout_id=rollout.from_rollout_id,
        batch_count=rollout.batch_count,
        current_batch=rollout.current_batch,
    )


def _assignment(row: RolloutDevice) -> Assignment:
    return Assignment(
        batch=row.batch_index,
        assigned_release_id=row.assigned_release_id,
        previous_release_id=row.previous_release_id,
        previous_rollout_id=row.previous_rollout_id,
    )


@dataclass(frozen=True)
class Candidate:
    target: FleetTarget
    rollout: Rollout | None
    gives: InFleet


@dataclass(frozen=True)
class Choice:
    """The decision for one model: the candidates in precedence order and the winner."""

    model: str
    candidates: list[Candidate]
    winner: int | None
    """Index into candidates of the first that gives a release; None when none does."""
    manifest_digest: str = ""
    model_digest: str = ""
    health: Mapping[str, Any] | None = None

    @property
    def chosen(self) -> Candidate | None:
        return None if self.winner is None else self.candidates[self.winner]


def _options(
    targets: Iterable[FleetTarget],
    rollouts: Mapping[int, Rollout],
    rows: Mapping[int, Assignment],
) -> list[Candidate]:
    out = []
    for t in targets:
        r = rollouts.get(t.rollout_id) if t.rollout_id is not None else None
        gives = resolve_in_fleet(
            t.release_id, governing_of(r) if r is not None else None, rows.get(r.id) if r else None
        )
        out.append(Candidate(t, r, gives))
    return out


def choices_for_device(s: Session, device_id: str, labels: Mapping[str, str]) -> list[Choice]:
    """Per model (in name order) the fleets selecting the device and what each gives it."""
    found = repo.targets_with_rollouts(s)
    by_model = candidates_by_model(labels, (t for t, _r in found))
    rollouts = {r.id: r for _t, r in found if r is not None}
    wanted = {t.rollout_id for ts in by_model.values() for t in ts if t.rollout_id is not None}
    rows = {r.rollout_id: _assignment(r) for r in repo.assignments_for_device(s, device_id, wanted)}

    choices: list[Choice] = []
    for model, targets in by_model.items():
        cands = _options(targets, rollouts, rows)
        winner = first_with_release([c.gives for c in cands])
        choices.append(Choice(model, cands, winner))
    return _with_details(s, choices, rollouts)


def _with_details(s: Session, choices: list[Choice], rollouts: dict[int, Rollout]) -> list[Choice]:
    """Fill digests and health of each winner, reading only what the targets lacked."""
    digests: dict[int, tuple[str, str]] = {}
    need_releases: set[int] = set()
    need_rollouts: set[int] = set()
    for c in choices:
        won = c.chosen
        if won is None:
            continue
        rid = won.gives.release_id
        assert rid is not None
        if rid == won.target.release_id:
            digests[rid] = (won.target.manifest_digest, won.target.model_digest)
        else:
            need_releases.add(rid)
        if won.gives.rollout_id is not None and won.gives.rollout_id not in rollouts:
            need_rollouts.add(won.gives.rollout_id)
    digests.update(fleets_repo.release_digests(s, need_releases - set(digests)))
    rollouts.update({r.id: r for r in repo.rollouts_by_ids(s, need_rollouts)})

    out = []
    for c in choices:
        won = c.chosen
        if won is None or won.gives.release_id not in digests:
            # A release that no longer exists cannot be delivered: say nothing for the model.
            out.append(Choice(c.model, c.candidates, None))
            continue
        manifest, model = digests[won.gives.release_id]
        rollout = rollouts.get(won.gives.rollout_id) if won.gives.rollout_id is not None else None
        out.append(Choice(c.model, c.candidates, c.winner, manifest, model, health_of(rollout)))
    return out


def previous_for(
    s: Session, devices: Iterable[tuple[str, Mapping[str, str]]], model: str
) -> dict[str, tuple[int | None, int | None]]:
    """(release id, rollout id) each device's desired state names for `model` now; for a
    new rollout's snapshot, read before it changes anything."""
    found = repo.targets_with_rollouts(s, model)
    targets = [t for t, _r in found]
    rollouts = {r.id: r for _t, r in found if r is not None}
    wanted = set(rollouts)
    rows: dict[str, dict[int, Assignment]] = {}
    for row in repo.assignments_of(s, wanted):
        rows.setdefault(row.device_id, {})[row.rollout_id] = _assignment(row)
    out: dict[str, tuple[int | None, int | None]] = {}
    for device_id, labels in devices:
        ordered = candidates_by_model(labels, targets).get(model, [])
        cands = _options(ordered, rollouts, rows.get(device_id, {}))
        i = first_with_release([c.gives for c in cands])
        out[device_id] = (
            (None, None)
            if i is None
            else (
                cands[i].gives.release_id,
                cands[i].gives.rollout_id,
            )
        )
    return out


def joiner_release(s: Session, fleet_release_id: int | None, rollout_id: int | None) -> InFleet:
    """What a device joining the fleet now gets for the model (the fleet's current release)."""
    if fleet_release_id is None:
        return InFleet(None, None, None, "the fleet has no release of the model")
    rollout = repo.rollout_by_id(s, rollout_id) if rollout_id is not None else None
    return resolve_in_fleet(
        fleet_release_id, governing_of(rollout) if rollout is not None else None, None
    )


def selecting(
    devices: Iterable[tuple[str, str, Mapping[str, Any]]], selector: Mapping[str, str]
) -> list[tuple[str, str, Mapping[str, Any]]]:
    return [d for d in devices if selects(selector, d[2])]
