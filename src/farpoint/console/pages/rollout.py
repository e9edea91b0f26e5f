"""One rollout: its batches, every device's progress, and the MLOps engineer's controls."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import ago, empty_state, section, stamp
from farpoint.console.widgets import table as plain_table
from farpoint.sdk import Client
from farpoint.wire.rollouts import ROLLOUT_DONE, RolloutOut

__all__ = ["PHASE_COLOURS", "STATE_COLOURS", "register"]

PHASE_COLOURS = {
    "active": "positive",
    "failed": "negative",
    "rolled_back": "orange-8",
    "pending": "grey-6",
    "downloading": "blue-5",
    "verifying": "blue-7",
    "installing": "indigo-6",
}
STATE_COLOURS = {
    "succeeded": "positive",
    "failed": "negative",
    "rolled_back": "orange-8",
    "aborted": "orange-8",
    "running": "primary",
    "paused": "amber-8",
    "waiting": "grey-6",
    "stopped": "orange-8",
}
_STEPS = {"pending": 0, "downloading": 1, "verifying": 2, "installing": 3, "active": 4}
_CONTROLLERS = frozenset({"mlops-engineer", "admin"})


def _batch_name(r: RolloutOut, index: int) -> str:
    return "Canary" if r.strategy == "canary" and index == 0 else f"Batch {index}"


def _awaiting_approval(r: RolloutOut) -> bool:
    return r.state == "paused" and (r.paused_reason or "").startswith("awaiting approval")


def _header(r: RolloutOut) -> None:
    before = "nothing" if r.from_release_id is None else f"release {r.from_release_id}"
    with ui.row().classes("items-center gap-3"):
        ui.badge(r.state, color=STATE_COLOURS.get(r.state, "grey-6")).classes("rollout-state")
        ui.label(
            f"{r.model}: {before} → release {r.to_release_id} on fleet {r.fleet} · "
            f"{r.strategy} · started {stamp(r.created_at)} by {r.created_by}"
        ).classes("text-body1")
    s = r.settings
    window = "no health window" if s.health.window_s == 0 else f"{s.health.window_s} s window"
    ui.label(
        f"success threshold {s.success_threshold:g} · max failures {s.max_failures} · "
        f"{window} · pending timeout {s.pending_timeout_s} s · "
        f"{'approval between batches' if s.approve_between_batches else 'no approval step'} · "
        f"{'rollback on failure' if s.rollback_on_failure else 'no rollback'}"
    ).classes("text-caption text-grey-8")
    if r.paused_reason:
        ui.label(f"Paused: {r.paused_reason}").classes("text-body2 text-amber-9 paused-reason")
    if r.reason:
        colour = "text-negative" if r.state in ("failed", "rolled_back") else "text-grey-8"
        ui.label(r.reason).classes(f"text-body2 {colour} stop-reason")


def _batches(r: RolloutOut) -> None:
    if not r.batches:
        empty_state("The fleet had no devices when the rollout was created.")
        return
    for b in r.batches:
        with ui.card().props("flat bordered").classes("w-full gap-1 batch-card"):
            with ui.row().classes("items-center gap-3"):
                ui.label(_batch_name(r, b.index)).classes("text-subtitle1 text-weight-bold")
                ui.badge(b.state, color=STATE_COLOURS.get(b.state, "grey-6"))
                ui.label(
                    f"{b.healthy} of {b.size} healthy · {b.failed} failed · "
                    f"{b.in_progress} in progress · {b.timed_out} silent"
                ).classes("text-body2")
                if b.started_at:
                    ui.label(f"started {stamp(b.started_at)}").classes("text-caption text-grey-7")
            colour = "negative" if b.failed else "positive"
            ui.linear_progress(value=b.healthy / b.size, show_value=False, size="10px").props(
                f"rounded color={colour} track-color=grey-3"
            )


def _devices(r: RolloutOut) -> None:
    rows = []
    for d in r.devices:
        step = 5 if d.healthy else _STEPS.get(d.phase, 0)
        bar = "▰" * step + "▱" * (5 - step) if d.phase not in ("failed", "rolled_back") else "✗"
        rows.append(
            {
                "device": d.device_name,
                "batch": _batch_name(r, d.batch),
                "progress": bar,
                "phase": d.phase
                + (" · committed" if d.committed else "")
                + (" · healthy" if d.healthy else ""),
                "silent": "silent" if d.timed_out else "",
                "release": "—" if d.assigned_release_id is None else d.assigned_release_id,
                "error": d.error or "",
                "updated": ago(d.updated_at),
            }
        )
    plain_table(
        [
            ("device", "Device"),
            ("batch", "Batch"),
            ("progress", "Progress"),
            ("phase", "Phase"),
            ("silent", "Timed out"),
            ("release", "Told to run"),
            ("error", "Error"),
            ("updated", "Updated"),
        ],
        rows,
        key="device",
    ).classes("rollout-devices")


def _controls(r: RolloutOut, act: Callable[[str], object]) -> None:
    if r.state in ROLLOUT_DONE:
        return
    with ui.row().classes("gap-2"):
        if _awaiting_approval(r):
            ui.button(
                f"Approve batch {(r.current_batch or 0) + 1}", on_click=lambda: act("approve")
            ).props("color=positive")
        elif r.state == "paused":
            ui.button("Resume", on_click=lambda: act("resume")).props("color=primary")
        else:
            ui.button("Pause", on_click=lambda: act("pause")).props("color=amber-8")
        ui.button("Abort", on_click=lambda: act("abort")).props("color=negative outline")


def register() -> None:
    @ui.page("/rollouts/{rollout_id}", title="Rollout · Farpoint", response_timeout=30)
    async def rollout_page(request: Request, rollout_id: int) -> Response | None:
        api = await open_view(request, "mlops-engineer")
        if not isinstance(api, Api):
            return api
        me = await api.call(lambda c: c.me())
        may_control = me is not None and bool({str(x) for x in me.roles} & _CONTROLLERS)
        section(f"Rollout #{rollout_id}", "batches and every device; refreshes every 3 s")
        ui.link("← all rollouts", "/mlops").classes("text-caption")

        shown: list[RolloutOut | None] = [None]

        async def act(verb: str) -> None:
            calls: dict[str, Callable[[Client], RolloutOut]] = {
                "pause": lambda c: c.pause_rollout(rollout_id),
                "resume": lambda c: c.resume_rollout(rollout_id),
                "approve": lambda c: c.approve_rollout(rollout_id),
                "abort": lambda c: c.abort_rollout(rollout_id),
            }
            done = await api.call(calls[verb])
            if done is not None:
                ui.notify(f"Rollout {rollout_id}: {done.state}", type="positive")
            await poll()

        @ui.refreshable
        def board(r: RolloutOut | None) -> None:
            if r is None:
                empty_state("This rollout cannot be shown (see the message above).")
                return
            _header(r)
            if may_control:
                _controls(r, act)
            section("Batches", "the canary first; each starts when the one before is healthy")
            _batches(r)
            section("Devices", f"{len(r.devices)} snapshotted when the rollout was created")
            if r.devices:
                _devices(r)

        async def poll() -> None:
            r = await api.call(lambda c: c.get_rollout(rollout_id))
            # Redraw only on change: a redraw replaces the buttons, and a click landing on
            # one being replaced would be lost.
            if r is not None and r != shown[0]:
                shown[0] = r
                board.refresh(r)

        shown[0] = await api.call(lambda c: c.get_rollout(rollout_id))
        board(shown[0])
        ui.timer(3.0, poll)
        return None
