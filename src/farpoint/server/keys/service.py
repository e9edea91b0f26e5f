"""Users' public signing keys: register, list, revoke, and which keys may sign for whom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farpoint.core import keys
from farpoint.core.errors import Conflict, Forbidden, NotFound
from farpoint.server.auth import Principal
from farpoint.server.identity import repository as identity_repo
from farpoint.server.keys import repository as repo
from farpoint.server.keys.tables import SigningKey
from farpoint.wire.common import Role
from farpoint.wire.trust import KeyCreate, KeyOut

__all__ = [
    "active_public_keys",
    "get",
    "key_out",
    "list_for",
    "register",
    "revoke",
    "why_not_usable",
]


def key_out(s: Session, row: SigningKey) -> KeyOut:
    user = identity_repo.user_by_id(s, row.user_id)
    assert user is not None
    return KeyOut(
        key_id=row.key_id,
        name=row.name,
        user=user.name,
        public_key_pem=row.public_key_pem,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def register(s: Session, principal: Principal, body: KeyCreate, now: datetime) -> KeyOut:
    """Bind a public key to the caller; the key id is computed here, never taken on trust."""
    public = keys.load_public_key(body.public_key_pem)
    kid = keys.key_id(public)
    existing = repo.by_key_id(s, kid)
    if existing is not None:
        raise Conflict(f"key {kid} is already registered; a key is bound to one user, once")
    row = SigningKey(
        key_id=kid,
        name=body.name,
        user_id=principal.user_id,
        public_key_pem=keys.public_key_pem(public).decode(),
        created_at=now,
        revoked_at=None,
    )
    s.add(row)
    try:
        s.flush()
    except IntegrityError as exc:  # a concurrent registration of the same key
        raise Conflict(f"key {kid} is already registered") from exc
    return key_out(s, row)


def list_for(
    s: Session, principal: Principal, user: str | None, after_id: int, limit: int
) -> list[SigningKey]:
    """The caller's own keys; an admin sees everyone's, or one user's with `user`."""
    is_admin = Role.ADMIN in principal.roles
    if user is not None and user != principal.user and not is_admin:
        raise Forbidden("only an admin can list another user's keys")
    user_id: int | None = principal.user_id
    if user is not None:
        row = identity_repo.user_by_name(s, user)
        if row is None:
            raise NotFound(f"user {user!r} does not exist")
        user_id = row.id
    elif is_admin:
        user_id = None
    return list(repo.list_keys(s, after_id, limit, user_id))


def get(s: Session, key_id: str) -> KeyOut:
    """Any registered key, revoked or not: public keys are public, verifiers need them."""
    row = repo.by_key_id(s, key_id)
    if row is None:
        raise NotFound(f"key {key_id} is not registered")
    return key_out(s, row)


def revoke(s: Session, principal: Principal, key_id: str, now: datetime) -> None:
    row = repo.by_key_id(s, key_id)
    if row is None:
        raise NotFound(f"key {key_id} is not registered")
    if Role.ADMIN not in principal.roles and row.user_id != principal.user_id:
        raise Forbidden("only an admin or the key's owner can revoke it")
    if row.revoked_at is None:
        row.revoked_at = now
    s.flush()


def active_public_keys(s: Session, user_id: int) -> dict[str, keys.PublicKey]:
    """The keys that may sign for this user now, by key id."""
    return {
        row.key_id: keys.load_public_key(row.public_key_pem)
        for row in repo.active_keys_of(s, user_id)
    }


def why_not_usable(s: Session, user_id: int, key_id: str) -> str:
    """Why `key_id` cannot sign for the user: unregistered, someone else's, or revoked."""
    row = repo.by_key_id(s, key_id)
    if row is None:
        return f"key {key_id} is not registered; register it with `farpoint keys register`"
    if row.user_id != user_id:
        return f"key {key_id} is registered to another user; sign with one of your own keys"
    if row.revoked_at is not None:
        return f"key {key_id} was revoked at {row.revoked_at.isoformat()}; it signs nothing now"
    return f"key {key_id} is registered to you and active"
