"""How a rollout looks in a terminal: state, a bar per batch, a bar per device (Rich)."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from farpoint.wire.rollouts import RolloutOut, RolloutSummary

__all__ = ["board", "progress", "releases", "styled"]

_DEVICE_ROWS = 40
"""Devices listed on the live board; the rest are summed up (failures are always shown)."""
_STEPS = {"pending": 0, "downloading": 1, "verifying": 2, "installing": 3, "active": 4}
_STYLE = {
    "succeeded": "green",
    "active": "green",
    "failed": "red",
    "rolled_back": "red",
    "aborted": "red",
    "paused": "yellow",
    "running": "cyan",
    "waiting": "dim",
    "stopped": "red",
}


def styled(word: str) -> Text:
    return Text(word, style=_STYLE.get(word, "yellow"))


def releases(r: RolloutSummary) -> str:
    before = "none" if r.from_release_id is None else str(r.from_release_id)
    return f"{before} → {r.to_release_id}"


def progress(r: RolloutSummary) -> str:
    counts = {phase: n for phase, n in r.progress.items() if n}
    return ", ".join(f"{n} {phase}" for phase, n in counts.items()) or "no devices"


def _batch_name(r: RolloutSummary, index: int) -> str:
    return "canary" if r.strategy == "canary" and index == 0 else f"batch {index}"


def _batches(r: RolloutSummary) -> Table:
    grid = Table.grid(padding=(0, 1))
    for b in r.batches:
        bad = b.failed > 0 or b.state in ("failed", "stopped")
        grid.add_row(
            Text(f"{_batch_name(r, b.index):>8}"),
            ProgressBar(
                total=max(b.size, 1),
                completed=b.healthy,
                width=30,
                complete_style="red" if bad else "green",
                finished_style="green",
            ),
            Text(f"{b.healthy}/{b.size} healthy"),
            Text(
                f"{b.failed} failed, {b.in_progress} in progress, {b.timed_out} silent",
                style="dim",
            ),
            styled(b.state),
        )
    return grid


def _device_bar(phase: str, healthy: bool) -> ProgressBar:
    failed = phase in ("failed", "rolled_back")
    step = 5 if healthy else _STEPS.get(phase, 0)
    return ProgressBar(
        total=5,
        completed=5 if failed else step,
        width=12,
        complete_style="red" if failed else "cyan",
        finished_style="red" if failed else "green",
    )


def _devices(r: RolloutOut) -> RenderableType:
    shown = [d for d in r.devices if d.phase in ("failed", "rolled_back")]
    current = [d for d in r.devices if d.batch == r.current_batch and d not in shown]
    others = [d for d in r.devices if d not in shown and d not in current]
    rows = (shown + current + others)[: max(_DEVICE_ROWS, len(shown))]
    table = Table("device", "batch", "progress", "phase", "error", header_style="bold")
    for d in sorted(rows, key=lambda d: (d.batch, d.device_name)):
        phase = f"{d.phase} (committed)" if d.committed else d.phase
        if d.healthy and not d.committed:
            phase += " (healthy)"
        if d.timed_out:
            phase += " (silent)"
        table.add_row(
            Text(d.device_name),
            Text(_batch_name(r, d.batch)),
            _device_bar(d.phase, d.healthy),
            Text(phase, style="green") if d.healthy else styled(d.phase),
            Text(d.error or "", style="red"),
        )
    if len(r.devices) > len(rows):
        return Group(table, Text(f"… and {len(r.devices) - len(rows)} more devices", style="dim"))
    return table


def board(r: RolloutOut) -> Group:
    """The rollout as a person watches it: state, each batch's bar, each device's bar."""
    headline = Text(
        f"rollout {r.id}: {r.model} release {releases(r)} on fleet {r.fleet} ({r.strategy})  "
    )
    headline.append_text(styled(r.state))
    parts: list[RenderableType] = [headline]
    if r.paused_reason:
        parts.append(Text(f"paused: {r.paused_reason}", style="yellow"))
    if r.reason:
        parts.append(Text(r.reason, style="red" if r.state != "succeeded" else "dim"))
    if not r.devices:
        parts.append(Text("no devices in the fleet", style="dim"))
        return Group(*parts)
    parts += [_batches(r), _devices(r)]
    return Group(*parts)
