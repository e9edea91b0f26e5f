"""The AI engineer's view: model versions as packaged, and how fast they run on devices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import empty_state, human_bytes, live, num, section, short, table
from farpoint.sdk import Client
from farpoint.wire.devices import DeviceOut
from farpoint.wire.models import ModelVersionOut, TensorSpec
from farpoint.wire.telemetry import TelemetrySummary

__all__ = ["all_model_versions", "latency_rows", "register", "tensors"]


def all_model_versions(client: Client, limit: int = 200) -> list[ModelVersionOut]:
    """Every version of every model, newest first (at most `limit`)."""
    versions: list[ModelVersionOut] = []
    for model in client.list_models():
        versions.extend(client.list_model_versions(model.name))
    versions.sort(key=lambda v: v.created_at, reverse=True)
    return versions[:limit]


def tensors(specs: list[TensorSpec]) -> str:
    """`hr: float32[?, 1], spo2: float32[?, 1]`."""
    shown = []
    for spec in specs:
        dims = ", ".join("?" if d is None else str(d) for d in spec.shape)
        shown.append(f"{spec.name}: {spec.dtype}[{dims}]")
    return ", ".join(shown)


def _parity(parity: dict[str, Any]) -> str:
    if not parity:
        return "—"
    return ", ".join(
        f"{key} {num(value) if isinstance(value, float | int) else value}"
        for key, value in sorted(parity.items())
    )


def _bound(value: float | None, counts: list[int], edges: list[float]) -> str:
    """A quantile read from buckets is an upper bound: `≤ 0.5`; `> 2500` past the edges."""
    if value is not None:
        return f"≤ {value:g}"
    return f"> {edges[-1]:g}" if any(counts) else "—"


def latency_rows(summary: TelemetrySummary) -> list[dict[str, Any]]:
    """One row per model and release: on-device latency from the devices' summed
    histograms, with the traffic and failures behind it."""
    rows = []
    for m in summary.models:
        lat = m.latency
        rows.append(
            {
                "key": f"{m.model}/{m.release_id}",
                "model": m.model,
                "release": m.release_id if m.release_id is not None else "—",
                "devices": m.devices,
                "requests": m.requests,
                "failures": "—" if m.error_rate is None else f"{m.error_rate:.2%}",
                "p50": _bound(lat.p50_ms, lat.counts, lat.edges_ms),
                "p95": _bound(lat.p95_ms, lat.counts, lat.edges_ms),
                "p99": _bound(lat.p99_ms, lat.counts, lat.edges_ms),
            }
        )
    return rows


@dataclass
class _Board:
    versions: list[ModelVersionOut]
    devices: list[DeviceOut]
    summary: TelemetrySummary


def _load(client: Client) -> _Board:
    return _Board(all_model_versions(client), client.list_devices(), client.telemetry_summary())


def _draw(board: _Board) -> None:
    section("Model versions", "newest first")
    if not board.versions:
        empty_state(
            "No model versions yet: train in Python and register the estimator; the SDK "
            "converts it to ONNX and checks parity before uploading.",
            "Client.from_env().register_sklearn_model(NAME, estimator, sample, features, "
            "run_id=RUN, label_column=LABEL)",
        )
    else:
        table(
            [
                ("ref", "Version"),
                ("status", "Status"),
                ("size", "Size"),
                ("flavor", "Flavor"),
                ("inputs", "Input signature"),
                ("outputs", "Outputs"),
                ("parity", "ONNX parity"),
                ("digest", "Digest"),
            ],
            [
                {
                    "ref": v.ref,
                    "status": v.status,
                    "size": human_bytes(v.size_bytes),
                    "flavor": v.flavor or v.framework,
                    "inputs": tensors(v.signature.inputs),
                    "outputs": tensors(v.signature.outputs),
                    "parity": _parity(v.parity),
                    "digest": short(v.digest),
                }
                for v in board.versions
            ],
            key="ref",
        )

    section("On-device latency", "per release, summed over every device, last 24 hours")
    summed = latency_rows(board.summary)
    if not summed:
        empty_state(
            "No device has sent telemetry in the last 24 hours (devices send counts and "
            "latency histograms every heartbeat once a release is active)."
        )
    else:
        table(
            [
                ("model", "Model"),
                ("release", "Release"),
                ("devices", "Devices"),
                ("requests", "Requests"),
                ("failures", "Failures"),
                ("p50", "p50 ms"),
                ("p95", "p95 ms"),
                ("p99", "p99 ms"),
            ],
            summed,
            key="key",
        )

    section("Per device", "from the devices' last heartbeats (recent requests)")
    rows = []
    for device in board.devices:
        per_model = device.heartbeat.get("models")
        if not isinstance(per_model, dict):
            continue
        for model, figures in sorted(per_model.items()):
            if not isinstance(figures, dict):
                continue
            rows.append(
                {
                    "key": f"{device.name}/{model}",
                    "device": device.name,
                    "model": model,
                    "release": figures.get("release_id", "—"),
                    "inferences": figures.get("inferences", 0),
                    "p50": num(figures.get("latency_p50_ms")),
                    "p95": num(figures.get("latency_p95_ms")),
                }
            )
    if not rows:
        empty_state(
            "No device has reported inference figures yet (devices report them with "
            "their heartbeat once a release is active)."
        )
    else:
        table(
            [
                ("device", "Device"),
                ("model", "Model"),
                ("release", "Release"),
                ("inferences", "Inferences"),
                ("p50", "p50 ms"),
                ("p95", "p95 ms"),
            ],
            rows,
            key="key",
        )


def register() -> None:
    @ui.page("/ai-engineering", title="AI engineering · Farpoint", response_timeout=30)
    async def ai_engineering(request: Request) -> Response | None:
        api = await open_view(request, "ai-engineer")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw, every=10.0)
        return None
