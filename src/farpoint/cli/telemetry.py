"""`farpoint device telemetry ID` and `farpoint telemetry summary`: what devices counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from farpoint.cli import render
from farpoint.cli.params import Json, parse_duration
from farpoint.cli.session import client
from farpoint.core.telemetry import histogram_quantile
from farpoint.wire.telemetry import ModelSummary, ModelWindow

__all__ = ["device_telemetry", "telemetry_app"]

telemetry_app = typer.Typer(
    help="Telemetry: counts devices report (never rows).", no_args_is_help=True
)

Since = Annotated[
    str, typer.Option("--since", help="How far back: 30m, 12h, 7d (windows ending since then).")
]


def _since(text: str) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=parse_duration(text, "--since"))


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return "> 2500" if value == float("inf") else f"≤ {value:g}"


def _window_models(models: dict[str, ModelWindow]) -> str:
    parts = []
    for name, m in sorted(models.items()):
        p95 = histogram_quantile(m.latency_ms, 0.95) if m.latency_ms else None
        parts.append(
            f"{name}@{m.release_id}: {m.requests} req, {m.inferences} rows, "
            f"{m.errors} failed, {m.input_errors} refused, p95 {_ms(p95)} ms"
        )
    return "\n".join(parts) or "-"


def device_telemetry(
    ctx: typer.Context,
    device_id: str,
    since: Since = "1h",
    limit: Annotated[int, typer.Option("--limit", help="At most this many windows.")] = 100,
    as_json: Json = False,
) -> None:
    """Show a device's telemetry windows: per model requests, failures, latency."""
    got = client(ctx).device_telemetry(device_id, since=_since(since), limit=limit)
    if as_json:
        render.emit_json(got)
        return
    render.table(
        ["seq", "start", "end", "models", "cpu %", "rss MB"],
        (
            (
                w.seq,
                render.when(w.start),
                render.when(w.end),
                _window_models(w.models),
                w.resources.get("cpu_percent", "-"),
                f"{(w.resources.get('rss_bytes') or 0) / 1e6:.1f}",
            )
            for w in got.items
        ),
        title=f"telemetry of {device_id}",
    )
    if got.dropped_total:
        render.note(f"the device dropped {got.dropped_total} window(s) while it was offline")


def _quantile(m: ModelSummary, value: float | None) -> str:
    if value is None and any(m.latency.counts):
        return f"> {m.latency.edges_ms[-1]:g}"  # in the open bucket above the last edge
    return _ms(value)


def _accuracy(m: ModelSummary) -> str:
    fb = m.feedback
    if fb.accuracy is None:
        return "-"
    return f"{fb.accuracy:.1%} of {fb.count}"


@telemetry_app.command("summary")
def summary(
    ctx: typer.Context,
    release: Annotated[int | None, typer.Option("--release", help="A release id.")] = None,
    fleet: Annotated[str | None, typer.Option("--fleet", help="A fleet's devices.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="One model.")] = None,
    since: Since = "24h",
    as_json: Json = False,
) -> None:
    """Counts summed over a release's windows and/or a fleet's devices, per release."""
    got = client(ctx).telemetry_summary(
        release_id=release, fleet=fleet, model=model, since=_since(since)
    )
    if as_json:
        render.emit_json(got)
        return
    render.table(
        ["model", "release", "devices", "requests", "failed", "refused", "p50 ms", "p95 ms",
         "p99 ms", "accuracy"],
        (
            (m.model, m.release_id, m.devices, m.requests, m.errors, m.input_errors,
             _quantile(m, m.latency.p50_ms), _quantile(m, m.latency.p95_ms),
             _quantile(m, m.latency.p99_ms),
             _accuracy(m))
            for m in got.models
        ),
        title=f"telemetry since {render.when(got.since)} on {got.devices} device(s)",
    )  # fmt: skip
