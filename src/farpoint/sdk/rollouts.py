"""SDK calls for rollouts, fleet history and why a device runs what it runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from farpoint.sdk._http import _Base, segment
from farpoint.wire.devices import HealthPolicy
from farpoint.wire.rollouts import (
    ROLLOUT_DONE,
    BatchSpec,
    CanarySpec,
    DeviceDesiredState,
    FleetHistory,
    RolloutCreate,
    RolloutOut,
    RolloutSummary,
    Strategy,
)

__all__ = ["ROLLOUT_DONE", "RolloutCalls", "progress_text"]


def _spec(value: Any, model: type[CanarySpec] | type[BatchSpec]) -> Any:
    if value is None or isinstance(value, model):
        return value
    return model.model_validate(value)


class RolloutCalls(_Base):
    def create_rollout(
        self,
        fleet: str,
        release_id: int,
        *,
        strategy: Strategy = "all-at-once",
        canary: CanarySpec | Mapping[str, Any] | None = None,
        batches: BatchSpec | Mapping[str, Any] | None = None,
        success_threshold: float = 1.0,
        max_failures: int = 0,
        health: HealthPolicy | Mapping[str, Any] | None = None,
        approve_between_batches: bool = False,
        rollback_on_failure: bool = True,
        pending_timeout_s: int = 3600,
    ) -> RolloutOut:
        """Start delivering a release to a fleet (docs/fleet-delivery.md, Rollouts).

        `canary` is `{"count": N}` or `{"percent": P}` with an optional `"selector"`;
        `batches` is `{"count": N}`, `{"size": N}` or `{"percent": P}`.
        """
        body = RolloutCreate(
            fleet=fleet,
            release_id=release_id,
            strategy=strategy,
            canary=_spec(canary, CanarySpec),
            batches=_spec(batches, BatchSpec),
            success_threshold=success_threshold,
            max_failures=max_failures,
            health=HealthPolicy.model_validate(dict(health or {}))
            if not isinstance(health, HealthPolicy)
            else health,
            approve_between_batches=approve_between_batches,
            rollback_on_failure=rollback_on_failure,
            pending_timeout_s=pending_timeout_s,
        )
        return self._one(RolloutOut, "POST", "rollouts", json=body.model_dump(mode="json"))

    def list_rollouts(
        self, fleet: str | None = None, states: tuple[str, ...] = ()
    ) -> list[RolloutSummary]:
        """Rollouts in creation order (without device rows), optionally of one fleet or in
        some states."""
        params: dict[str, Any] = {}
        if fleet is not None:
            params["fleet"] = fleet
        if states:
            params["state"] = list(states)
        return self._all(RolloutSummary, "rollouts", params)

    def get_rollout(self, rollout_id: int) -> RolloutOut:
        """A rollout with its batches and every device's progress."""
        return self._one(RolloutOut, "GET", f"rollouts/{segment(rollout_id)}")

    def pause_rollout(self, rollout_id: int) -> RolloutOut:
        """Start no further batch until resumed."""
        return self._one(RolloutOut, "POST", f"rollouts/{segment(rollout_id)}/pause")

    def resume_rollout(self, rollout_id: int) -> RolloutOut:
        return self._one(RolloutOut, "POST", f"rollouts/{segment(rollout_id)}/resume")

    def approve_rollout(self, rollout_id: int) -> RolloutOut:
        """Start the batch a rollout is waiting for approval of."""
        return self._one(RolloutOut, "POST", f"rollouts/{segment(rollout_id)}/approve")

    def abort_rollout(self, rollout_id: int) -> RolloutOut:
        """End a rollout where it is; devices keep what they were assigned."""
        return self._one(RolloutOut, "POST", f"rollouts/{segment(rollout_id)}/abort")

    def wait_rollout(
        self,
        rollout_id: int,
        timeout_s: float = 300.0,
        poll_s: float = 0.5,
        *,
        on_update: Callable[[RolloutOut], None] | None = None,
    ) -> RolloutOut:
        """Poll a rollout until it ended (succeeded, failed, rolled back or aborted);
        TimeoutError otherwise. A rollout awaiting approval is still waited for.

        `on_update` sees every state polled (for progress displays).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            rollout = self.get_rollout(rollout_id)
            if on_update is not None:
                on_update(rollout)
            if rollout.state in ROLLOUT_DONE:
                return rollout
            if time.monotonic() >= deadline:
                paused = f", {rollout.paused_reason}" if rollout.paused_reason else ""
                raise TimeoutError(
                    f"rollout {rollout_id} is still {rollout.state}{paused} after "
                    f"{timeout_s:g} s ({progress_text(rollout)}); wait longer or inspect it "
                    f"with `farpoint rollout show {rollout_id}`"
                )
            time.sleep(poll_s)

    def fleet_history(self, name: str, at: datetime | str | None = None) -> FleetHistory:
        """What each device of a fleet was serving at instant `at` (default: now)."""
        params: dict[str, Any] = {}
        if isinstance(at, datetime):
            params["at"] = (at if at.tzinfo else at.replace(tzinfo=UTC)).isoformat()
        elif at is not None:
            params["at"] = at
        return self._one(FleetHistory, "GET", f"fleets/{segment(name)}/history", params=params)

    def device_desired_state(self, device_id: str) -> DeviceDesiredState:
        """What a device is told to run, with the fleets that compete for it and the winner."""
        return self._one(DeviceDesiredState, "GET", f"devices/{segment(device_id)}/desired-state")


def progress_text(rollout: RolloutSummary) -> str:
    """`2 active, 1 downloading`: the devices per phase, or that none reported yet."""
    counts = {phase: n for phase, n in rollout.progress.items() if n}
    if not counts:
        return "no devices"
    return ", ".join(f"{n} {phase}" for phase, n in counts.items())
