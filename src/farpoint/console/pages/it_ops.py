"""The IT operations view: devices waiting for approval, devices, what each runs and how
it is, fleets; approve, reject, decommission, ask a device for its logs. Live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import ago, empty_state, human_bytes, live, num, section, table
from farpoint.sdk import Client
from farpoint.wire.device_ops import DiagnosticsOut
from farpoint.wire.devices import DeviceOut, FleetOut

__all__ = ["register"]

_REFRESH_S = 3.0


@dataclass
class _Board:
    devices: list[DeviceOut]
    fleets: list[FleetOut]


def _load(client: Client) -> _Board:
    return _Board(client.list_devices(), client.list_fleets())


def _labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "—"


def _models(device: DeviceOut) -> str:
    if not device.models:
        return "—"
    return "; ".join(
        f"{m.model}: {m.phase}" + (f" (release {m.release_id})" if m.release_id else "")
        for m in sorted(device.models, key=lambda m: m.model)
    )


def _errors(device: DeviceOut) -> str:
    return "; ".join(f"{m.model}: {m.error}" for m in device.models if m.error) or ""


def _resources(device: DeviceOut) -> str:
    beat = device.heartbeat
    parts = []
    if isinstance(beat.get("cpu_percent"), int | float):
        parts.append(f"cpu {num(beat['cpu_percent'])}%")
    if isinstance(beat.get("rss_bytes"), int):
        parts.append(f"rss {human_bytes(beat['rss_bytes'])}")
    if isinstance(beat.get("disk_free_bytes"), int):
        parts.append(f"disk free {human_bytes(beat['disk_free_bytes'])}")
    return ", ".join(parts) or "—"


def _hardware(device: DeviceOut) -> str:
    hw = device.hardware
    parts = [str(hw[k]) for k in ("architecture", "os") if hw.get(k)]
    if isinstance(hw.get("cpu_count"), int):
        parts.append(f"{hw['cpu_count']} CPU")
    if isinstance(hw.get("memory_bytes"), int):
        parts.append(human_bytes(hw["memory_bytes"]))
    providers = hw.get("execution_providers")
    if isinstance(providers, list) and providers:
        parts.append("ONNX Runtime: " + ", ".join(str(p) for p in providers))
    return " · ".join(parts) or "—"


class _Actions:
    """What IT operations do to a device from this view; each refreshes the board after.

    Its dialogs live outside the live board, so a refresh does not close them.
    """

    def __init__(self, api: Api) -> None:
        self.api = api
        self.refresh: Callable[[], Any] | None = None
        with ui.dialog() as self.dialog, ui.card().classes("diagnostics-dialog w-full"):
            self.body = ui.column().classes("w-full gap-2")
        with ui.dialog() as self.confirm, ui.card():
            self.confirm_title = ui.label("").classes("text-h6")
            ui.label(
                "Its requests are refused from now on and it leaves every fleet; its record "
                "stays. It cannot be undone: the device must enroll again."
            ).classes("text-body2")
            with ui.row().classes("justify-end w-full"):
                ui.button("Cancel", on_click=lambda: self.confirm.submit(False)).props("flat")
                ui.button("Decommission", on_click=lambda: self.confirm.submit(True)).props(
                    "color=negative"
                )

    async def _after(self, message: str) -> None:
        ui.notify(message, type="positive")
        if self.refresh is not None:
            await self.refresh()

    async def approve(self, device_id: str, name: str) -> None:
        if await self.api.call(lambda c: c.approve_device(device_id)) is not None:
            await self._after(f"{name} approved: it syncs from now on")

    async def reject(self, device_id: str, name: str) -> None:
        if await self.api.call(lambda c: c.reject_device(device_id)) is not None:
            await self._after(f"{name} rejected")

    async def decommission(self, device_id: str, name: str) -> None:
        self.confirm_title.set_text(f"Decommission {name}?")
        if await self.confirm:
            done = await self.api.call(lambda c: c.decommission_device(device_id))
            if done is not None:
                await self._after(f"{name} decommissioned")

    async def diagnostics(self, device_id: str, name: str) -> None:
        found = await self.api.call(lambda c: c.list_diagnostics(device_id))
        self._draw_diagnostics(device_id, name, found or [])
        self.dialog.open()

    async def ask(self, device_id: str, name: str) -> None:
        asked = await self.api.call(lambda c: c.request_diagnostics(device_id))
        if asked is not None:
            ui.notify(f"asked {name} for its logs: it answers at its next sync", type="info")
            await self.diagnostics(device_id, name)

    def _draw_diagnostics(self, device_id: str, name: str, found: list[DiagnosticsOut]) -> None:
        self.body.clear()
        with self.body:
            with ui.row().classes("items-center w-full"):
                ui.label(f"Diagnostics of {name}").classes("text-h6")
                ui.space()
                ui.button(
                    "Ask for logs", icon="receipt_long", on_click=lambda: self.ask(device_id, name)
                ).props("outline dense")
                ui.button(
                    "Reload", icon="refresh", on_click=lambda: self.diagnostics(device_id, name)
                ).props("flat dense")
                ui.button(icon="close", on_click=self.dialog.close).props("flat dense round")
            if not found:
                ui.label("Nothing asked yet.").classes("text-grey-7")
                return
            latest = found[0]
            asked = f"asked by {latest.requested_by} {ago(latest.requested_at)}"
            if latest.uploaded_at is None or latest.bundle is None:
                ui.label(f"Request {latest.id}, {asked}: not answered yet (it answers at its "
                         "next sync).").classes("text-grey-8")  # fmt: skip
                return
            ui.label(
                f"Request {latest.id}, {asked}, answered {ago(latest.uploaded_at)} "
                f"({human_bytes(latest.size_bytes or 0)})"
            ).classes("text-grey-8")
            for title, lines in (("Last errors", latest.bundle.errors),
                                 ("Recent log lines", latest.bundle.logs)):  # fmt: skip
                ui.label(f"{title} ({len(lines)})").classes("text-subtitle1 mt-2")
                text = "\n".join(
                    f"{datetime.fromtimestamp(e.at, UTC):%H:%M:%S} {e.level} {e.logger}: "
                    f"{e.message}"
                    for e in lines[-200:]
                )
                ui.code(text or "(none)", language="text").classes("w-full text-xs diag-lines")
            if latest.bundle.dropped_lines:
                ui.label(
                    f"{latest.bundle.dropped_lines} older line(s) were left out to fit the limit"
                ).classes("text-caption text-grey-7")


def _pending(board: _Board, actions: _Actions) -> None:
    pending = [d for d in board.devices if d.state == "pending"]
    if not pending:
        return
    section("Waiting for approval", "enrolled with a token that needs IT operations' approval")
    for d in sorted(pending, key=lambda d: d.enrolled_at):
        card = ui.card().props("flat bordered").classes("w-full pending-device")
        with card, ui.row().classes("items-center w-full gap-4"):
            with ui.column().classes("gap-0"):
                ui.label(d.name).classes("text-subtitle1 text-weight-medium")
                ui.label(f"{d.id} · labels {_labels(d.labels)}").classes("text-caption text-grey-8")
                ui.label(_hardware(d)).classes("text-caption text-grey-8")
                seen = f"enrolled {ago(d.enrolled_at)} · last seen {ago(d.last_seen_at)}"
                ui.label(seen).classes("text-caption text-grey-7")
            ui.space()
            ui.button(
                "Approve",
                icon="check",
                on_click=lambda d=d: actions.approve(d.id, d.name),
            ).props("color=positive")
            ui.button(
                "Reject",
                icon="block",
                on_click=lambda d=d: actions.reject(d.id, d.name),
            ).props("outline color=negative")


def _draw(board: _Board, actions: _Actions) -> None:
    now = datetime.now(UTC)
    enrolled = [d for d in board.devices if d.state == "active"]
    online = sum(1 for d in enrolled if d.online)
    failing = sum(1 for d in enrolled if any(m.error for m in d.models))
    waiting = sum(1 for d in board.devices if d.state == "pending")
    with ui.row().classes("gap-4 mt-4"):
        for figure, caption, colour in (
            (len(enrolled), "devices", "text-grey-9"),
            (online, "online", "text-positive"),
            (len(enrolled) - online, "offline", "text-grey-7"),
            (failing, "with errors", "text-negative" if failing else "text-grey-7"),
            (waiting, "awaiting approval", "text-warning" if waiting else "text-grey-7"),
        ):
            with ui.card().props("flat bordered").classes("px-6 py-3 items-center gap-0"):
                ui.label(str(figure)).classes(f"text-h4 {colour}")
                ui.label(caption).classes("text-caption text-grey-8")

    _pending(board, actions)
    section("Devices", f"refreshes every {_REFRESH_S:g} s")
    if not board.devices:
        empty_state(
            "No devices yet: create an enrollment token, then enroll and run the agent "
            "on the device.",
            "farpoint device token create --label site=SITE\n"
            "farpoint agent enroll --server URL --token TOKEN --name DEVICE --state-dir STATE\n"
            "farpoint agent run --state-dir STATE --port 8080",
        )
    else:
        devices = table(
            [
                ("online", "Status"),
                ("name", "Device"),
                ("labels", "Labels"),
                ("models", "Models (phase, release)"),
                ("seen", "Last seen"),
                ("resources", "Resources"),
                ("error", "Error"),
                ("actions", ""),
            ],
            [
                {
                    "id": d.id,
                    "online": _status(d),
                    "name": d.name,
                    "labels": _labels(d.labels),
                    "models": _models(d),
                    "seen": ago(d.last_seen_at, now),
                    "resources": _resources(d),
                    "error": _errors(d),
                    "can_decommission": d.state != "decommissioned",
                }
                for d in sorted(board.devices, key=lambda d: d.name)
            ],
            key="name",
        )
        devices.add_slot(
            "body-cell-actions",
            r"""
            <q-td :props="props">
              <q-btn flat dense size="sm" icon="receipt_long" label="Logs"
                     @click="() => $parent.$emit('logs', props.row)" />
              <q-btn v-if="props.row.can_decommission" flat dense size="sm" color="negative"
                     icon="power_settings_new" label="Decommission"
                     @click="() => $parent.$emit('decommission', props.row)" />
            </q-td>
            """,
        )
        devices.on("logs", lambda e: actions.diagnostics(e.args["id"], e.args["name"]))
        devices.on("decommission", lambda e: actions.decommission(e.args["id"], e.args["name"]))

    section("Fleets")
    if not board.fleets:
        empty_state(
            "No fleets yet: a fleet is every device whose labels match a selector.",
            "farpoint fleet create FLEET --selector site=SITE",
        )
    else:
        table(
            [
                ("name", "Fleet"),
                ("selector", "Selector"),
                ("devices", "Devices"),
                ("release", "Desired release"),
            ],
            [
                {
                    "name": f.name,
                    "selector": _labels(f.selector) if f.selector else "every device",
                    "devices": f.device_count,
                    "release": f.desired_release_id or "—",
                }
                for f in sorted(board.fleets, key=lambda f: f.name)
            ],
            key="name",
        )


def _status(d: DeviceOut) -> str:
    if d.state != "active":
        return {"pending": "… awaiting approval", "rejected": "✗ rejected"}.get(
            d.state, "– decommissioned"
        )
    return "● online" if d.online else "○ offline"


def register() -> None:
    @ui.page("/it-ops", title="IT operations · Farpoint", response_timeout=30)
    async def it_ops(request: Request) -> Response | None:
        api = await open_view(request, "it-ops")
        if not isinstance(api, Api):
            return api
        ui.add_css(".diagnostics-dialog { max-width: 1100px !important; }")
        actions = _Actions(api)
        actions.refresh = await live(
            api, _load, lambda board: _draw(board, actions), every=_REFRESH_S
        )
        return None
