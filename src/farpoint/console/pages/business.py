"""The business view: what is in production, and how delivery goes. Read only."""

from __future__ import annotations

from dataclasses import dataclass

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import empty_state, live, section, stamp, table
from farpoint.sdk import Client
from farpoint.wire.devices import DeviceOut
from farpoint.wire.releases import ReleaseOut
from farpoint.wire.rollouts import ROLLOUT_DONE, RolloutSummary

__all__ = ["register"]


@dataclass
class _Board:
    releases: list[ReleaseOut]
    devices: list[DeviceOut]
    rollouts: list[RolloutSummary]


def _load(client: Client) -> _Board:
    return _Board(client.list_releases(), client.list_devices(), client.list_rollouts())


def _figure(value: str, caption: str) -> None:
    with ui.card().props("flat bordered").classes("px-6 py-3 gap-0 min-w-[11rem]"):
        ui.label(value).classes("text-h4")
        ui.label(caption).classes("text-caption text-grey-8")


def _draw(board: _Board) -> None:
    by_id = {r.id: r for r in board.releases}
    serving: dict[int, set[str]] = {}
    for device in board.devices:
        for model in device.models:
            if model.phase == "active" and model.release_id is not None:
                serving.setdefault(model.release_id, set()).add(device.id)
    finished = [r for r in board.rollouts if r.state in ROLLOUT_DONE]
    failed = [r for r in finished if r.state != "succeeded"]

    with ui.row().classes("gap-4 mt-4"):
        _figure(str(len({by_id[i].model for i in serving if i in by_id})), "models in production")
        _figure(str(len({d for ids in serving.values() for d in ids})), "devices serving")
        _figure(
            f"{len(failed) / len(finished):.0%}" if finished else "—",
            f"change failure rate ({len(failed)} of {len(finished)} finished rollouts)"
            if finished
            else "change failure rate: no finished rollouts yet",
        )
        _figure("—", "lead time: not measured yet")

    section("Models in production", "releases active on at least one device")
    if not serving:
        empty_state(
            "No model is serving on any device yet. Models reach production through a "
            "signed release rolled out to a fleet (the MLOps view follows them)."
        )
    else:
        rows = []
        for release_id, devices in sorted(serving.items()):
            release = by_id.get(release_id)
            rows.append(
                {
                    "release": release_id,
                    "model": release.model_ref if release else "?",
                    "devices": len(devices),
                    "evaluation": f"#{release.evaluation_id}" if release else "—",
                    "released": stamp(release.created_at) if release else "—",
                }
            )
        table(
            [
                ("model", "Model version"),
                ("release", "Release"),
                ("devices", "Devices serving"),
                ("evaluation", "Passed evaluation"),
                ("released", "Released"),
            ],
            rows,
            key="release",
        )

    section("Lead time")
    ui.label(
        "Not available yet: Farpoint does not yet record the time from a dataset version to "
        "a model serving on devices, so no figure is shown rather than an estimate."
    ).classes("text-body2 text-grey-8")
    section("Compliance")
    ui.label(
        f"{len(board.releases)} release(s), each signed by the server's key and citing the "
        "evaluation whose gates it passed; devices verify the signature before running a "
        "model."
    ).classes("text-body2 text-grey-8")


def register() -> None:
    @ui.page("/business", title="Business · Farpoint", response_timeout=30)
    async def business(request: Request) -> Response | None:
        api = await open_view(request, "business")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw, every=15.0)
        return None
