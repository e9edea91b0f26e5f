"""The app developer's view: how to call each released model on a device."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import code_block, empty_state, live, section, short, table
from farpoint.sdk import Client
from farpoint.wire.devices import DeviceOut
from farpoint.wire.releases import ReleaseOut

__all__ = ["curl_snippet", "feedback_snippet", "register"]

_PORT_NOTE = (
    "# PORT: the agent's local API port (`farpoint agent run --port 8080`, "
    "or the number in its --port-file)"
)


def curl_snippet(model: str, row: dict[str, Any]) -> str:
    """A ready-to-paste curl for a device's local predict endpoint."""
    body = json.dumps({"rows": [row]}).replace("'", "'\\''")
    return (
        f"{_PORT_NOTE}\nPORT=8080\n"
        f'curl -s -X POST "http://127.0.0.1:$PORT/v1/models/{model}:predict" \\\n'
        f"  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )


def feedback_snippet(label: Any) -> str:
    """A ready-to-paste curl for the device's feedback endpoint (the true label of a
    prediction, and the protected attributes the application knows)."""
    body = json.dumps(
        {"prediction_id": "PREDICTION_ID", "label": label, "attributes": {"sex": "F"}}
    ).replace("'", "'\\''")
    return (
        f"{_PORT_NOTE}\nPORT=8080\n"
        '# PREDICTION_ID: the "id" of one prediction in the predict answer\n'
        'curl -s -X POST "http://127.0.0.1:$PORT/v1/feedback" \\\n'
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )


def _python_snippet(release: ReleaseOut, row: dict[str, Any]) -> str:
    return (
        "import httpx\n"
        "from farpoint.sdk import Client\n\n"
        "# The schema and example rows, from the control plane (FARPOINT_URL, FARPOINT_TOKEN):\n"
        f"manifest = Client.from_env().get_release({release.id}).manifest\n"
        'print(manifest["signature"])\n\n'
        "# A prediction, from the device's local API:\n"
        "PORT = 8080\n"
        f"rows = [{json.dumps(row)}]\n"
        "answer = httpx.post(\n"
        f'    f"http://127.0.0.1:{{PORT}}/v1/models/{release.model}:predict",\n'
        '    json={"rows": rows},\n'
        ").json()\n"
        'for prediction in answer["predictions"]:\n'
        '    print(prediction["id"], prediction["label"], prediction["probabilities"])\n\n'
        "# Later, when the true outcome is known: its label, and the groups the application\n"
        "# knows (the model never sees them; the device keeps counts per group only).\n"
        "httpx.post(\n"
        '    f"http://127.0.0.1:{PORT}/v1/feedback",\n'
        '    json={"prediction_id": answer["predictions"][0]["id"],\n'
        f'          "label": {_first_class(release)!r}, "attributes": {{"sex": "F"}}}},\n'
        ").raise_for_status()"
    )


def _first_class(release: ReleaseOut) -> Any:
    classes = release.manifest.get("classes")
    return classes[0] if isinstance(classes, list) and classes else 1


@dataclass
class _Board:
    releases: list[ReleaseOut]
    devices: list[DeviceOut]


def _load(client: Client) -> _Board:
    latest: dict[str, ReleaseOut] = {}
    for release in sorted(client.list_releases(), key=lambda r: r.id):
        latest[release.model] = release
    return _Board(sorted(latest.values(), key=lambda r: r.model), client.list_devices())


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _schema_rows(specs: Any) -> list[dict[str, Any]]:
    rows = []
    for spec in specs if isinstance(specs, list) else []:
        if isinstance(spec, dict):
            shape = spec.get("shape") or []
            rows.append(
                {
                    "name": spec.get("name", "?"),
                    "dtype": spec.get("dtype", "?"),
                    "shape": "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]",
                }
            )
    return rows


def _draw(board: _Board) -> None:
    if not board.releases:
        section("Released models")
        empty_state(
            "No released models yet: once an MLOps engineer releases a model version and "
            "rolls it out, this page shows how to call it on a device.",
            "farpoint release create --model MODEL@1",
        )
        return
    for release in board.releases:
        _release_card(release, board.devices)


def _release_card(release: ReleaseOut, devices: list[DeviceOut]) -> None:
    manifest = release.manifest
    signature = _mapping(manifest.get("signature"))
    golden = _mapping(manifest.get("golden"))
    rows = golden.get("rows") or []
    example: dict[str, Any] = rows[0] if rows and isinstance(rows[0], dict) else {}
    serving = [
        d.name
        for d in devices
        if any(m.release_id == release.id and m.phase == "active" for m in d.models)
    ]
    section(release.model, f"release {release.id} · {release.model_ref}")
    with ui.card().props("flat bordered").classes("w-full gap-3"):
        ui.label(
            f"Serving on {len(serving)} device(s)"
            + (f": {', '.join(sorted(serving)[:12])}" if serving else " (none active yet)")
            + f" · manifest {short(release.manifest_digest)}"
        ).classes("text-body2 text-grey-8")
        with ui.row().classes("w-full gap-6 no-wrap items-start"):
            with ui.column().classes("grow gap-1"):
                ui.label("Inputs").classes("text-caption text-weight-medium")
                table(
                    [("name", "Name"), ("dtype", "Type"), ("shape", "Shape")],
                    _schema_rows(signature.get("inputs")),
                    key="name",
                )
            with ui.column().classes("grow gap-1"):
                ui.label("Outputs").classes("text-caption text-weight-medium")
                table(
                    [("name", "Name"), ("dtype", "Type"), ("shape", "Shape")],
                    _schema_rows(signature.get("outputs")),
                    key="name",
                )
        classes = manifest.get("classes")
        label = manifest.get("label_column")
        if classes is not None:
            ui.label(
                f"Predicts {label or 'a label'} from classes {classes}; each prediction has a "
                "label and one probability per class."
            ).classes("text-body2")
        ui.label("curl, on the device").classes("text-caption text-weight-medium")
        code_block(curl_snippet(release.model, example))
        labels = golden.get("labels")
        if example and isinstance(labels, list) and labels:
            ui.label(
                f"This example row is one of the release's golden rows: the answer's label "
                f"must be {labels[0]!r}."
            ).classes("text-caption text-grey-7")
        ui.label("Feedback, on the device").classes("text-caption text-weight-medium")
        ui.label(
            "Each prediction answers with an id. When the true outcome is known, post it "
            "with the protected attributes the application knows: the device turns them into "
            "confusion counts per group (accuracy and fairness per group on the control "
            "plane), and no row or single prediction leaves the device. Ids are remembered "
            "for an hour, the last 10,000 predictions; each takes feedback once."
        ).classes("text-body2")
        code_block(feedback_snippet(_first_class(release)))
        ui.label("Python").classes("text-caption text-weight-medium")
        code_block(_python_snippet(release, example), language="python")


def register() -> None:
    @ui.page("/app-developer", title="App development · Farpoint", response_timeout=30)
    async def app_developer(request: Request) -> Response | None:
        api = await open_view(request, "app-developer")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw)
        return None
