"""Pure rollout decisions: batch plans, batch verdicts, the next action, per-device answers.

Plain functions over plain data, tested without a database (docs/fleet-delivery.md).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from farpoint.server.fleets.rules import selects

__all__ = [
    "AWAITING_APPROVAL",
    "FAILED_PHASES",
    "PHASES",
    "Action",
    "Assignment",
    "BatchSplit",
    "Governing",
    "InFleet",
    "Standing",
    "Tally",
    "batch_verdict",
    "classify",
    "device_phase",
    "first_with_release",
    "need_healthy",
    "next_action",
    "order_devices",
    "phase_counts",
    "plan_batches",
    "resolve_in_fleet",
    "share",
]

AWAITING_APPROVAL = "awaiting approval of batch "
"""How `paused_reason` starts while a rollout waits for a person to approve its next batch."""
PHASES = ("pending", "downloading", "verifying", "installing", "active", "failed", "rolled_back")
FAILED_PHASES = frozenset({"failed", "rolled_back"})
_EPS = 1e-9

Class = Literal["healthy", "failed", "timed_out", "in_progress"]
Verdict = Literal["succeeded", "failed", "waiting"]
ActionKind = Literal["wait", "start_next", "await_approval", "succeed", "fail", "roll_back"]


# -- plans ---------------------------------------------------------------------------


def order_devices(
    devices: Iterable[tuple[str, str, Mapping[str, str]]], selector: Mapping[str, str]
) -> list[str]:
    """Device ids in rollout order: those the canary selector matches first, then by name.

    `devices` are (id, name, labels); an empty selector prefers nobody.
    """

    def key(d: tuple[str, str, Mapping[str, str]]) -> tuple[bool, str]:
        preferred = bool(selector) and selects(selector, d[2])
        return (not preferred, d[1])

    return [d[0] for d in sorted(devices, key=key)]


def share(n: int, percent: float) -> int:
    """`percent` of `n` devices, rounded up, at least one of a non-empty set, at most `n`."""
    if n <= 0:
        return 0
    return min(n, max(1, math.ceil(percent * n / 100 - _EPS)))


@dataclass(frozen=True)
class BatchSplit:
    """Exactly one of: `count` batches, batches of `size`, batches of `percent` of them."""

    count: int | None = None
    size: int | None = None
    percent: float | None = None


def _split(n: int, how: BatchSplit | None) -> list[int]:
    if n <= 0:
        return []
    if how is None:
        return [n]
    if how.count is not None:
        k = min(how.count, n)
        return [n // k + (1 if i < n % k else 0) for i in range(k)]
    size = how.size if how.size is not None else share(n, how.percent or 100.0)
    sizes = [size] * (n // size)
    return [*sizes, n % size] if n % size else sizes


def plan_batches(
    n: int,
    strategy: str,
    *,
    canary_count: int | None = None,
    canary_percent: float | None = None,
    split: BatchSplit | None = None,
) -> list[int]:
    """Batch sizes for `n` devices; they sum to `n` and none is empty.

    all-at-once: one batch. canary: the canary (count, or percent of the fleet) then the
    rest split by `split` (one batch without it). batches: all of them split by `split`.
    """
    if n <= 0:
        return []
    if strategy == "all-at-once":
        return [n]
    if strategy == "canary":
        if canary_count is not None:
            first = min(canary_count, n)
        else:
            first = share(n, canary_percent if canary_percent is not None else 0.0)
        return [first, *_split(n - first, split)]
    if strategy == "batches":
        return _split(n, split)
    raise ValueError(f"unknown strategy {strategy!r}")


# -- verdicts ------------------------------------------------------------------------


def device_phase(
    rollout_id: int,
    to_release_id: int,
    release_id: int | None,
    phase: str,
    committed: bool,
    reported_rollout_id: int | None,
) -> tuple[str, bool]:
    """(phase, committed) of a device for a rollout, from one entry of its status report.

    Only a report about the rollout's release counts; a failure echoed under another
    rollout's id is an old attempt (a new rollout earns a new try), so it counts as pending.
    """
    if release_id != to_release_id:
        return "pending", False
    if phase in FAILED_PHASES and reported_rollout_id not in (None, rollout_id):
        return "pending", False
    return phase, committed and phase == "active"


def classify(phase: str, committed: bool, timed_out: bool, window_s: int) -> Class:
    """Healthy: active and committed (its health window passed; no window when it is 0)."""
    if phase == "active" and (committed or window_s == 0):
        return "healthy"
    if phase in FAILED_PHASES:
        return "failed"
    return "timed_out" if timed_out else "in_progress"


@dataclass(frozen=True)
class Tally:
    """A batch's devices by class."""

    healthy: int = 0
    failed: int = 0
    timed_out: int = 0
    in_progress: int = 0

    @property
    def size(self) -> int:
        return self.healthy + self.failed + self.timed_out + self.in_progress

    @classmethod
    def of(cls, classes: Iterable[str]) -> Tally:
        c = Counter(classes)
        return cls(c["healthy"], c["failed"], c["timed_out"], c["in_progress"])


