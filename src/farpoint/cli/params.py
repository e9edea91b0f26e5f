"""Parsing of command-line values shared by several commands."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

import typer

from farpoint.wire.common import parse_ref

__all__ = ["Json", "check_ref", "parse_duration", "parse_pairs"]

Json = Annotated[bool, typer.Option("--json", help="Print JSON for machines instead of tables.")]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")


def parse_duration(text: str, option: str = "--expires-in") -> int:
    """Seconds in `90`, `90s`, `15m`, `12h`, `1d` or `2w`."""
    match = _DURATION.match(text.lower())
    if match is None or int(match.group(1)) == 0:
        raise typer.BadParameter(
            f"{text!r} is not a duration; use a number with s, m, h, d or w, such as 12h or 7d",
            param_hint=option,
        )
    return int(match.group(1)) * _UNITS[match.group(2) or "s"]


def parse_pairs(values: Iterable[str] | None, option: str) -> dict[str, str]:
    """`["a=1", "b=2"]` → `{"a": "1", "b": "2"}`; the last of repeated keys wins."""
    pairs: dict[str, str] = {}
    for value in values or ():
        key, sep, item = value.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        pairs[key.strip()] = item.strip()
    return pairs


def check_ref(value: str) -> str:
    """A typer callback accepting `NAME` or `NAME@VERSION`."""
    try:
        parse_ref(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{exc}; write NAME@VERSION, such as vitals@3") from exc
    return value
