"""`farpoint device ...` and `farpoint fleet ...`: enrollment, approval, decommissioning,
remote diagnostics, devices, label selectors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json, parse_duration, parse_pairs
from farpoint.cli.session import client
from farpoint.wire.device_ops import DiagnosticsOut
from farpoint.wire.devices import DeviceModelStatus, DeviceOut

__all__ = ["device_app", "fleet_app"]

device_app = typer.Typer(help="Enrolled devices.", no_args_is_help=True)
device_token_app = typer.Typer(help="Enrollment tokens for new devices.", no_args_is_help=True)
device_app.add_typer(device_token_app, name="token")
diagnostics_app = typer.Typer(
    help="Remote diagnostics: a device's recent logs and last errors.", no_args_is_help=True
)
device_app.add_typer(diagnostics_app, name="diagnostics")
fleet_app = typer.Typer(help="Fleets: devices chosen by their labels.", no_args_is_help=True)

_PHASE_STYLE = {"active": "green", "failed": "red", "rolled_back": "red"}
_STATE_STYLE = {"pending": "yellow", "rejected": "red", "decommissioned": "dim"}
_LEVEL_STYLE = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red"}
StateFilter = Literal["pending", "active", "rejected", "decommissioned"]


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
    if device.state != "active":
        return Text(device.state, style=_STATE_STYLE.get(device.state, ""))
    return Text("online", style="green") if device.online else Text("offline", style="dim")


@device_token_app.command("create")
def token_create(
    ctx: typer.Context,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", help="KEY=VALUE every device enrolled with it gets; repeat."),
    ] = None,
    fleet: Annotated[
        str | None,
        typer.Option("--fleet", help="Enroll into this fleet: the device gets its selector."),
    ] = None,
    requires_approval: Annotated[
        bool,
        typer.Option(
            "--requires-approval", help="The device waits until `farpoint device approve`."
        ),
    ] = False,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="Lifetime: 30m, 12h, 1d (at most 30d).")
    ] = "1d",
    as_json: Json = False,
) -> None:
    """Create a single-use enrollment token for a new device (it-ops)."""
    created = client(ctx).create_enrollment_token(
        parse_pairs(label, "--label"),
        parse_duration(expires_in),
        fleet=fleet,
        requires_approval=requires_approval,
    )
    if as_json:
        render.emit_json(created)
        return
    render.fields(
        f"enrollment token {created.id}",
        [
            ("labels", created.labels),
            ("fleet", created.fleet),
            ("approval", "required" if created.requires_approval else "not required"),
            ("expires", created.expires_at),
            ("server key", created.server_key_id),
            ("TLS CA pinned", created.ca_digest),
        ],
    )
    render.note("The token, for one device to enroll with (it works once):")
    typer.echo(created.token)  # alone on its line, so it can be copied whole


@device_app.command("list")
def device_list(
    ctx: typer.Context,
    state: Annotated[
        StateFilter | None,
        typer.Option("--state", help="Only devices in this state (pending: awaiting approval)."),
    ] = None,
    as_json: Json = False,
) -> None:
    """List devices: labels, whether online, each model's phase and release."""
    devices = client(ctx).list_devices(state)
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
            ("state", _state_line(d)),
            (
                "key",
                d.key_id
                + (f" (rotated {render.when(d.key_rotated_at)})" if d.key_rotated_at else ""),
            ),
            ("enrolled", d.enrolled_at),
        ],
    )


def _state_line(d: DeviceOut) -> str:
    by = f" by {d.state_changed_by}" if d.state_changed_by else ""
    when = f" {render.when(d.state_changed_at)}" if d.state_changed_at else ""
    return f"{d.state}{by}{when}"


def _decided(d: DeviceOut, verb: str, as_json: bool) -> None:
    if as_json:
        render.emit_json(d)
        return
    render.console.print(f"device {d.name} ({d.id}) {verb}: it is now {d.state}", markup=False)


@device_app.command("approve")
def device_approve(ctx: typer.Context, device_id: str, as_json: Json = False) -> None:
    """Let a device waiting for approval in (it-ops)."""
    _decided(client(ctx).approve_device(device_id), "approved", as_json)


@device_app.command("reject")
def device_reject(ctx: typer.Context, device_id: str, as_json: Json = False) -> None:
    """Refuse a device waiting for approval, for good (it-ops)."""
    _decided(client(ctx).reject_device(device_id), "rejected", as_json)


@device_app.command("decommission")
def device_decommission(ctx: typer.Context, device_id: str, as_json: Json = False) -> None:
    """Refuse every request of a device from now on; its record stays (it-ops)."""
    _decided(client(ctx).decommission_device(device_id), "decommissioned", as_json)


def _show_diagnostics(d: DiagnosticsOut, lines: int) -> None:
    answered = render.when(d.uploaded_at) if d.uploaded_at else "not yet (at its next sync)"
    render.fields(
        f"diagnostics {d.id} of device {d.device_id}",
        [
            ("asked by", d.requested_by),
            ("asked", d.requested_at),
            ("answered", answered),
            ("size", f"{d.size_bytes} B" if d.size_bytes is not None else None),
        ],
    )
    if d.bundle is None:
        return
    for title, entries in (("last errors", d.bundle.errors), ("recent log lines", d.bundle.logs)):
        shown = entries[-lines:] if lines else entries
        render.console.print(Text(f"{title} ({len(shown)} of {len(entries)})", style="bold"))
        for e in shown:
            at = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
            line = Text(f"{at} ")
            line.append(e.level, style=_LEVEL_STYLE.get(e.level, ""))
            line.append(f" {e.logger}: {e.message}")  # Text: [brackets] are not markup
            render.console.print(line, overflow="fold")
    if d.bundle.dropped_lines:
        render.note(f"{d.bundle.dropped_lines} older line(s) were left out to fit the size limit")


@diagnostics_app.command("request")
def diagnostics_request(
    ctx: typer.Context,
    device_id: str,
    wait: Annotated[
        float, typer.Option("--wait", help="Seconds to wait for the answer (0: do not wait).")
    ] = 0,
    lines: Annotated[int, typer.Option("--lines", help="Log lines to show (0: all).")] = 50,
    as_json: Json = False,
) -> None:
    """Ask a device for its recent logs and last errors (it-ops); it answers at its next sync."""
    api = client(ctx)
    asked = api.request_diagnostics(device_id)
    if wait > 0:
        try:
            asked = api.wait_diagnostics(device_id, asked.id, timeout_s=wait)
        except TimeoutError as exc:
            render.error(str(exc))
            raise typer.Exit(1) from None
    if as_json:
        render.emit_json(asked)
        return
    _show_diagnostics(asked, lines)
    if asked.uploaded_at is None:
        render.note(f"see the answer with: farpoint device diagnostics show {device_id}")


@diagnostics_app.command("show")
def diagnostics_show(
    ctx: typer.Context,
    device_id: str,
    lines: Annotated[int, typer.Option("--lines", help="Log lines to show (0: all).")] = 50,
    as_json: Json = False,
) -> None:
    """Show the newest diagnostics of a device: its log lines and last errors (it-ops)."""
    found = client(ctx).list_diagnostics(device_id)
    if as_json:
        render.emit_json(found)
        return
    if not found:
        render.note(
            f"no diagnostics yet; ask with: farpoint device diagnostics request {device_id}"
        )
        return
    _show_diagnostics(found[0], lines)


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
