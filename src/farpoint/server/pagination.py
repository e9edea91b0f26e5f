"""Cursor pagination: the cursor is the last id of the previous page."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from farpoint.core.errors import BadRequest

__all__ = ["Limit", "decode_cursor", "next_cursor"]

Limit = Annotated[int, Query(ge=1, le=500)]


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise BadRequest(f"cursor {cursor!r} is not one this server issued")
    return int(cursor)


def next_cursor(ids: list[int], limit: int) -> str | None:
    return str(ids[-1]) if len(ids) == limit and ids else None
