"""A release's chain of custody: every link back to the data, each signature verified."""

from __future__ import annotations

from collections.abc import Callable

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import empty_state, section, short
from farpoint.sdk import Client
from farpoint.sdk.trace import LinkCheck

__all__ = ["register"]

_KIND = {
    "device": "Device",
    "release": "Release",
    "evaluation": "Evaluation",
    "model_version": "Model version",
    "training_run": "Training run",
    "dataset_version": "Dataset version",
}


def _load(release_id: int) -> Callable[[Client], list[LinkCheck]]:
    def load(client: Client) -> list[LinkCheck]:
        return client.verify_trace(client.trace_release(release_id))

    return load


def _draw(checks: list[LinkCheck]) -> None:
    failed = [c for c in checks if not c.ok]
    if failed:
        ui.label(f"✗ {len(failed)} link(s) do not verify").classes("text-negative text-h6")
    else:
        signatures = sum(len(c.checks) for c in checks)
        ui.label(
            f"✓ {len(checks)} links, {signatures} signatures verified in the console's "
            "server process with the signers' registered keys"
        ).classes("text-positive text-subtitle1")
    for check in checks:
        link = check.link
        with (
            ui.card()
            .props("flat bordered")
            .classes("w-full gap-1")
            .style(
                f"margin-left: {check.depth * 28}px; max-width: calc(100% - {check.depth * 28}px)"
            )
        ):
            with ui.row().classes("items-baseline gap-3"):
                ui.label(_KIND.get(link.kind, link.kind)).classes("text-caption text-grey-7")
                ui.label(link.ref).classes("text-subtitle1 text-weight-bold")
                if link.digest:
                    ui.label(short(link.digest, 19)).classes("text-caption text-cyan-9")
            if link.summary:
                ui.label(link.summary).classes("text-body2")
            for what, ok, detail in check.checks:
                colour = "text-positive" if ok else "text-negative"
                ui.label(f"{'✓' if ok else '✗'} {what}: {detail}").classes(f"text-body2 {colour}")
            if not check.checks and link.kind in ("model_version", "dataset_version"):
                ui.label("no signed attestation").classes("text-caption text-orange-9")


def register() -> None:
    @ui.page("/releases/{release_id}", title="Release trace · Farpoint", response_timeout=30)
    async def release_trace(request: Request, release_id: int) -> Response | None:
        api = await open_view(request, "mlops-engineer")
        if not isinstance(api, Api):
            return api
        section(
            f"Release {release_id}: chain of custody",
            "release → approvals → evaluation → model → training run → datasets",
        )
        checks = await api.call(_load(release_id))
        if checks is None:
            empty_state("This release cannot be traced (see the message above).")
            return None
        _draw(checks)
        return None
