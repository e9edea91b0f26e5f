"""How the CLI shows things: Rich tables and panels for people, JSON for machines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = [
    "FAIL",
    "PASS",
    "ago",
    "cell",
    "console",
    "emit_json",
    "error",
    "fields",
    "note",
    "pairs",
    "short",
    "table",
    "when",
]

PASS = "✓"
FAIL = "✗"
console = Console(highlight=False, soft_wrap=False)
"""Standard output; Rich looks `sys.stdout` up when it writes, so test runners capture it."""


def error(message: str) -> None:
    """`error: <message>` on standard error, plain (no markup to misread)."""
    typer.echo(f"error: {message}", err=True)


def note(message: str) -> None:
    """A remark for people on standard error, kept out of what scripts parse."""
    typer.echo(message, err=True)


def emit_json(value: BaseModel | Sequence[BaseModel] | Mapping[str, Any]) -> None:
    """Print a model, a list of models or a mapping as indented JSON."""
    data: Any
    if isinstance(value, BaseModel):
        data = value.model_dump(mode="json")
    elif isinstance(value, Mapping):
        data = dict(value)
    else:
        data = [item.model_dump(mode="json") for item in value]
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def when(moment: datetime | None) -> str:
    """`2025-03-01 14:05 UTC`, or `-`."""
    if moment is None:
        return "-"
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """`never`, `12s ago`, `5m ago`, `3h ago`, `2d ago`."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 0:
        return when(moment)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def pairs(values: Mapping[str, Any]) -> str:
    """`a=1, b=2`, or `-` when empty."""
    return ", ".join(f"{k}={cell(v)}" for k, v in values.items()) or "-"


def short(digest: str | None, size: int = 12) -> str:
    """`sha256:0123456789ab` from a full content address."""
    if not digest:
        return "-"
    algo, sep, hexpart = digest.partition(":")
    return f"{algo}:{hexpart[:size]}" if sep else digest[:size]


def cell(value: Any) -> str:
    """One value as table text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, BaseModel):
        return json.dumps(value.model_dump(mode="json"), ensure_ascii=False)
    if isinstance(value, Mapping):
        return pairs(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(cell(v) for v in value) or "-"
    return str(getattr(value, "value", value))  # StrEnum members print their value


def _text(value: Any, overflow: Literal["fold", "ellipsis"] = "ellipsis") -> RenderableType:
    if isinstance(value, Text | Table | Panel):
        return value
    return Text(cell(value), overflow=overflow)  # not markup: [brackets] stay themselves


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None
) -> None:
    """Print rows under `columns`; `(none)` when there are no rows."""
    grid = Table(*columns, title=title, title_justify="left", header_style="bold")
    count = 0
    for row in rows:
        grid.add_row(*(_text(v) for v in row))
        count += 1
    if count == 0:
        console.print(Text(f"{title or 'nothing'}: (none)", style="dim"))
        return
    console.print(grid)


def fields(title: str, items: Iterable[tuple[str, Any]], *, footer: Any = None) -> None:
    """A key-value panel: one line per field."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for key, value in items:
        grid.add_row(key, _text(value, "fold"))  # digests and secrets are copied whole
    console.print(Panel(grid, title=Text(title), title_align="left", expand=False))
    if footer is not None:
        console.print(footer)
