"""The image repository: verify what admins and release managers upload, exactly as a TUF
client would, and keep snapshot and timestamp signed with the online keys.

Nothing is stored unless every check passes; each accepted upload re-signs snapshot and
timestamp in the same transaction, so readers never see a snapshot that lists metadata
the repository does not hold.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from securesystemslib.exceptions import VerificationError
from sqlalchemy.orm import Session
from tuf.api.exceptions import LengthOrHashMismatchError
from tuf.api.metadata import (  # type: ignore[attr-defined]  # re-exported from _payload
    DelegatedRole,
    Metadata,
    MetaFile,
    Root,
    Signature,
    Snapshot,
    Targets,
    Timestamp,
)
from tuf.api.serialization import DeserializationError
from tuf.api.serialization.json import CanonicalJSONSerializer

from farpoint.core.digest import digest_bytes, hex_of
from farpoint.core.errors import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from farpoint.server.audit import service as audit
from farpoint.server.context import AppContext
from farpoint.server.releases import repository as releases_repo
from farpoint.server.tuf import online, signatures
from farpoint.server.tuf import repository as repo
from farpoint.server.tuf.online import ONLINE_ROLES, OnlineKeys, online_keys
from farpoint.server.tuf.tables import TufMetadata
from farpoint.wire.tuf import OnlineKeysOut, RoleStatus, TufStatus, UploadResult

__all__ = [
    "DIRECTOR_FIELD",
    "MAX_METADATA_BYTES",
    "current_root",
    "keys_of",
    "metadata_bytes",
    "now_of",
    "online_keys_out",
    "prepare_online_rotation",
    "settle_online_keys",
    "signer_for",
    "status",
    "trust_file_bytes",
    "upload_releases",
    "upload_root",
    "upload_targets",
    "upload_trust_file",
]

DIRECTOR_FIELD = "x-farpoint-director"
MAX_METADATA_BYTES = 5_000_000
"""The size python-tuf's client accepts for targets metadata by default."""
SNAPSHOT_LIFETIME = timedelta(days=7)
TIMESTAMP_LIFETIME = timedelta(days=1)
_RELEASE_TARGET = re.compile(
    r"^releases/([1-9][0-9]{0,17})/(manifest\.json|model\.onnx|model\.sig)$"
)
TRUST_NAME = re.compile(r"^(bindings\.json|policy\.json|policies/[a-z0-9][a-z0-9._-]{0,62}\.json)$")
_T = TypeVar("_T", Root, Targets)


def now_of(ctx: AppContext) -> datetime:
    return datetime.fromtimestamp(ctx.clock(), UTC)


def keys_of(ctx: AppContext) -> OnlineKeys:
    return online_keys(ctx.settings.key_dir)


def _named_online(root_bytes: bytes) -> dict[str, frozenset[str]]:
    """The key ids a root names for each online role (the director's in its custom field)."""
    root: Root = Metadata[Root].from_bytes(root_bytes).signed
    named = {role: frozenset(root.roles[role].keyids) for role in ("snapshot", "timestamp")}
    field = root.unrecognized_fields.get(DIRECTOR_FIELD)
    ids = field.get("keyids") if isinstance(field, dict) else None
    named["director"] = frozenset(ids) if isinstance(ids, list) else frozenset()
    return named


_NAMED_BY_ROOT: dict[str, dict[str, frozenset[str]]] = {}
"""`_named_online` of the roots seen, by digest: the latest root's bytes are read only
when a new root appears (every director request asks which key signs)."""


def _named_by_latest_root(s: Session) -> dict[str, frozenset[str]] | None:
    head = repo.latest_head(s, "root")
    if head is None:
        return None
    version, digest, _expires = head
    named = _NAMED_BY_ROOT.get(digest)
    if named is None:
        row = repo.metadata_version(s, "root", version)
        assert row is not None  # its head was just read in this session
        named = _named_online(row.data)
        if len(_NAMED_BY_ROOT) > 16:  # roots rotate rarely; never grow without bound
            _NAMED_BY_ROOT.clear()
        _NAMED_BY_ROOT[digest] = named
    return named


