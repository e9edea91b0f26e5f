"""Users, teams and tokens: the use cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from farpoint.core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from farpoint.server.auth import Principal, make_token
from farpoint.server.identity import repository as repo
from farpoint.server.identity.tables import ApiToken, Team, User
from farpoint.wire.common import Role
from farpoint.wire.identity import TeamOut, TokenCreate, TokenCreated, TokenOut, UserCreate, UserOut


def user_out(s: Session, user: User) -> UserOut:
    return UserOut(
        id=user.id,
        name=user.name,
        kind=user.kind,
        roles=[Role(r) for r in user.roles],
        teams=repo.teams_of(s, user.id),
        email=user.email,
        created_at=user.created_at,
    )


def token_out(user: User, row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id,
        user=user.name,
        roles=[Role(r) for r in row.roles],
        description=row.description,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def create_team(s: Session, name: str) -> TeamOut:
    if repo.team_by_name(s, name) is not None:
        raise Conflict(f"team {name!r} already exists")
    team = Team(name=name)
    s.add(team)
    s.flush()
    return TeamOut.model_validate(team)


def add_member(s: Session, team: str, user: str) -> None:
    t = repo.team_by_name(s, team)
    if t is None:
        raise NotFound(f"team {team!r} does not exist")
    u = repo.user_by_name(s, user)
    if u is None:
        raise NotFound(f"user {user!r} does not exist")
    if team in repo.teams_of(s, u.id):
        raise Conflict(f"{user!r} is already a member of team {team!r}")
    repo.add_member(s, t.id, u.id)
    s.flush()


def create_user(s: Session, body: UserCreate) -> UserOut:
    if repo.user_by_name(s, body.name) is not None:
        raise Conflict(f"user {body.name!r} already exists")
    teams = []
    for team_name in body.teams:
        team = repo.team_by_name(s, team_name)
        if team is None:
            raise NotFound(f"team {team_name!r} does not exist; create it first")
        teams.append(team)
    user = User(
        name=body.name,
        kind=body.kind,
        email=body.email,
        roles=sorted({r.value for r in body.roles}),
    )
    s.add(user)
    s.flush()
    for team in teams:
        repo.add_member(s, team.id, user.id)
    s.flush()
    return user_out(s, user)


def create_token(s: Session, body: TokenCreate, now: datetime) -> TokenCreated:
    user = repo.user_by_name(s, body.user)
    if user is None:
        raise NotFound(f"user {body.user!r} does not exist")
    held = set(user.roles)
    wanted = {r.value for r in body.roles} if body.roles else held
    extra = wanted - held
    if extra:
        raise ValidationFailed(
            f"user {user.name!r} does not hold the roles {sorted(extra)}; "
            f"a token can carry only the user's roles {sorted(held)}"
        )
    row = ApiToken(
        user_id=user.id,
        secret_hash="",
        roles=sorted(wanted),
        description=body.description,
        created_at=now,
        expires_at=now + timedelta(seconds=body.expires_in_s),
        revoked_at=None,
    )
    s.add(row)
    s.flush()
    token, secret_hash = make_token(row.id)
    row.secret_hash = secret_hash
    s.flush()
    out = token_out(user, row)
    return TokenCreated(**out.model_dump(), token=token)


def revoke_token(s: Session, principal: Principal, token_id: int, now: datetime) -> None:
    row = repo.token_by_id(s, token_id)
    if row is None:
        raise NotFound(f"token {token_id} does not exist")
    if Role.ADMIN not in principal.roles and row.user_id != principal.user_id:
        raise Forbidden("only an admin or the token's owner can revoke it")
    if row.revoked_at is None:
        row.revoked_at = now
    s.flush()


def bootstrap_admin(s: Session, name: str, expires_in_s: int) -> TokenCreated:
    """The first admin and its token (`farpoint admin init`); refuses when users exist."""
    if repo.list_users(s):
        raise Conflict("users already exist; admin init runs once, on an empty database")
    create_user(s, UserCreate(name=name, roles=[Role.ADMIN]))
    return create_token(
        s,
        TokenCreate(user=name, expires_in_s=expires_in_s, description="admin init"),
        datetime.now(UTC),
    )
