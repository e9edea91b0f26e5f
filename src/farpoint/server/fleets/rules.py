"""Pure rules: which fleet decides a device's release, and how a rollout stands.

Plain functions over plain data, tested without a database.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

__all__ = [
    "PHASES",
    "FleetTarget",
    "desired_models",
    "phase_on_release",
    "rollout_progress",
    "rollout_state",
    "selects",
    "state_etag",
    "target_dict",
]

PHASES = ("pending", "downloading", "verifying", "installing", "active", "failed", "rolled_back")
_FAILED = frozenset({"failed", "rolled_back"})


@dataclass(frozen=True)
class FleetTarget:
    """One fleet's desired release of one model."""

    fleet: str
    selector: Mapping[str, str]
    model: str
    release_id: int
    manifest_digest: str
    model_digest: str
    set_at: datetime


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A fleet selects a device when every selector label equals the device's (empty: all)."""
    return all(labels.get(k) == v for k, v in selector.items())


def desired_models(labels: Mapping[str, str], targets: Iterable[FleetTarget]) -> list[FleetTarget]:
    """The release a device with `labels` must run, per model, sorted by model name.

    Precedence: among the fleets that select the device and want a release of a model, the
    fleet whose desired release was set most recently wins; on equal times the fleet whose
    name sorts first wins. So the latest rollout to reach a device decides what it runs,
    whichever fleet it came through, and the answer never depends on row order.
    """
    candidates: dict[str, list[FleetTarget]] = {}
    for t in targets:
        if selects(t.selector, labels):
            candidates.setdefault(t.model, []).append(t)
    winners = []
    for model in sorted(candidates):
        by_name = sorted(candidates[model], key=lambda t: t.fleet)
        # sorted() is stable with reverse=True too: equal times keep the name order.
        winners.append(sorted(by_name, key=lambda t: t.set_at, reverse=True)[0])
    return winners


def state_etag(models: Iterable[Mapping[str, object]]) -> str:
    """Hex SHA-256 of the canonical JSON of the models list, sorted by model name."""
    ordered = sorted((dict(m) for m in models), key=lambda m: str(m["model"]))
    canonical = json.dumps(ordered, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def target_dict(t: FleetTarget) -> dict[str, object]:
    """The wire shape of a desired model (what the etag covers)."""
    d = asdict(t)
    return {k: d[k] for k in ("model", "release_id", "manifest_digest", "model_digest", "fleet")}


def phase_on_release(
    reported_release_id: int | None, reported_phase: str | None, target_release_id: int
) -> str:
    """A device's phase for a rollout: what it reported on the target release, else pending."""
    if reported_phase is None or reported_release_id != target_release_id:
        return "pending"
    return reported_phase


def rollout_progress(phases: Iterable[str]) -> dict[str, int]:
    """How many targeted devices are in each phase (every phase listed, zeros included)."""
    counts = Counter(phases)
    return {p: counts.get(p, 0) for p in PHASES}


def rollout_state(phases: Iterable[str]) -> str:
    """`succeeded` when every device is active (or there are none), `failed` when every
    device has finished and at least one failed or rolled back, else `running`."""
    seen = list(phases)
    if all(p == "active" for p in seen):
        return "succeeded"
    if all(p == "active" or p in _FAILED for p in seen):
        return "failed"
    return "running"