def signer_for(s: Session, ctx: AppContext, role: str) -> Any:
    """The online key that signs for `role` now: the one the latest root names (during a
    rotation, the next key once the root naming it is stored, in the same transaction)."""
    named = _named_by_latest_root(s)
    return keys_of(ctx).signer(role, None if named is None else named[role])


def _signed_bytes(md: Metadata[Any]) -> bytes:
    return CanonicalJSONSerializer().serialize(md.signed)


def _parse(data: bytes, kind: type[_T], what: str) -> Metadata[_T]:
    if len(data) > MAX_METADATA_BYTES:
        raise PayloadTooLarge(f"{what} is {len(data)} bytes; the limit is {MAX_METADATA_BYTES}")
    try:
        md: Metadata[Any] = Metadata.from_bytes(data)
    except DeserializationError as exc:
        raise ValidationFailed(f"{what} is not valid TUF metadata: {exc.__cause__ or exc}") from exc
    if not isinstance(md.signed, kind):
        raise ValidationFailed(f"{what} must be {kind.type} metadata, got {md.signed.type!r}")
    return md


def _stored(row: TufMetadata, kind: type[_T]) -> Metadata[_T]:
    md: Metadata[Any] = Metadata.from_bytes(row.data)
    assert isinstance(md.signed, kind)
    return md


def _count_valid(
    delegator: Root | Targets,
    role: str,
    payload: bytes,
    signatures: dict[str, Signature],
    who: str,
) -> int:
    """How many of the role's keys validly signed `payload`; refuses below the threshold."""
    try:
        result = delegator.get_verification_result(role, payload, signatures)
    except ValueError as exc:
        raise ValidationFailed(f"{who} delegates no role {role!r}") from exc
    except VerificationError as exc:
        raise ValidationFailed(f"a signature on {role} could not be checked: {exc}") from exc
    if not result:
        raise ValidationFailed(
            f"{role} is validly signed by {len(result.signed)} of the keys {who} names for "
            f"it, and needs {result.threshold}; sign it with keys that role trusts"
        )
    return len(result.signed)


def _not_expired(md: Metadata[Any], now: datetime, what: str) -> None:
    if md.signed.is_expired(now):
        raise ValidationFailed(
            f"{what} expired at {md.signed.expires.isoformat()}; sign it with a later expiry"
        )


def current_root(s: Session) -> tuple[TufMetadata, Metadata[Root]] | None:
    row = repo.latest(s, "root")
    return None if row is None else (row, _stored(row, Root))


def _require_root(s: Session) -> tuple[TufMetadata, Metadata[Root]]:
    found = current_root(s)
    if found is None:
        raise Conflict("trust is not initialized: run `farpoint trust init` to upload root.json")
    return found


def _require_targets(s: Session) -> tuple[TufMetadata, Metadata[Targets]]:
    row = repo.latest(s, "targets")
    if row is None:
        raise Conflict("no targets.json yet: upload one signed by the offline targets key first")
    return row, _stored(row, Targets)


# --- root ------------------------------------------------------------------------------


def _check_online_role(root: Root, role: str, keys: OnlineKeys, keyids: list[str]) -> None:
    """Root must name the server's current key for `role`, or the next one of a rotation."""
    mine = [c.public_key for c in keys.candidates(role)]
    found = [k for k in mine if k.keyid in keyids]
    if not found:
        raise ValidationFailed(
            f"root names no key of the server for {role} (the server's key ids are "
            f"{', '.join(k.keyid for k in mine)}); take the online keys from "
            "GET /api/v1/tuf/online-keys"
        )
    for key in found:
        named = root.keys.get(key.keyid)
        if named is None or named.keyval != key.keyval or named.scheme != key.scheme:
            raise ValidationFailed(f"root's key {key.keyid} for {role} is not the server's key")


