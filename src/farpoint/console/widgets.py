"""Small pieces every view uses: headings, empty states, chips, figures, times."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from nicegui import ui

from farpoint.console.session import Api
from farpoint.sdk import Client

T = TypeVar("T")

__all__ = [
    "ROLE_COLOURS",
    "ago",
    "code_block",
    "empty_state",
    "human_bytes",
    "live",
    "num",
    "pass_mark",
    "role_chips",
    "section",
    "short",
    "stamp",
    "table",
]

ROLE_COLOURS: dict[str, str] = {
    "feature": "blue-7",
    "label": "green-7",
    "protected": "orange-8",
    "pii": "red-7",
    "id": "blue-grey-6",
    "timestamp": "purple-6",
    "ignored": "grey-5",
}
"""Quasar colours of column roles: a protected or PII column should catch the eye."""


def section(title: str, hint: str = "") -> None:
    """A heading for one block of a view."""
    with ui.row().classes("items-baseline gap-3 mt-6"):
        ui.label(title).classes("text-h6 text-weight-medium")
        if hint:
            ui.label(hint).classes("text-caption text-grey-7")


def empty_state(text: str, command: str = "") -> None:
    """What is missing, and the command that adds it."""
    with ui.card().props("flat bordered").classes("w-full bg-grey-1 empty-state"):
        ui.label(text).classes("text-body1")
        if command:
            ui.code(command, language="bash").classes("w-full")


def short(digest: str, keep: int = 12) -> str:
    """`sha256:abcdef123456…`: enough of a digest to recognise it."""
    algo, sep, value = digest.partition(":")
    if not sep:
        return digest[:keep] + ("…" if len(digest) > keep else "")
    return f"{algo}:{value[:keep]}…" if len(value) > keep else digest


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def stamp(when: datetime | None) -> str:
    """A UTC time to the minute, or a dash."""
    if when is None:
        return "—"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(when: datetime | None, now: datetime | None = None) -> str:
    """`12 s ago`, `3 min ago`, `never`."""
    if when is None:
        return "never"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - when).total_seconds()
    if seconds < 0:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.0f} h ago"
    return stamp(when)


def pass_mark(passed: bool | None) -> str:
    return "—" if passed is None else ("✓" if passed else "✗")


def role_chips(roles: Mapping[str, str]) -> None:
    """Column roles grouped by role: `label: [y]  protected: [sex] [age_band]`."""
    by_role: dict[str, list[str]] = {}
    for column, role in roles.items():
        by_role.setdefault(str(role), []).append(column)
    order = [r for r in ROLE_COLOURS if r in by_role] + sorted(set(by_role) - set(ROLE_COLOURS))
    with ui.column().classes("gap-1"):
        for role in order:
            with ui.row().classes("items-center gap-1 no-wrap"):
                ui.label(f"{role}:").classes("text-caption text-grey-8 w-20 text-right")
                with ui.row().classes("gap-1"):
                    for column in sorted(by_role[role]):
                        colour = ROLE_COLOURS.get(role, "grey-7")
                        chip = ui.chip(column, color=colour, text_color="white")
                        chip.props("dense square").classes(f"role-{role}")
                        chip.tooltip(f"{role} column")


def table(
    columns: Iterable[tuple[str, str]],
    rows: list[dict[str, Any]],
    *,
    key: str | None = None,
    dense: bool = True,
) -> ui.table:
    """A plain read-only table: `columns` are (field, heading) pairs."""
    cols = [
        {"name": field, "label": heading, "field": field, "align": "left"}
        for field, heading in columns
    ]
    row_key = key or cols[0]["name"]
    t = ui.table(columns=cols, rows=rows, row_key=row_key).classes("w-full")
    t.props("flat bordered wrap-cells" + (" dense" if dense else ""))
    return t


def code_block(text: str, language: str = "bash") -> None:
    ui.code(text, language=language).classes("w-full text-sm")


def num(value: float | int | None) -> str:
    """A figure to four significant digits, or a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"


async def live(
    api: Api,
    load: Callable[[Client], T],
    draw: Callable[[T], None],
    *,
    every: float | None = None,
) -> Callable[[], Awaitable[None]]:
    """A block drawn from `load`'s answer, redrawn every `every` seconds when given.

    `load` runs in a worker thread with the SDK; `draw` runs on the page. When a
    refresh fails, the last good drawing stays and the failure is notified once.
    Returns the refresh, for actions that change what the block shows.
    """
    box = ui.column().classes("w-full gap-2")
    with box:
        ui.spinner(size="lg")

    drawn = False

    async def refresh() -> None:
        nonlocal drawn
        data = await api.call(load)
        if data is None:
            if not drawn:
                box.clear()
                with box:
                    ui.label("Not available right now (see the message above).").classes(
                        "text-grey-7"
                    )
            return
        box.clear()
        with box:
            draw(data)
        drawn = True

    await refresh()
    if every:
        ui.timer(every, refresh)
    return refresh
