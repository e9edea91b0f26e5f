"""The IT operations view: devices, what each runs and how it is, and fleets. Live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import ago, empty_state, human_bytes, live, num, section, table
from farpoint.sdk import Client
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


def _draw(board: _Board) -> None:
    now = datetime.now(UTC)
    online = sum(1 for d in board.devices if d.online)
    failing = sum(1 for d in board.devices if any(m.error for m in d.models))
    with ui.row().classes("gap-4 mt-4"):
        for figure, caption, colour in (
            (len(board.devices), "devices", "text-grey-9"),
            (online, "online", "text-positive"),
            (len(board.devices) - online, "offline", "text-grey-7"),
            (failing, "with errors", "text-negative" if failing else "text-grey-7"),
        ):
            with ui.card().props("flat bordered").classes("px-6 py-3 items-center gap-0"):
                ui.label(str(figure)).classes(f"text-h4 {colour}")
                ui.label(caption).classes("text-caption text-grey-8")

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
        table(
            [
                ("online", "Online"),
                ("name", "Device"),
                ("labels", "Labels"),
                ("models", "Models (phase, release)"),
                ("seen", "Last seen"),
                ("resources", "Resources"),
                ("error", "Error"),
            ],
            [
                {
                    "online": "● online" if d.online else "○ offline",
                    "name": d.name,
                    "labels": _labels(d.labels),
                    "models": _models(d),
                    "seen": ago(d.last_seen_at, now),
                    "resources": _resources(d),
                    "error": _errors(d),
                }
                for d in sorted(board.devices, key=lambda d: d.name)
            ],
            key="name",
        )

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


def register() -> None:
    @ui.page("/it-ops", title="IT operations · Farpoint", response_timeout=30)
    async def it_ops(request: Request) -> Response | None:
        api = await open_view(request, "it-ops")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw, every=_REFRESH_S)
        return None