def _check_root_shape(root: Root, online: OnlineKeys) -> None:
    if root.consistent_snapshot:
        raise ValidationFailed("root must set consistent_snapshot to false (Farpoint's layout)")
    for role in ("snapshot", "timestamp"):
        r = root.roles[role]
        _check_online_role(root, role, online, r.keyids)
        if r.threshold != 1:
            raise ValidationFailed(f"the {role} threshold must be 1: the server holds one key")
    field = root.unrecognized_fields.get(DIRECTOR_FIELD)
    if not isinstance(field, dict) or set(field) != {"keyids", "threshold"}:
        raise ValidationFailed(
            f'root must carry "{DIRECTOR_FIELD}": {{"keyids": [...], "threshold": 1}}'
        )
    keyids, threshold = field["keyids"], field["threshold"]
    if (
        not isinstance(keyids, list)
        or not keyids
        or not all(isinstance(k, str) and k in root.keys for k in keyids)
        or len(set(keyids)) != len(keyids)
    ):
        raise ValidationFailed(
            f"{DIRECTOR_FIELD}.keyids must list distinct key ids defined in root's keys"
        )
    if type(threshold) is not int or threshold != 1:
        raise ValidationFailed(f"{DIRECTOR_FIELD}.threshold must be 1: the server holds one key")
    _check_online_role(root, "director", online, keyids)


def upload_root(s: Session, ctx: AppContext, data: bytes, actor: str) -> UploadResult:
    """A new root: the next version, signed by a threshold of the current root AND its own."""
    new = _parse(data, Root, "root.json")
    payload = _signed_bytes(new)
    found = current_root(s)
    if found is None:
        if new.signed.version != 1:
            raise Conflict(f"the first root must be version 1, got {new.signed.version}")
    else:
        _row, cur = found
        if new.signed.version != cur.signed.version + 1:
            raise Conflict(
                f"root version must be {cur.signed.version + 1} (current + 1), "
                f"got {new.signed.version}"
            )
        _count_valid(
            cur.signed, "root", payload, new.signatures, f"the current root v{cur.signed.version}"
        )
    _count_valid(new.signed, "root", payload, new.signatures, "the new root itself")
    now = now_of(ctx)
    _not_expired(new, now, "root.json")
    _check_root_shape(new.signed, keys_of(ctx))
    return _store(s, ctx, "root", new, data, actor, now)


# --- targets and trust files -----------------------------------------------------------


def _check_delegations(targets: Targets) -> None:
    if targets.delegations is None:
        return
    roles = targets.delegations.roles or {}
    if set(roles) != {"releases"} or targets.delegations.succinct_roles is not None:
        raise ValidationFailed(
            f"targets.json may delegate only the role 'releases', got {sorted(roles)}"
        )
    role = roles["releases"]
    # python-tuf matches patterns segment by segment: `releases/*/*` covers releases/<id>/<file>.
    if role.paths != ["releases/*/*"] or not role.terminating:
        raise ValidationFailed(
            "the 'releases' delegation must have paths ['releases/*/*'] and be terminating"
        )


def upload_targets(s: Session, ctx: AppContext, data: bytes, actor: str) -> UploadResult:
    """A new top-level targets.json, signed by the targets key root names."""
    new = _parse(data, Targets, "targets.json")
    _root_row, root = _require_root(s)
    _count_valid(
        root.signed, "targets", _signed_bytes(new), new.signatures, f"root v{root.signed.version}"
    )
    current = repo.latest(s, "targets")
    if current is not None and new.signed.version <= current.version:
        raise Conflict(
            f"targets.json version must increase: the current is {current.version}, "
            f"got {new.signed.version}"
        )
    now = now_of(ctx)
    _not_expired(new, now, "targets.json")
    bad = [
        p for p in new.signed.targets if not p.startswith("trust/") or not TRUST_NAME.match(p[6:])
    ]
    if bad:
        raise ValidationFailed(
            f"top-level targets may list only trust/bindings.json, trust/policy.json and "
            f"trust/policies/<fleet>.json; got {bad}"
        )
    _check_delegations(new.signed)
    return _store(s, ctx, "targets", new, data, actor, now)


