"""`farpoint rollout ...`: deliver a release to a fleet in batches and watch it land.

Also `farpoint fleet history` and `farpoint device desired-state`, which belong to the
same story (what runs where, and why) and are added to those groups here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.live import Live
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.devices import device_app, fleet_app
from farpoint.cli.params import Json, parse_duration, parse_pairs
from farpoint.cli.rollout_board import board, progress, releases, styled
from farpoint.cli.session import client
from farpoint.wire.rollouts import RolloutOut

__all__ = ["EXIT_STILL_RUNNING", "rollout_app"]

rollout_app = typer.Typer(help="Rollouts of releases to fleets.", no_args_is_help=True)

EXIT_STILL_RUNNING = 3
"""`rollout create --wait`: the rollout had not ended when --timeout ran out."""


def _finish(r: RolloutOut) -> None:
    if r.state != "succeeded":
        failed = [d.device_name for d in r.devices if d.phase in ("failed", "rolled_back")]
        which = f" on {', '.join(failed[:10])}" if failed else ""
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        render.error(f"rollout {r.id} {r.state}{which}{more}; see `farpoint rollout show {r.id}`")
        raise typer.Exit(1)


def _window(text: str) -> int:
    return 0 if text.strip() in ("0", "0s") else parse_duration(text, "--health-window")


def _strategy(explicit: str | None, canary: bool, batches: bool) -> str:
    if explicit is not None:
        return explicit
    if canary:
        return "canary"
    return "batches" if batches else "all-at-once"


@rollout_app.command("create")
def rollout_create(
    ctx: typer.Context,
    fleet: Annotated[str, typer.Option("--fleet", help="The fleet to deliver to.")],
    release: Annotated[int, typer.Option("--release", help="The release id to deliver.")],
    strategy: Annotated[
        str | None,
        typer.Option(
            "--strategy",
            help="all-at-once, canary or batches (default: from the options given).",
            show_default=False,
        ),
    ] = None,
    canary: Annotated[
        int | None, typer.Option("--canary", help="Devices in the canary batch.")
    ] = None,
    canary_percent: Annotated[
        float | None, typer.Option("--canary-percent", help="Canary as a share of the fleet.")
    ] = None,
    canary_selector: Annotated[
        list[str] | None,
        typer.Option("--canary-selector", help="KEY=VALUE: devices picked first for the canary."),
    ] = None,
    batches: Annotated[
        int | None, typer.Option("--batches", help="Split the (rest of the) fleet in N batches.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Devices per batch.")
    ] = None,
    batch_percent: Annotated[
        float | None, typer.Option("--batch-percent", help="Each batch as a share of them.")
    ] = None,
    success_threshold: Annotated[
        float, typer.Option("--success-threshold", help="Share of a batch that must be healthy.")
    ] = 1.0,
    max_failures: Annotated[
        int, typer.Option("--max-failures", help="Failed devices tolerated in all.")
    ] = 0,
    health_window: Annotated[
        str, typer.Option("--health-window", help="Health window after the switch (0: none).")
    ] = "60s",
    max_error_rate: Annotated[float, typer.Option("--max-error-rate")] = 0.05,
    min_requests: Annotated[int, typer.Option("--min-requests")] = 20,
    max_latency_p95_ms: Annotated[float | None, typer.Option("--max-latency-p95-ms")] = None,
    max_crashes: Annotated[int, typer.Option("--max-crashes")] = 1,
    approve_between_batches: Annotated[
        bool,
        typer.Option("--approve-between-batches", help="Wait for a person before each batch."),
    ] = False,
    no_rollback: Annotated[
        bool,
        typer.Option("--no-rollback", help="On failure, leave devices on what they were given."),
    ] = False,
    pending_timeout: Annotated[
        str, typer.Option("--pending-timeout", help="A silent device stops blocking after this.")
    ] = "1h",
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the batches and devices until it ends.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait with --wait.")
    ] = 300.0,
    as_json: Json = False,
) -> None:
    """Start delivering a release to a fleet, all at once, canary first, or in batches.

    With --wait: exit 0 when it succeeded, 1 when it failed, was rolled back or aborted,
    3 when it had not ended within --timeout.
    """
    spec_canary: dict[str, Any] | None = None
    if canary is not None or canary_percent is not None:
        spec_canary = {"count": canary, "percent": canary_percent}
        spec_canary["selector"] = parse_pairs(canary_selector, "--canary-selector")
    spec_batches: dict[str, Any] | None = None
    if batches is not None or batch_size is not None or batch_percent is not None:
        spec_batches = {"count": batches, "size": batch_size, "percent": batch_percent}
    api = client(ctx)
    rollout = api.create_rollout(
        fleet,
        release,
        strategy=_strategy(strategy, spec_canary is not None, spec_batches is not None),  # type: ignore[arg-type]
        canary=spec_canary,
        batches=spec_batches,
        success_threshold=success_threshold,
        max_failures=max_failures,
        health={
            "window_s": _window(health_window),
            "max_error_rate": max_error_rate,
            "min_requests": min_requests,
            "max_latency_p95_ms": max_latency_p95_ms,
            "max_crashes": max_crashes,
        },
        approve_between_batches=approve_between_batches,
        rollback_on_failure=not no_rollback,
        pending_timeout_s=parse_duration(pending_timeout, "--pending-timeout"),
    )
    if wait:
        try:
            if as_json:
                rollout = api.wait_rollout(rollout.id, timeout)
            else:
                with Live(board(rollout), console=render.console, refresh_per_second=4) as live:
                    rollout = api.wait_rollout(
                        rollout.id, timeout, on_update=lambda r: live.update(board(r))
                    )
        except TimeoutError as exc:
            render.error(str(exc))
            raise typer.Exit(EXIT_STILL_RUNNING) from None
    if as_json:
        render.emit_json(rollout)
    elif not wait:
        render.console.print(board(rollout))
    if wait:
        _finish(rollout)


@rollout_app.command("list")
def rollout_list(
    ctx: typer.Context,
    fleet: Annotated[str | None, typer.Option("--fleet", help="Only this fleet's.")] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="Only in this state (repeatable).")
    ] = None,
    as_json: Json = False,
) -> None:
    """List rollouts."""
    rollouts = client(ctx).list_rollouts(fleet, tuple(state or ()))
    if as_json:
        render.emit_json(rollouts)
        return
    render.table(
        ["id", "fleet", "model", "releases", "strategy", "state", "batch", "devices", "created"],
        (
            (
                r.id,
                r.fleet,
                r.model,
                releases(r),
                r.strategy,
                styled(r.state),
                "-" if r.current_batch is None else f"{r.current_batch + 1}/{len(r.batches)}",
                progress(r),
                r.created_at,
            )
            for r in rollouts
        ),
        title="rollouts",
    )


@rollout_app.command("show")
def rollout_show(ctx: typer.Context, rollout_id: int, as_json: Json = False) -> None:
    """Show a rollout: its batches and the progress of each device."""
    rollout = client(ctx).get_rollout(rollout_id)
    if as_json:
        render.emit_json(rollout)
        return
    render.console.print(board(rollout))


def _act(ctx: typer.Context, rollout_id: int, verb: str, as_json: bool) -> None:
    api = client(ctx)
    call = {
        "pause": api.pause_rollout,
        "resume": api.resume_rollout,
        "approve": api.approve_rollout,
        "abort": api.abort_rollout,
    }[verb]
    rollout = call(rollout_id)
    if as_json:
        render.emit_json(rollout)
        return
    render.console.print(board(rollout))


@rollout_app.command("pause")
def rollout_pause(ctx: typer.Context, rollout_id: int, as_json: Json = False) -> None:
    """Start no further batch until resumed (failures still stop it)."""
    _act(ctx, rollout_id, "pause", as_json)


@rollout_app.command("resume")
def rollout_resume(ctx: typer.Context, rollout_id: int, as_json: Json = False) -> None:
    """Go on with a rollout a person paused."""
    _act(ctx, rollout_id, "resume", as_json)


@rollout_app.command("approve")
def rollout_approve(ctx: typer.Context, rollout_id: int, as_json: Json = False) -> None:
    """Start the batch a rollout is waiting for approval of."""
    _act(ctx, rollout_id, "approve", as_json)


@rollout_app.command("abort")
def rollout_abort(ctx: typer.Context, rollout_id: int, as_json: Json = False) -> None:
    """End a rollout where it is; devices keep what they were assigned."""
    _act(ctx, rollout_id, "abort", as_json)


@fleet_app.command("history")
def fleet_history(
    ctx: typer.Context,
    name: str,
    at: Annotated[
        str | None,
        typer.Option("--at", help="ISO 8601 instant, such as 2026-03-01T14:05:00Z (default now)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Which release each device of a fleet was serving at an instant."""
    history = client(ctx).fleet_history(name, at)
    if as_json:
        render.emit_json(history)
        return
    models = sorted({m for d in history.devices for m in d.releases})
    render.table(
        ["device", "id", *models],
        (
            (d.device_name, d.device_id, *(d.releases.get(m) for m in models))
            for d in history.devices
        ),
        title=f"fleet {history.fleet} at {render.when(history.at)}",
    )


@device_app.command("desired-state")
def device_desired_state(ctx: typer.Context, device_id: str, as_json: Json = False) -> None:
    """What a device is told to run per model, the fleets competing for it, and why."""
    out = client(ctx).device_desired_state(device_id)
    if as_json:
        render.emit_json(out)
        return
    render.console.print(Text(f"device {out.device_name} ({out.device_id})", style="bold"))
    if not out.decisions:
        render.console.print(
            Text("no fleet selecting it wants a release of any model", style="dim")
        )
    for d in out.decisions:
        release = "nothing" if d.release_id is None else f"release {d.release_id}"
        line = Text(f"{d.model}: {release}", style="bold")
        line.append(f" — {d.reason}", style="")
        render.console.print(line)
        render.table(
            ["fleet", "set at", "fleet's release", "rollout", "gives", "why"],
            (
                (
                    Text(c.fleet, style="green" if c.fleet == d.winner else ""),
                    c.set_at,
                    c.fleet_release_id,
                    "-" if c.rollout_id is None else f"{c.rollout_id} ({c.rollout_state})",
                    c.release_id,
                    c.why,
                )
                for c in d.candidates
            ),
        )
