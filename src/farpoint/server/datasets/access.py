"""Who may read a dataset's rows and who may change it.

Everyone with a role sees a dataset's metadata and lineage. Its rows, and changes to it
(new versions, contract, classification, transforms, erasure), are for the members of
its owning team who are data-scientists (ai-engineers may read rows too). A dataset
without a team is open to every data-scientist and ai-engineer, as before teams existed.
An admin is not let in by the admin role alone: an admin who must read rows joins the
team first, and that is on the audit log.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from farpoint.core.errors import Forbidden
from farpoint.server.auth import Principal
from farpoint.server.datasets.tables import Dataset
from farpoint.server.identity import repository as identity_repo
from farpoint.wire.common import Role

__all__ = ["require_member", "require_reader", "require_writer", "team_name"]

_READERS = frozenset({Role.DATA_SCIENTIST, Role.AI_ENGINEER})
_WRITERS = frozenset({Role.DATA_SCIENTIST})


def team_name(s: Session, dataset: Dataset) -> str | None:
    if dataset.team_id is None:
        return None
    team = identity_repo.team_by_id(s, dataset.team_id)
    return team.name if team else None


def _require(s: Session, p: Principal, dataset: Dataset, roles: frozenset[Role], what: str) -> None:
    if not p.roles & roles:
        need = " or ".join(sorted(r.value for r in roles))
        raise Forbidden(f"{what} of dataset {dataset.name!r} needs the role {need}")
    team = team_name(s, dataset)
    if team is not None and team not in identity_repo.teams_of(s, p.user_id):
        raise Forbidden(
            f"dataset {dataset.name!r} belongs to team {team!r}; {what} is for its members "
            f"({p.user} is not one: an admin can add them with `farpoint team add-member`)"
        )


def require_reader(s: Session, p: Principal, dataset: Dataset) -> None:
    """Rows: a data-scientist or ai-engineer of the owning team."""
    _require(s, p, dataset, _READERS, "reading the rows")


def require_writer(s: Session, p: Principal, dataset: Dataset) -> None:
    """Changes: a data-scientist of the owning team."""
    _require(s, p, dataset, _WRITERS, "changing the data")


def require_member(s: Session, p: Principal, team: str) -> None:
    """Only a team's members create datasets owned by it."""
    if identity_repo.team_by_name(s, team) is not None and team not in identity_repo.teams_of(
        s, p.user_id
    ):
        raise Forbidden(f"{p.user} is not a member of team {team!r}, so cannot give it a dataset")
