"""`NAME@VERSION` references as the server reads them: a bad one is a 422 naming its kind."""

from __future__ import annotations

from farpoint.core.errors import ValidationFailed
from farpoint.wire.common import parse_ref

__all__ = ["parse_reference"]


def parse_reference(ref: str, kind: str) -> tuple[str, int | None]:
    """`(name, version)`; version None means the latest."""
    try:
        return parse_ref(ref)
    except ValueError as exc:
        raise ValidationFailed(f"bad {kind} reference: {exc}") from exc
