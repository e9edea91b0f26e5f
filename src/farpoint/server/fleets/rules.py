"""Pure rules: which fleets select a device, in which order they decide, the state's etag.

Plain functions over plain data, tested without a database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

__all__ = ["FleetTarget", "candidates_by_model", "selects", "state_etag"]


@dataclass(frozen=True)
class FleetTarget:
    """One fleet's desired release of one model, and the rollout that set it (if any)."""

    fleet: str
    selector: Mapping[str, str]
    model: str
    release_id: int
    manifest_digest: str
    model_digest: str
    set_at: datetime
    rollout_id: int | None = None


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """A fleet selects a device when every selector label equals the device's (empty: all)."""
    return all(labels.get(k) == v for k, v in selector.items())


def candidates_by_model(
    labels: Mapping[str, str], targets: Iterable[FleetTarget]
) -> dict[str, list[FleetTarget]]:
    """Per model, the fleets that select a device with `labels`, in precedence order.

    Precedence: the fleet whose desired release was set most recently comes first; on
    equal times the fleet whose name sorts first. So the latest rollout to reach a device
    decides what it runs, whichever fleet it came through, and the answer never depends
    on row order. Models are in name order.
    """
    found: dict[str, list[FleetTarget]] = {}
    for t in targets:
        if selects(t.selector, labels):
            found.setdefault(t.model, []).append(t)
    out = {}
    for model in sorted(found):
        by_name = sorted(found[model], key=lambda t: t.fleet)
        # sorted() is stable with reverse=True too: equal times keep the name order.
        out[model] = sorted(by_name, key=lambda t: t.set_at, reverse=True)
    return out


def state_etag(
    models: Iterable[Mapping[str, object]], diagnostics: Mapping[str, object] | None = None
) -> str:
    """Hex SHA-256 of the canonical JSON of the models list (sorted by model name) and the
    diagnostics request: anything a device acts on changes it."""
    ordered = sorted((dict(m) for m in models), key=lambda m: str(m["model"]))
    doc = {"models": ordered, "diagnostics": dict(diagnostics) if diagnostics else None}
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
