"""Vocabulary shared across the API."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "NAME_PATTERN",
    "ColumnRole",
    "Name",
    "Page",
    "Problem",
    "Role",
    "WireModel",
    "parse_ref",
]

NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


class Role(StrEnum):
    """Roles from DESIGN §1; a token carries one or more."""

    DATA_SCIENTIST = "data-scientist"
    AI_ENGINEER = "ai-engineer"
    MLOPS_ENGINEER = "mlops-engineer"
    APP_DEVELOPER = "app-developer"
    IT_OPS = "it-ops"
    BUSINESS = "business"
    ADMIN = "admin"


class ColumnRole(StrEnum):
    FEATURE = "feature"
    LABEL = "label"
    PROTECTED = "protected"
    PII = "pii"
    ID = "id"
    TIMESTAMP = "timestamp"
    IGNORED = "ignored"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list; pass `next_cursor` back as `cursor` for the next one."""

    items: list[T]
    next_cursor: str | None = None


def parse_ref(ref: str) -> tuple[str, int | None]:
    """Split `NAME@VERSION` (version optional) into its parts; ValueError if malformed."""
    name, sep, version = ref.partition("@")
    if not name:
        raise ValueError(f"empty name in reference {ref!r}")
    if not sep:
        return name, None
    if not version.isdigit():
        raise ValueError(f"version in {ref!r} must be a positive integer")
    return name, int(version)


JSON = dict[str, Any]
Labels = Annotated[dict[str, str], Field(default_factory=dict)]