def upload_trust_file(
    s: Session, ctx: AppContext, name: str, data: bytes, actor: str
) -> UploadResult:
    """Store `trust/<name>`, only if the current targets.json lists exactly these bytes."""
    if not TRUST_NAME.match(name):
        raise ValidationFailed(
            f"trust file {name!r} is not one of bindings.json, policy.json, policies/<fleet>.json"
        )
    row, targets = _require_targets(s)
    path = f"trust/{name}"
    listed = targets.signed.targets.get(path)
    if listed is None:
        raise ValidationFailed(
            f"targets.json v{row.version} does not list {path}; upload a targets.json that "
            "lists it first"
        )
    if "sha256" not in listed.hashes:
        raise ValidationFailed(f"targets.json v{row.version} lists {path} without a sha256")
    try:
        listed.verify_length_and_hashes(data)
    except LengthOrHashMismatchError as exc:
        raise ValidationFailed(
            f"{path} does not match targets.json v{row.version}: {exc} (it expects "
            f"{listed.length} bytes with sha256 {listed.hashes['sha256']})"
        ) from exc
    now = now_of(ctx)
    digest = digest_bytes(data)
    repo.upsert_trust_file(s, name, data, digest, actor, now)
    audit.record(s, ctx, actor, "tuf.trust-file.upload", f"tuf/{path}", content=digest)
    snapshot, timestamp = _resign(s, ctx, now, actor)
    return UploadResult(
        role=path,
        version=row.version,
        digest=digest,
        snapshot_version=snapshot,
        timestamp_version=timestamp,
    )


def trust_file_bytes(s: Session, name: str) -> bytes:
    row = repo.trust_file(s, name)
    if row is None:
        raise NotFound(f"trust/{name} has not been uploaded")
    return row.data


# --- releases --------------------------------------------------------------------------


def _check_release_target(
    s: Session, ctx: AppContext, path: str, length: int, hashes: dict[str, str]
) -> None:
    m = _RELEASE_TARGET.match(path)
    if m is None:
        raise ValidationFailed(
            f"target {path!r} is not releases/<id>/manifest.json, model.onnx or model.sig"
        )
    release = releases_repo.release_by_id(s, int(m.group(1)))
    if release is None:
        raise ValidationFailed(f"target {path}: release {m.group(1)} does not exist")
    if m.group(2) == "model.sig":
        stored = signatures.signature_of(s, release.id)
        if stored is None:
            raise ValidationFailed(f"target {path}: upload the model signature first")
        digest, size = stored.digest, len(stored.data)
    else:
        digest = release.manifest_digest if m.group(2) == "manifest.json" else release.model_digest
        size = ctx.blobs.size(digest)
    if set(hashes) != {"sha256"} or hashes["sha256"] != hex_of(digest):
        raise ValidationFailed(
            f"target {path}: hashes {hashes} differ from the server's sha256 {hex_of(digest)}"
        )
    if length != size:
        raise ValidationFailed(f"target {path}: length {length} differs from the server's {size}")


