"""Users, teams and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from farpoint.wire.common import Name, Role, WireModel

__all__ = [
    "Me",
    "TeamCreate",
    "TeamOut",
    "TokenCreate",
    "TokenCreated",
    "TokenOut",
    "UserCreate",
    "UserOut",
]


class TeamCreate(WireModel):
    name: Name


class TeamOut(WireModel):
    id: int
    name: str
    created_at: datetime


class UserCreate(WireModel):
    name: Name
    roles: list[Role] = Field(min_length=1)
    teams: list[str] = Field(default_factory=list)
    kind: Literal["person", "service"] = "person"
    email: str | None = None


class UserOut(WireModel):
    id: int
    name: str
    kind: Literal["person", "service"]
    roles: list[Role]
    teams: list[str]
    email: str | None
    created_at: datetime


class TokenCreate(WireModel):
    user: str
    """The user the token belongs to."""
    roles: list[Role] | None = None
    """A subset of the user's roles; all of them when omitted."""
    expires_in_s: int = Field(default=30 * 24 * 3600, gt=0, le=366 * 24 * 3600)
    description: str = Field(default="", max_length=200)


class TokenOut(WireModel):
    id: int
    user: str
    roles: list[Role]
    description: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class TokenCreated(TokenOut):
    token: str
    """The secret; shown once, never stored by the server."""


class Me(WireModel):
    user: str
    kind: Literal["person", "service"]
    roles: list[Role]
    teams: list[str]
    token_id: int
    expires_at: datetime
