"""The admin view: users, service accounts and their API tokens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.session import Api
from farpoint.console.widgets import empty_state, live, section, stamp, table
from farpoint.sdk import Client
from farpoint.wire.identity import TokenOut, UserOut

__all__ = ["register"]


@dataclass
class _Board:
    users: list[UserOut]
    tokens: list[TokenOut]


def _load(client: Client) -> _Board:
    return _Board(client.list_users(), client.list_tokens())


def _token_state(token: TokenOut, now: datetime) -> str:
    if token.revoked_at is not None:
        return f"revoked {stamp(token.revoked_at)}"
    expires = token.expires_at if token.expires_at.tzinfo else token.expires_at.replace(tzinfo=UTC)
    return "expired" if expires <= now else "valid"


def _draw(board: _Board) -> None:
    now = datetime.now(UTC)
    section("Users", "people and service accounts")
    if not board.users:
        empty_state("No users yet.", "farpoint user create NAME --role data-scientist")
    else:
        table(
            [
                ("name", "User"),
                ("kind", "Kind"),
                ("roles", "Roles"),
                ("teams", "Teams"),
                ("email", "Email"),
                ("created", "Created"),
            ],
            [
                {
                    "name": u.name,
                    "kind": u.kind,
                    "roles": ", ".join(str(r) for r in u.roles),
                    "teams": ", ".join(u.teams) or "—",
                    "email": u.email or "—",
                    "created": stamp(u.created_at),
                }
                for u in sorted(board.users, key=lambda u: u.name)
            ],
            key="name",
        )
    section("API tokens", "secrets are shown once, when created, never here")
    if not board.tokens:
        empty_state("No tokens yet.", "farpoint token create USER --role ROLE")
    else:
        table(
            [
                ("id", "Id"),
                ("user", "User"),
                ("roles", "Roles"),
                ("description", "Description"),
                ("state", "State"),
                ("expires", "Expires"),
            ],
            [
                {
                    "id": t.id,
                    "user": t.user,
                    "roles": ", ".join(str(r) for r in t.roles),
                    "description": t.description or "—",
                    "state": _token_state(t, now),
                    "expires": stamp(t.expires_at),
                }
                for t in sorted(board.tokens, key=lambda t: t.id, reverse=True)
            ],
            key="id",
        )


def register() -> None:
    @ui.page("/admin", title="Administration · Farpoint", response_timeout=30)
    async def admin(request: Request) -> Response | None:
        api = await open_view(request, "admin")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw)
        return None
