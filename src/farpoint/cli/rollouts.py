"""`farpoint rollout ...`: deliver a release to a fleet and watch it land."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json
from farpoint.cli.session import client
from farpoint.wire.devices import RolloutOut

__all__ = ["rollout_app"]

rollout_app = typer.Typer(help="Rollouts of releases to fleets.", no_args_is_help=True)

_SETTLED = {"active", "failed", "rolled_back"}
_STYLE = {
    "succeeded": "green",
    "active": "green",
    "failed": "red",
    "rolled_back": "red",
    "aborted": "red",
}


def _styled(word: str) -> Text:
    return Text(word, style=_STYLE.get(word, "yellow"))


def _releases(r: RolloutOut) -> str:
    before = "none" if r.from_release_id is None else str(r.from_release_id)
    return f"{before} → {r.to_release_id}"


def _progress(r: RolloutOut) -> str:
    counts = {phase: n for phase, n in r.progress.items() if n}
    if not counts:
        for d in r.devices:
            counts[d.phase] = counts.get(d.phase, 0) + 1
    return ", ".join(f"{n} {phase}" for phase, n in counts.items()) or "no devices"


def _board(r: RolloutOut) -> Group:
    """The rollout as a person watches it: state, a bar of settled devices, each device."""
    total = len(r.devices)
    settled = sum(1 for d in r.devices if d.phase in _SETTLED)
    headline = Text(f"rollout {r.id}: {r.model} release {_releases(r)} on fleet {r.fleet}  ")
    headline.append_text(_styled(r.state))
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(total, 1), completed=settled, width=40),
        Text(f"{settled}/{total} devices settled"),
    )
    if not r.devices:
        return Group(headline, Text("no devices in the fleet", style="dim"))
    devices = Table("device", "id", "phase", "error", header_style="bold")
    for d in r.devices:
        devices.add_row(
            Text(d.device_name), Text(d.device_id), _styled(d.phase), Text(d.error or "")
        )
    return Group(headline, bar, devices)


def _finish(r: RolloutOut) -> None:
    if r.state != "succeeded":
        failed = [d.device_name for d in r.devices if d.phase in ("failed", "rolled_back")]
        which = f" on {', '.join(failed)}" if failed else ""
        render.error(f"rollout {r.id} {r.state}{which}; see `farpoint rollout show {r.id}`")
        raise typer.Exit(1)


@rollout_app.command("create")
def rollout_create(
    ctx: typer.Context,
    fleet: Annotated[str, typer.Option("--fleet", help="The fleet to deliver to.")],
    release: Annotated[int, typer.Option("--release", help="The release id to deliver.")],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the devices until the rollout is done.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait with --wait.")
    ] = 300.0,
    as_json: Json = False,
) -> None:
    """Start delivering a release to a fleet.

    With --wait, exit 0 when it succeeded and 1 when it failed, was aborted or did not
    finish within --timeout.
    """
    api = client(ctx)
    rollout = api.create_rollout(fleet, release)
    if wait:
        try:
            if as_json:
                rollout = api.wait_rollout(rollout.id, timeout)
            else:
                with Live(_board(rollout), console=render.console, refresh_per_second=4) as live:
                    rollout = api.wait_rollout(
                        rollout.id, timeout, on_update=lambda r: live.update(_board(r))
                    )
        except TimeoutError as exc:
            render.error(str(exc))
            raise typer.Exit(1) from None
    if as_json:
        render.emit_json(rollout)
    elif not wait:
        render.console.print(_board(rollout))
    if wait:
        _finish(rollout)


@rollout_app.command("list")
def rollout_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List rollouts."""
    rollouts = client(ctx).list_rollouts()
    if as_json:
        render.emit_json(rollouts)
        return
    render.table(
        ["id", "fleet", "model", "releases", "state", "devices", "created"],
        (
            (r.id, r.fleet, r.model, _releases(r), _styled(r.state), _progress(r), r.created_at)
            for r in rollouts
        ),
        title="rollouts",
    )


@rollout_app.command("show")
def rollout_show(ctx: typer.Context, rollout_id: int, as_json: Json = False) -> None:
    """Show a rollout and the phase of each device."""
    rollout = client(ctx).get_rollout(rollout_id)
    if as_json:
        render.emit_json(rollout)
        return
    render.console.print(_board(rollout))