def upload_releases(s: Session, ctx: AppContext, data: bytes, actor: str) -> UploadResult:
    """A new releases.json, signed by a threshold of the keys targets.json delegates to.

    The same version may be uploaded again with the same signed content and more valid
    signatures: that is how a second release manager adds theirs.
    """
    new = _parse(data, Targets, "releases.json")
    targets_row, targets = _require_targets(s)
    who = f"targets.json v{targets_row.version}"
    payload = _signed_bytes(new)
    count = _count_valid(targets.signed, "releases", payload, new.signatures, who)
    current = repo.latest(s, "releases")
    if current is not None:
        if new.signed.version < current.version:
            raise Conflict(
                f"releases.json version {new.signed.version} is older than the current "
                f"{current.version}"
            )
        if new.signed.version == current.version:
            cur = _stored(current, Targets)
            if _signed_bytes(cur) != payload:
                raise Conflict(
                    f"releases.json version {current.version} exists with other content; "
                    "raise the version"
                )
            had = len(
                targets.signed.get_verification_result("releases", payload, cur.signatures).signed
            )
            if count <= had:
                raise Conflict(
                    f"releases.json version {current.version} already carries {had} valid "
                    f"signatures; this upload has {count} and adds none"
                )
    now = now_of(ctx)
    _not_expired(new, now, "releases.json")
    if new.signed.delegations is not None:
        raise ValidationFailed("releases.json must not delegate further (terminating role)")
    role = targets.signed.get_delegated_role("releases")
    for path, target in new.signed.targets.items():
        if not isinstance(role, DelegatedRole) or not role.is_delegated_path(path):
            raise ValidationFailed(f"target {path!r} is outside the releases delegation")
        _check_release_target(s, ctx, path, target.length, target.hashes)
    if current is not None and current.version == new.signed.version:
        current.data, current.digest = data, digest_bytes(data)
        current.expires, current.created_by, current.created_at = new.signed.expires, actor, now
        s.flush()
        audit.record(s, ctx, actor, "tuf.releases.sign", "tuf/releases", metadata=current.digest)
        snapshot, timestamp = _resign(s, ctx, now, actor)
        return UploadResult(
            role="releases",
            version=current.version,
            digest=current.digest,
            snapshot_version=snapshot,
            timestamp_version=timestamp,
        )
    return _store(s, ctx, "releases", new, data, actor, now)


# --- storing and re-signing ------------------------------------------------------------


def _store(
    s: Session,
    ctx: AppContext,
    role: str,
    md: Metadata[Any],
    data: bytes,
    actor: str,
    now: datetime,
) -> UploadResult:
    row = TufMetadata(
        role=role,
        version=md.signed.version,
        data=data,
        digest=digest_bytes(data),
        expires=md.signed.expires,
        created_by=actor,
        created_at=now,
    )
    repo.add_metadata(s, row)
    audit.record(s, ctx, actor, f"tuf.{role}.upload", f"tuf/{role}", metadata=row.digest)
    snapshot, timestamp = _resign(s, ctx, now, actor)
    return UploadResult(
        role=role,
        version=row.version,
        digest=row.digest,
        snapshot_version=snapshot,
        timestamp_version=timestamp,
    )


def _meta(row: TufMetadata) -> MetaFile:
    return MetaFile(
        version=row.version, length=len(row.data), hashes={"sha256": hex_of(row.digest)}
    )


def _sign_online(
    s: Session, ctx: AppContext, role: str, md: Metadata[Any], actor: str, now: datetime
) -> TufMetadata:
    md.sign(signer_for(s, ctx, role))
    data = md.to_bytes()
    row = TufMetadata(
        role=role,
        version=md.signed.version,
        data=data,
        digest=digest_bytes(data),
        expires=md.signed.expires,
        created_by="server",
        created_at=now,
    )
    repo.add_metadata(s, row)
    audit.record(s, ctx, actor, f"tuf.{role}.sign", f"tuf/{role}", metadata=row.digest)
    return row


def _expiry(now: datetime, lifetime: timedelta) -> datetime:
    return (now + lifetime).replace(microsecond=0)


def _sign_timestamp(
    s: Session, ctx: AppContext, snapshot: TufMetadata, actor: str, now: datetime
) -> TufMetadata:
    last = repo.latest(s, "timestamp")
    ts = Timestamp(
        version=(last.version + 1) if last else 1,
        expires=_expiry(now, TIMESTAMP_LIFETIME),
        snapshot_meta=_meta(snapshot),
    )
    return _sign_online(s, ctx, "timestamp", Metadata(ts), actor, now)


