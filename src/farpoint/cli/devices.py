"""`farpoint device ...` and `farpoint fleet ...`: enrollment, devices, label selectors."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json, parse_duration, parse_pairs
from farpoint.cli.session import client
from farpoint.wire.devices import DeviceModelStatus, DeviceOut

__all__ = ["device_app", "fleet_app"]

device_app = typer.Typer(help="Enrolled devices.", no_args_is_help=True)
device_token_app = typer.Typer(help="Enrollment tokens for new devices.", no_args_is_help=True)
device_app.add_typer(device_token_app, name="token")
fleet_app = typer.Typer(help="Fleets: devices chosen by their labels.", no_args_is_help=True)

_PHASE_STYLE = {"active": "green", "failed": "red", "rolled_back": "red"}


def _models(models: list[DeviceModelStatus]) -> Text:
    text = Text()
    for i, m in enumerate(models):
        if i:
            text.append("\n")
        release = f" (release {m.release_id})" if m.release_id is not None else ""
        text.append(f"{m.model}: ")
        text.append(m.phase, style=_PHASE_STYLE.get(m.phase, "yellow"))
        text.append(release)
    return text if models else Text("-")


def _online(device: DeviceOut) -> Text:
    return Text("online", style="green") if device.online else Text("offline", style="dim")


@device_token_app.command("create")
def token_create(
    ctx: typer.Context,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="KEY=VALUE every device enrolled with it gets; repeat."),
    ] = None,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="Lifetime: 30m, 12h, 1d (at most 30d).")
    ] = "1d",
    as_json: Json = False,
) -> None:
    """Create a single-use enrollment token for a new device (it-ops)."""
    created = client(ctx).create_enrollment_token(
        parse_pairs(label, "--label"), parse_duration(expires_in)
    )
    if as_json:
        render.emit_json(created)
        return
    render.fields(
        f"enrollment token {created.id}",
        [
            ("labels", created.labels),
            ("expires", created.expires_at),
            ("server key", created.server_key_id),
        ],
    )
    render.note("The token, for one device to enroll with (it works once):")
    typer.echo(created.token)  # alone on its line, so it can be copied whole


@device_app.command("list")
def device_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List devices: labels, whether online, each model's phase and release."""
    devices = client(ctx).list_devices()
    if as_json:
        render.emit_json(devices)
        return
    render.table(
        ["name", "id", "labels", "online", "models", "last seen"],
        (
            (d.name, d.id, d.labels, _online(d), _models(d.models), render.ago(d.last_seen_at))
            for d in devices
        ),
        title="devices",
    )


@device_app.command("show")
def device_show(ctx: typer.Context, device_id: str, as_json: Json = False) -> None:
    """Show a device: identity, labels, hardware, models, last heartbeat."""
    d = client(ctx).get_device(device_id)
    if as_json:
        render.emit_json(d)
        return
    errors = [f"{m.model}: {m.error}" for m in d.models if m.error]
    render.fields(
        f"device {d.name}",
        [
            ("id", d.id),
            ("labels", d.labels),
            ("status", _online(d)),
            ("last seen", render.ago(d.last_seen_at)),
            ("models", _models(d.models)),
            ("errors", errors or None),
            ("hardware", d.hardware),
            ("heartbeat", d.heartbeat),
            ("key", d.key_id),
            ("enrolled", d.enrolled_at),
        ],
    )


@fleet_app.command("create")
def fleet_create(
    ctx: typer.Context,
    name: str,
    selector: Annotated[
        list[str] | None,
        typer.Option("--selector", help="KEY=VALUE a device's labels must have; repeat."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Create a fleet of the devices whose labels match every selector (all when none)."""
    fleet = client(ctx).create_fleet(name, parse_pairs(selector, "--selector"))
    if as_json:
        render.emit_json(fleet)
        return
    render.console.print(
        f"created fleet {fleet.name} selecting {render.pairs(fleet.selector)}: "
        f"{fleet.device_count} device(s)",
        markup=False,
    )


@fleet_app.command("list")
def fleet_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List fleets."""
    fleets = client(ctx).list_fleets()
    if as_json:
        render.emit_json(fleets)
        return
    render.table(
        ["name", "selector", "devices", "desired release", "created"],
        ((f.name, f.selector, f.device_count, f.desired_release_id, f.created_at) for f in fleets),
        title="fleets",
    )


@fleet_app.command("show")
def fleet_show(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Show a fleet."""
    f = client(ctx).get_fleet(name)
    if as_json:
        render.emit_json(f)
        return
    render.fields(
        f"fleet {f.name}",
        [
            ("selector", f.selector),
            ("devices", f.device_count),
            ("desired release", f.desired_release_id),
            ("created", f.created_at),
        ],
    )
