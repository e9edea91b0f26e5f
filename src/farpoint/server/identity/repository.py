"""All SQL for users, teams and tokens."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from farpoint.server.identity.tables import ApiToken, Team, TeamMember, User


def user_by_name(s: Session, name: str) -> User | None:
    return s.scalars(select(User).where(User.name == name)).one_or_none()


def user_by_id(s: Session, user_id: int) -> User | None:
    return s.get(User, user_id)


def list_users(s: Session) -> Sequence[User]:
    return s.scalars(select(User).order_by(User.id)).all()


def team_by_name(s: Session, name: str) -> Team | None:
    return s.scalars(select(Team).where(Team.name == name)).one_or_none()


def team_by_id(s: Session, team_id: int) -> Team | None:
    return s.get(Team, team_id)


def list_teams(s: Session) -> Sequence[Team]:
    return s.scalars(select(Team).order_by(Team.id)).all()


def teams_of(s: Session, user_id: int) -> list[str]:
    q = (
        select(Team.name)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user_id)
        .order_by(Team.name)
    )
    return list(s.scalars(q).all())


def add_member(s: Session, team_id: int, user_id: int) -> None:
    s.add(TeamMember(team_id=team_id, user_id=user_id))


def token_by_id(s: Session, token_id: int) -> ApiToken | None:
    return s.get(ApiToken, token_id)


def list_tokens(s: Session, after_id: int, limit: int) -> Sequence[ApiToken]:
    q = select(ApiToken).where(ApiToken.id > after_id).order_by(ApiToken.id).limit(limit)
    return s.scalars(q).all()