def _resign(
    s: Session, ctx: AppContext, now: datetime, actor: str
) -> tuple[int | None, int | None]:
    """Sign a new snapshot (listing targets and releases) and timestamp; nothing before
    targets.json exists."""
    targets = repo.latest(s, "targets")
    if targets is None:
        return None, None
    meta = {"targets.json": _meta(targets)}
    releases = repo.latest(s, "releases")
    if releases is not None:
        meta["releases.json"] = _meta(releases)
    last = repo.latest(s, "snapshot")
    snap = Snapshot(
        version=(last.version + 1) if last else 1,
        expires=_expiry(now, SNAPSHOT_LIFETIME),
        meta=meta,
    )
    snapshot = _sign_online(s, ctx, "snapshot", Metadata(snap), actor, now)
    timestamp = _sign_timestamp(s, ctx, snapshot, actor, now)
    return snapshot.version, timestamp.version


def refresh_if_due(s: Session, ctx: AppContext) -> bool:
    """Re-sign snapshot and/or timestamp when less than half their lifetime is left.

    Checked together: a snapshot re-signed after a client read the timestamp would not
    match it, so whenever the snapshot is due, both are re-signed at once."""
    snapshot, timestamp = repo.latest_head(s, "snapshot"), repo.latest_head(s, "timestamp")
    if snapshot is None or timestamp is None:
        return False
    now = now_of(ctx)
    if snapshot[2] - now < SNAPSHOT_LIFETIME / 2:
        _resign(s, ctx, now, "server")
        return True
    if timestamp[2] - now < TIMESTAMP_LIFETIME / 2:
        current = repo.latest(s, "snapshot")
        assert current is not None  # its head was just read in this session
        _sign_timestamp(s, ctx, current, "server", now)
        return True
    return False


def metadata_bytes(s: Session, filename: str) -> bytes:
    """The stored bytes for a metadata file name as `tuf.ngclient` asks for it."""
    if filename.endswith(".root.json"):
        number = filename[: -len(".root.json")]
        row = repo.metadata_version(s, "root", int(number)) if number.isdigit() else None
    elif filename in ("timestamp.json", "snapshot.json", "targets.json", "releases.json"):
        row = repo.latest(s, filename[: -len(".json")])
    else:
        row = None
    if row is None:
        raise NotFound(f"metadata {filename} does not exist")
    return row.data


# --- admin views -----------------------------------------------------------------------


def status(s: Session) -> TufStatus:
    roles = {}
    for role in ("root", "targets", "releases", "snapshot", "timestamp"):
        row = repo.latest(s, role)
        if row is not None:
            roles[role] = RoleStatus(version=row.version, expires=row.expires, digest=row.digest)
    return TufStatus(initialized="root" in roles, roles=roles, trust_files=repo.trust_file_names(s))


def online_keys_out(ctx: AppContext) -> OnlineKeysOut:
    k = keys_of(ctx)
    return OnlineKeysOut(
        snapshot=k.public_pem("snapshot"),
        timestamp=k.public_pem("timestamp"),
        director=k.public_pem("director"),
        next=k.next_public_pems(),
    )


def settle_online_keys(s: Session, ctx: AppContext) -> list[str]:
    """Retire the online keys the latest root no longer names (after a rotation)."""
    named = _named_by_latest_root(s)
    return [] if named is None else online.settle(ctx.settings.key_dir, dict(named))


def prepare_online_rotation(
    s: Session, ctx: AppContext, roles: list[str], actor: str
) -> OnlineKeysOut:
    """Make next keys for `roles`; they sign once the offline root keys name them."""
    if current_root(s) is None:
        raise Conflict("trust is not initialized: run `farpoint trust init` first")
    unknown = sorted(set(roles) - set(ONLINE_ROLES))
    if unknown or not roles:
        raise ValidationFailed(
            f"roles must be among {', '.join(ONLINE_ROLES)}; got {', '.join(roles) or 'none'}"
        )
    settle_online_keys(s, ctx)  # a finished rotation's keys first become the current ones
    online.prepare_rotation(ctx.settings.key_dir, roles)
    out = online_keys_out(ctx)
    audit.record(
        s, ctx, actor, "tuf.online-keys.prepare", "tuf/online-keys",
        **{f"next_{role}": digest_bytes(pem.encode()) for role, pem in out.next.items()},
    )  # fmt: skip
    return out