def need_healthy(present: int, threshold: float) -> int:
    """Healthy devices a batch needs: ceil(threshold × present), and at least one."""
    return max(1, math.ceil(threshold * present - _EPS))


def batch_verdict(t: Tally, threshold: float) -> Verdict:
    """`succeeded` once enough present devices are healthy (timed-out ones are counted
    out); `failed` when a device failed and the threshold can no longer be reached by the
    devices still working; else `waiting`."""
    need = need_healthy(t.size - t.timed_out, threshold)
    if t.healthy >= need:
        return "succeeded"
    if t.failed and t.healthy + t.in_progress < need:
        return "failed"
    return "waiting"


@dataclass(frozen=True)
class Standing:
    """Where a rollout stands, as the controller sees it."""

    state: str
    current_batch: int
    """-1 before any batch started."""
    batch_count: int
    tally: Tally
    """The current batch's devices."""
    failures: int
    """Failed and rolled-back devices over the whole rollout."""
    max_failures: int
    success_threshold: float
    approve_between_batches: bool
    rollback_on_failure: bool


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str = ""


def next_action(st: Standing) -> Action:
    """What the controller does next. Failure stops a rollout even while it is paused."""
    if st.state not in ("running", "paused"):
        return Action("wait")
    stop: ActionKind = "roll_back" if st.rollback_on_failure else "fail"
    if st.failures > st.max_failures:
        return Action(
            stop,
            f"{st.failures} failed or rolled-back device(s) exceed max_failures {st.max_failures}",
        )
    verdict = batch_verdict(st.tally, st.success_threshold) if st.current_batch >= 0 else None
    if verdict == "failed":
        need = need_healthy(st.tally.size - st.tally.timed_out, st.success_threshold)
        return Action(
            stop,
            f"batch {st.current_batch} can no longer reach its success threshold: "
            f"{st.tally.healthy} healthy, {st.tally.failed} failed, {need} healthy needed",
        )
    if st.state == "paused":
        return Action("wait")
    if st.batch_count == 0:
        return Action("succeed", "no devices to deliver to")
    if st.current_batch < 0:
        return Action("start_next")
    if verdict != "succeeded":
        return Action("wait")
    if st.current_batch >= st.batch_count - 1:
        return Action("succeed")
    if st.approve_between_batches:
        return Action("await_approval", f"{AWAITING_APPROVAL}{st.current_batch + 1}")
    return Action("start_next")


def phase_counts(phases: Iterable[str]) -> dict[str, int]:
    """Devices per phase, every phase listed (zeros included)."""
    c = Counter(phases)
    return {p: c.get(p, 0) for p in PHASES}


# -- what a fleet's rollout gives one device -------------------------------------------


@dataclass(frozen=True)
class Governing:
    """The rollout that last set a fleet's release of a model."""

    id: int
    state: str
    to_release_id: int
    from_release_id: int | None
    from_rollout_id: int | None
    batch_count: int
    current_batch: int


@dataclass(frozen=True)
class Assignment:
    """A device's row in a rollout."""

    batch: int
    assigned_release_id: int | None
    previous_release_id: int | None
    previous_rollout_id: int | None


@dataclass(frozen=True)
class InFleet:
    """What one fleet gives a device for a model, and why."""

    release_id: int | None
    rollout_id: int | None
    batch: int | None
    why: str


def resolve_in_fleet(
    fleet_release_id: int, governing: Governing | None, row: Assignment | None
) -> InFleet:
    """The release a fleet gives a device: its desired release when no rollout set it;
    else the rollout's assignment for the device (the new release once its batch started,
    its previous release before that or after a rollback); a device that joined the fleet
    after the rollout was created gets the previous release until the last batch starts,
    and never a release of a rollout that failed or was rolled back."""
    g = governing
    if g is None:
        return InFleet(fleet_release_id, None, None, "the fleet's release, set without a rollout")
    if row is not None:
        if row.assigned_release_id is not None:
            return InFleet(
                row.assigned_release_id, g.id, row.batch, f"batch {row.batch} of rollout {g.id}"
            )
        if row.batch > g.current_batch and g.state in ("running", "paused"):
            why = f"waiting in batch {row.batch} of rollout {g.id}: keeps its previous release"
        elif row.batch > g.current_batch:
            why = (
                f"batch {row.batch} of rollout {g.id} never started ({g.state}): keeps its "
                "previous release"
            )
        else:
            why = f"returned to its previous release by rollout {g.id} ({g.state})"
        return InFleet(row.previous_release_id, row.previous_rollout_id, row.batch, why)
    last_started = g.current_batch >= g.batch_count - 1
    if g.state in ("failed", "rolled_back") or not last_started:
        why = f"joined during rollout {g.id} ({g.state}): the fleet's previous release"
        return InFleet(g.from_release_id, g.from_rollout_id, None, why)
    return InFleet(g.to_release_id, g.id, None, f"joined after rollout {g.id} reached every batch")


def first_with_release(options: Sequence[InFleet]) -> int | None:
    """Index of the first option that gives a release (precedence falls through)."""
    for i, o in enumerate(options):
        if o.release_id is not None:
            return i
    return None
