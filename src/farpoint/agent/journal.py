"""The per-model journal of the update in flight: `models/<model>/journal.json`.

`current.json` alone says what is served; the journal says what the agent was doing
about it, so a restart (a crash, SIGKILL, a power cut) can finish or undo it:

    downloading → installed → switched → committed
                                      ↘ rolled_back
    (failed: refused before the switch; nothing served changed)

Each step is written before the act it announces (write, fsync, rename, fsync the
folder), so after any interruption the journal names the intent and the restart
completes it: a `switched` journal whose `current.json` still names the previous slot
is switched again, a `rolled_back` one whose `current.json` still names the target is
rolled back again. The journal also remembers which releases were rolled back under
which rollout, so they are not tried again under the same one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from .payloads import HealthPolicy, PayloadError, parse_health
from .state import CurrentRelease, StateError, atomic_write, dump_json, read_json

__all__ = [
    "JOURNAL_FILE",
    "STEPS",
    "Journal",
    "RolledBack",
    "Step",
    "load_journal",
    "save_journal",
]

JOURNAL_FILE = "journal.json"
Step = Literal["downloading", "installed", "switched", "committed", "rolled_back", "failed"]
STEPS: tuple[str, ...] = (
    "downloading",
    "installed",
    "switched",
    "committed",
    "rolled_back",
    "failed",
)
MAX_REMEMBERED = 32
"""Rolled-back releases remembered per model (the most recent ones)."""


@dataclass(frozen=True)
class RolledBack:
    """A release this device rolled back: not to be tried again under the same rollout."""

    release_id: int
    manifest_digest: str
    rollout_id: int | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Journal:
    model: str
    release_id: int
    """The release this update brings (the target)."""
    manifest_digest: str
    rollout_id: int | None
    step: Step
    previous: CurrentRelease | None
    """What was served when the update began: the slot a rollback returns to."""
    previous_committed: bool
    """Whether `previous` had passed its own health window."""
    target: CurrentRelease | None = None
    """The slot the target was installed in (from `installed` on)."""
    health: HealthPolicy | None = None
    switched_at: float | None = None
    window_end: float | None = None
    crashes: int = 0
    """Agent restarts counted inside the health window."""
    reason: str | None = None
    """Why it was rolled back or refused."""
    rolled_back: tuple[RolledBack, ...] = ()

    def but(self, **changes: Any) -> Journal:
        return dataclasses.replace(self, **changes)

    def remember(self, entry: RolledBack) -> Journal:
        kept = [
            r
            for r in self.rolled_back
            if (r.release_id, r.rollout_id) != (entry.release_id, entry.rollout_id)
        ]
        return self.but(rolled_back=(*kept, entry)[-MAX_REMEMBERED:])

    def rolled_back_under(
        self, release_id: int, manifest_digest: str, rollout_id: int | None
    ) -> RolledBack | None:
        """The record of `release_id` rolled back under `rollout_id`, if it was."""
        for r in self.rolled_back:
            if (r.release_id, r.manifest_digest, r.rollout_id) == (
                release_id,
                manifest_digest,
                rollout_id,
            ):
                return r
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "release_id": self.release_id,
            "manifest_digest": self.manifest_digest,
            "rollout_id": self.rollout_id,
            "step": self.step,
            "previous": self.previous.to_json() if self.previous else None,
            "previous_committed": self.previous_committed,
            "target": self.target.to_json() if self.target else None,
            "health": dict(self.health) if self.health is not None else None,
            "switched_at": self.switched_at,
            "window_end": self.window_end,
            "crashes": self.crashes,
            "reason": self.reason,
            "rolled_back": [r.to_json() for r in self.rolled_back],
        }


def _optional_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer or null, got {value!r}")
    return value


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number or null, got {value!r}")
    return float(value)


def _parse(doc: dict[str, Any]) -> Journal:
    step = doc["step"]
    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}")
    previous, target, health = doc.get("previous"), doc.get("target"), doc.get("health")
    return Journal(
        model=str(doc["model"]),
        release_id=int(doc["release_id"]),
        manifest_digest=str(doc["manifest_digest"]),
        rollout_id=_optional_int(doc.get("rollout_id")),
        step=cast(Step, step),
        previous=CurrentRelease.from_json(previous) if previous is not None else None,
        previous_committed=bool(doc.get("previous_committed", False)),
        target=CurrentRelease.from_json(target) if target is not None else None,
        health=parse_health(health, "journal health") if health is not None else None,
        switched_at=_optional_float(doc.get("switched_at")),
        window_end=_optional_float(doc.get("window_end")),
        crashes=int(doc.get("crashes", 0)),
        reason=None if doc.get("reason") is None else str(doc["reason"]),
        rolled_back=tuple(
            RolledBack(
                release_id=int(r["release_id"]),
                manifest_digest=str(r["manifest_digest"]),
                rollout_id=_optional_int(r.get("rollout_id")),
                reason=str(r.get("reason", "")),
            )
            for r in doc.get("rolled_back", [])
        ),
    )


def load_journal(model_dir: Path) -> Journal | None:
    """The model's journal; None when there is none; StateError when it is unreadable."""
    path = model_dir / JOURNAL_FILE
    if not path.exists():
        return None
    doc = read_json(path)
    try:
        return _parse(doc)
    except (KeyError, TypeError, ValueError, PayloadError) as exc:
        raise StateError(f"{path} is incomplete: {exc}") from exc


def save_journal(model_dir: Path, journal: Journal) -> None:
    atomic_write(model_dir / JOURNAL_FILE, dump_json(journal.to_json()))
