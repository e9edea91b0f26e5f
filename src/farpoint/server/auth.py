"""Bearer tokens for people and service accounts; every route declares the roles it needs."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from farpoint.core.errors import Forbidden, Unauthorized
from farpoint.server.identity import repository as repo
from farpoint.wire.common import Role

__all__ = [
    "ANY_ROLE",
    "Principal",
    "Requires",
    "hash_secret",
    "make_token",
    "parse_token",
]

ANY_ROLE: frozenset[Role] = frozenset(Role)
_PREFIX = "fpt"


@dataclass(frozen=True)
class Principal:
    user_id: int
    user: str
    kind: str
    roles: frozenset[Role]
    token_id: int
    expires_at: datetime

    def has_any(self, roles: frozenset[Role]) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles & roles)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def make_token(token_id: int) -> tuple[str, str]:
    """A new token string for the row `token_id` and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return f"{_PREFIX}_{token_id}_{secret}", hash_secret(secret)


def parse_token(token: str) -> tuple[int, str]:
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1].isdigit():
        raise Unauthorized("the bearer token is malformed; expected fpt_<id>_<secret>")
    return int(parts[1]), parts[2]


class Requires:
    """Dependency: authenticate the bearer token and require one of `roles` (admin always passes).

    The roles are kept on the instance so tests can enumerate every route's requirement.
    """

    def __init__(self, *roles: Role) -> None:
        self.roles: frozenset[Role] = frozenset(roles) if roles else ANY_ROLE

    def __call__(self, request: Request) -> Principal:
        principal = authenticate(request)
        if not principal.has_any(self.roles):
            need = ", ".join(sorted(r.value for r in self.roles))
            have = ", ".join(sorted(r.value for r in principal.roles)) or "none"
            raise Forbidden(f"this needs one of the roles [{need}]; the token carries [{have}]")
        return principal


def authenticate(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send a bearer token: Authorization: Bearer <token>")
    token_id, secret = parse_token(token.strip())
    ctx = request.app.state.ctx
    with ctx.db.sessions() as s:
        row = repo.token_by_id(s, token_id)
        if row is None or not hmac.compare_digest(row.secret_hash, hash_secret(secret)):
            raise Unauthorized("the bearer token is not valid")
        if row.revoked_at is not None:
            raise Unauthorized("the bearer token was revoked")
        now = datetime.fromtimestamp(ctx.clock(), UTC)
        if row.expires_at <= now:
            raise Unauthorized("the bearer token expired; ask an admin for a new one")
        user = repo.user_by_id(s, row.user_id)
        assert user is not None
        # A token never carries more than its user holds now.
        roles = frozenset(Role(r) for r in row.roles) & frozenset(Role(r) for r in user.roles)
        return Principal(
            user_id=user.id,
            user=user.name,
            kind=user.kind,
            roles=roles,
            token_id=row.id,
            expires_at=row.expires_at,
        )
