"""All SQL for the image repository, trust files and director metadata."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from farpoint.server.tuf.tables import DirectorTargets, TufMetadata, TufTrustFile

__all__ = [
    "add_director",
    "add_metadata",
    "director_of",
    "latest",
    "latest_head",
    "metadata_version",
    "replace_director",
    "trust_file",
    "trust_file_names",
    "upsert_trust_file",
]


def latest(s: Session, role: str) -> TufMetadata | None:
    q = select(TufMetadata).where(TufMetadata.role == role)
    return s.scalars(q.order_by(TufMetadata.version.desc()).limit(1)).one_or_none()


def latest_head(s: Session, role: str) -> tuple[int, str, datetime] | None:
    """(version, digest, expires) of a role's latest version, without its bytes: what the
    frequent checks need (is it due for re-signing, which root is current)."""
    q = (
        select(TufMetadata.version, TufMetadata.digest, TufMetadata.expires)
        .where(TufMetadata.role == role)
        .order_by(TufMetadata.version.desc())
        .limit(1)
    )
    row = s.execute(q).one_or_none()
    return None if row is None else (row[0], row[1], row[2])


def metadata_version(s: Session, role: str, version: int) -> TufMetadata | None:
    q = select(TufMetadata).where(TufMetadata.role == role, TufMetadata.version == version)
    return s.scalars(q).one_or_none()


def add_metadata(s: Session, row: TufMetadata) -> None:
    s.add(row)
    s.flush()


def trust_file(s: Session, name: str) -> TufTrustFile | None:
    return s.get(TufTrustFile, name)


def upsert_trust_file(
    s: Session, name: str, data: bytes, digest: str, actor: str, now: datetime
) -> None:
    row = s.get(TufTrustFile, name)
    if row is None:
        s.add(TufTrustFile(name=name, data=data, digest=digest, updated_by=actor, updated_at=now))
    else:
        row.data, row.digest, row.updated_by, row.updated_at = data, digest, actor, now
    s.flush()


def director_of(s: Session, device_id: str) -> DirectorTargets | None:
    return s.get(DirectorTargets, device_id)


def add_director(s: Session, row: DirectorTargets) -> None:
    s.add(row)
    s.flush()


def replace_director(
    s: Session,
    device_id: str,
    expected_version: int,
    *,
    version: int,
    content_digest: str,
    data: bytes,
    expires: datetime,
    signed_at: datetime,
) -> bool:
    """Write a new version only if nobody else did since `expected_version` was read."""
    result = s.execute(
        update(DirectorTargets)
        .where(
            DirectorTargets.device_id == device_id,
            DirectorTargets.version == expected_version,
        )
        .values(
            version=version,
            content_digest=content_digest,
            data=data,
            expires=expires,
            signed_at=signed_at,
        )
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def trust_file_names(s: Session) -> list[str]:
    return list(s.scalars(select(TufTrustFile.name).order_by(TufTrustFile.name)).all())
