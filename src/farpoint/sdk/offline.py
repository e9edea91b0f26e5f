"""The offline side of the image repository: root and top-level targets (docs/trust-delivery.md).

An offline directory holds the root keys (`root-<i>.pem`), the top-level targets key
(`targets.pem`), both encrypted with one passphrase, and the metadata and trust files
they last signed (`metadata/<N>.root.json`, `metadata/targets.json`, `trust/...`). That
local copy is what gets signed next; the server's copy is never trusted to build on.
Devices see only what these keys signed, so a compromised server cannot add an approver,
change the policy or name another release manager.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from securesystemslib.signer import CryptoSigner, Key, SSlibKey  # type: ignore[attr-defined]  # tuf/sslib re-export without __all__
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import (  # type: ignore[attr-defined]  # tuf/sslib re-export without __all__
    DelegatedRole,
    Delegations,
    Metadata,
    Root,
    TargetFile,
    Targets,
)

from farpoint.core import keys
from farpoint.core.errors import BadRequest, Conflict, FarpointError, NotFound
from farpoint.core.trust_policy import BINDINGS_SCHEMA, POLICY_SCHEMA, PolicyError, parse_policy
from farpoint.sdk.client import Client
from farpoint.wire.common import NAME_PATTERN, Role

__all__ = [
    "BINDINGS_SCHEMA",
    "DEFAULT_POLICY",
    "DIRECTOR_FIELD",
    "POLICY_SCHEMA",
    "RELEASES_ROLE",
    "BindResult",
    "InitResult",
    "RotateResult",
    "bind_key",
    "build_root",
    "build_targets",
    "canonical",
    "default_offline_dir",
    "init",
    "offline_status",
    "rotate_online",
    "rotate_root",
    "set_policy",
    "sign_rotation",
    "tuf_key",
    "unbind_key",
    "validate_policy",
]

ROOT_EXPIRY = timedelta(days=365)
TARGETS_EXPIRY = timedelta(days=365)
DIRECTOR_FIELD = "x-farpoint-director"
RELEASES_ROLE = "releases"
# The contract says "releases/*", but python-tuf matches a pattern segment by segment:
# "releases/*" never matches "releases/<id>/model.onnx". One "*" per segment does.
RELEASES_PATHS = ["releases/*/*"]
BINDABLE_ROLES = (Role.DATA_SCIENTIST.value, Role.MLOPS_ENGINEER.value)
DEFAULT_POLICY: dict[str, Any] = {
    "schema": POLICY_SCHEMA,
    "evaluation": "passed",
    "approvals": [{"role": "data-scientist", "min": 1}, {"role": "mlops-engineer", "min": 1}],
    "min_distinct_approvers": 2,
    "author_may_approve": False,
}
_FLEET = re.compile(NAME_PATTERN)
_ROOT_PEM = re.compile(r"^root-(\d+)\.pem$")


# -- pure parts -------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """Sorted keys, no spaces: the bytes a trust file is hashed and served as."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tuf_key(public: keys.PublicKey | str | bytes) -> SSlibKey:
    """The TUF key (`ecdsa-sha2-nistp256`, securesystemslib key id) of a P-256 public key."""
    if isinstance(public, str | bytes):
        public = keys.load_public_key(public)
    return SSlibKey.from_crypto(public)


def _expiry(now: datetime, life: timedelta) -> datetime:
    return (now + life).replace(microsecond=0)


def build_root(
    root_keys: list[Key],
    threshold: int,
    targets_key: Key,
    online: Mapping[str, Key],
    now: datetime,
    version: int = 1,
) -> Root:
    """Root: `root_keys` (k of n), the offline targets key, online snapshot/timestamp keys,
    and the director key vouched for in `x-farpoint-director`."""
    if not 1 <= threshold <= len(root_keys):
        raise BadRequest(f"root threshold {threshold} must be between 1 and {len(root_keys)}")
    director = online["director"]
    root = Root(
        version=version,
        expires=_expiry(now, ROOT_EXPIRY),
        consistent_snapshot=False,
        unrecognized_fields={DIRECTOR_FIELD: {"keyids": [director.keyid], "threshold": 1}},
    )
    for key in root_keys:
        root.add_key(key, Root.type)
    root.roles[Root.type].threshold = threshold
    root.add_key(targets_key, Targets.type)
    root.add_key(online["snapshot"], "snapshot")
    root.add_key(online["timestamp"], "timestamp")
    root.keys[director.keyid] = director  # in no TUF role: the agent checks it itself
    return root


def build_targets(files: Mapping[str, bytes], now: datetime, version: int = 1) -> Targets:
    """Top-level targets: the trust files by hash and the (keyless) `releases` delegation."""
    delegation = DelegatedRole(RELEASES_ROLE, [], 1, True, list(RELEASES_PATHS))
    targets = Targets(
        version=version,
        expires=_expiry(now, TARGETS_EXPIRY),
        delegations=Delegations(keys={}, roles={RELEASES_ROLE: delegation}),
    )
    for name, data in files.items():
        _put_trust_target(targets, name, data)
    return targets


def _put_trust_target(targets: Targets, name: str, data: bytes) -> None:
    path = f"trust/{name}"
    targets.targets[path] = TargetFile.from_data(path, data, ["sha256"])


def validate_policy(policy: Any) -> dict[str, Any]:
    """The policy if it follows `farpoint.trust-policy/v1`; BadRequest naming what does not.

    Stricter than the device (every field present, no unknown ones, only bindable roles),
    and parsed by the device's own parser so nothing published can be unreadable there.
    """
    if not isinstance(policy, dict):
        raise BadRequest("a trust policy is a JSON/YAML object")
    expected = set(DEFAULT_POLICY)
    if unknown := sorted(set(policy) - expected):
        raise BadRequest(f"unknown policy fields {unknown}; allowed: {sorted(expected)}")
    if missing := sorted(expected - set(policy)):
        raise BadRequest(f"policy fields missing: {missing}")
    try:
        parsed = parse_policy(policy)
    except PolicyError as exc:
        raise BadRequest(str(exc)) from exc
    if not isinstance(policy["approvals"], list) or any(
        not isinstance(item, dict) or set(item) != {"role", "min"} for item in policy["approvals"]
    ):
        raise BadRequest("each policy approval must be an object with exactly role and min")
    for i, req in enumerate(parsed.approvals):
        if req.role not in BINDABLE_ROLES:
            raise BadRequest(f"approvals[{i}].role must be one of {list(BINDABLE_ROLES)}")
    return policy


def empty_bindings() -> dict[str, Any]:
    return {"schema": BINDINGS_SCHEMA, "keys": {}}


def sign_rotation(old: Root, new: Root, signers: Mapping[str, CryptoSigner]) -> Metadata[Root]:
    """`new` signed by a threshold of the old root keys and a threshold of its own."""
    old_ids = old.roles[Root.type].keyids
    new_ids = new.roles[Root.type].keyids
    chosen: list[str] = []
    # Keys in both sets first: one signature then counts twice.
    for ids, threshold, label in (
        (old_ids, old.roles[Root.type].threshold, "current"),
        (new_ids, new.roles[Root.type].threshold, "new"),
    ):
        have = [k for k in chosen if k in ids]
        for keyid in sorted(ids, key=lambda k: (k not in old_ids or k not in new_ids, k)):
            if len(have) >= threshold:
                break
            if keyid in signers and keyid not in chosen:
                chosen.append(keyid)
                have.append(keyid)
        if len(have) < threshold:
            raise BadRequest(
                f"only {len(have)} of the {label} root's keys are in this offline directory; "
                f"{threshold} must sign"
            )
    md = Metadata(new)
    for keyid in chosen:
        md.sign(signers[keyid], append=True)
    return md


# -- the offline directory ----------------------------------------------------------------------


def default_offline_dir() -> Path:
    """`$FARPOINT_HOME/offline`: for development only; production keeps it off any server."""
    return Path(os.environ.get("FARPOINT_HOME") or ".farpoint").resolve() / "offline"


def _write_new(path: Path, data: bytes, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:  # O_EXCL: a key is never overwritten; the mode holds from the first byte
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise Conflict(f"{path} already exists; keys are never overwritten") from exc
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _new_key(path: Path, passphrase: bytes) -> keys.PrivateKey:
    key = keys.generate_private_key()
    _write_new(path, keys.private_key_pem(key, passphrase))
    _write_new(path.with_suffix(".pub"), keys.public_key_pem(key.public_key()), 0o644)
    return key


def _signer(path: Path, passphrase: bytes) -> CryptoSigner:
    if not path.exists():
        raise NotFound(f"no offline key at {path}; is this the offline directory?")
    try:
        private = keys.load_private_key(path.read_bytes(), passphrase)
    except (ValueError, TypeError) as exc:
        raise BadRequest(f"cannot decrypt {path.name}: wrong passphrase?") from exc
    return CryptoSigner(private, tuf_key(private.public_key()))


def _root_pems(directory: Path) -> dict[int, Path]:
    found = {}
    for path in directory.glob("root-*.pem"):
        if match := _ROOT_PEM.match(path.name):
            found[int(match.group(1))] = path
    return found


def _root_signers(directory: Path, passphrase: bytes) -> dict[str, CryptoSigner]:
    signers = {}
    for path in _root_pems(directory).values():
        signer = _signer(path, passphrase)
        signers[signer.public_key.keyid] = signer
    return signers


def _latest_root(directory: Path) -> tuple[Metadata[Root], bytes]:
    meta = directory / "metadata"
    versions = sorted(
        int(p.name.split(".", 1)[0]) for p in meta.glob("*.root.json") if p.name[0].isdigit()
    )
    if not versions:
        raise NotFound(f"no root in {meta}; run `farpoint trust init` first")
    data = (meta / f"{versions[-1]}.root.json").read_bytes()
    return Metadata[Root].from_bytes(data), data


def _local_targets(directory: Path) -> Metadata[Targets]:
    path = directory / "metadata" / "targets.json"
    if not path.exists():
        raise NotFound(f"no targets.json in {path.parent}; run `farpoint trust init` first")
    return Metadata[Targets].from_bytes(path.read_bytes())


def _trust_file(directory: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "trust" / name).read_bytes())
    return data


def _check_server_behind(client: Client, local: Targets) -> None:
    data = client.tuf_metadata("targets.json")
    if data is None:
        return
    server_version = Metadata[Targets].from_bytes(data).signed.version
    if server_version > local.version:
        raise Conflict(
            f"the server's targets.json is version {server_version}, this offline directory's "
            f"is {local.version}: it was signed from another offline copy (or forged); "
            "sign from the newest offline copy"
        )


def _publish_targets(
    client: Client,
    directory: Path,
    passphrase: bytes,
    targets_md: Metadata[Targets],
    files: Mapping[str, bytes],
    now: datetime,
) -> int:
    """Bump, sign with the targets key, keep locally, upload targets then the trust files."""
    _check_server_behind(client, targets_md.signed)
    signed = targets_md.signed
    for name, data in files.items():
        _put_trust_target(signed, name, data)
    signed.version += 1
    signed.expires = _expiry(now, TARGETS_EXPIRY)
    targets_md.signatures.clear()
    targets_md.sign(_signer(directory / "targets.pem", passphrase))
    data = targets_md.to_bytes()
    client.put_tuf_targets(data)
    _write(directory / "metadata" / "targets.json", data)
    for name, content in files.items():
        client.put_trust_file(name, content)
        _write(directory / "trust" / name, content)
    return signed.version


# -- operations ---------------------------------------------------------------------------------


@dataclass
class InitResult:
    directory: Path
    root_keyids: list[str]
    threshold: int
    targets_keyid: str
    root_version: int = 1
    targets_version: int = 1


def init(
    client: Client,
    directory: Path,
    passphrase: bytes,
    *,
    root_keys: int = 3,
    threshold: int = 2,
    now: datetime | None = None,
) -> InitResult:
    """Make the offline keys, sign root v1 and targets v1, and upload them with the trust files."""
    now = now or datetime.now(UTC)
    if not 1 <= threshold <= root_keys:
        raise BadRequest(f"--root-threshold {threshold} must be between 1 and --root-keys")
    server_root = client.tuf_metadata("1.root.json")
    local_root = directory / "metadata" / "1.root.json"
    if (
        server_root is not None
        and local_root.is_file()
        and local_root.read_bytes() == server_root
        and client.tuf_metadata("targets.json") is None
    ):  # an init cut short after its root went up: finish it
        return _resume_init(client, directory)
    if server_root is not None:
        raise Conflict(
            "the server already has a root of trust; change it with `farpoint trust rotate-root`"
        )
    online = {role: tuf_key(pem) for role, pem in client.tuf_online_keys().items()}
    if missing := {"snapshot", "timestamp", "director"} - set(online):
        raise FarpointError(f"the server's online keys lack {sorted(missing)}")
    if _root_pems(directory) or (directory / "targets.pem").exists():
        raise Conflict(f"{directory} already holds offline keys; keys are never overwritten")
    signers = []
    for i in range(1, root_keys + 1):
        key = _new_key(directory / f"root-{i}.pem", passphrase)
        signers.append(CryptoSigner(key, tuf_key(key.public_key())))
    targets_private = _new_key(directory / "targets.pem", passphrase)
    targets_signer = CryptoSigner(targets_private, tuf_key(targets_private.public_key()))

    root = build_root(
        [s.public_key for s in signers], threshold, targets_signer.public_key, online, now
    )
    root_md = Metadata(root)
    for signer in signers[:threshold]:
        root_md.sign(signer, append=True)
    files = {
        "bindings.json": canonical(empty_bindings()),
        "policy.json": canonical(DEFAULT_POLICY),
    }
    targets_md = Metadata(build_targets(files, now))
    targets_md.sign(targets_signer)

    root_bytes, targets_bytes = root_md.to_bytes(), targets_md.to_bytes()
    _write(directory / "metadata" / "1.root.json", root_bytes)
    _write(directory / "metadata" / "targets.json", targets_bytes)
    for name, data in files.items():
        _write(directory / "trust" / name, data)
    client.put_tuf_root(root_bytes)
    client.put_tuf_targets(targets_bytes)
    for name, data in files.items():
        client.put_trust_file(name, data)
    return InitResult(
        directory, [s.public_key.keyid for s in signers], threshold, targets_signer.public_key.keyid
    )


def _resume_init(client: Client, directory: Path) -> InitResult:
    """Finish an init whose root was uploaded but whose targets or trust files were not."""
    root, _ = _latest_root(directory)
    client.put_tuf_targets((directory / "metadata" / "targets.json").read_bytes())
    for name in ("bindings.json", "policy.json"):
        client.put_trust_file(name, (directory / "trust" / name).read_bytes())
    return InitResult(
        directory,
        list(root.signed.roles[Root.type].keyids),
        root.signed.roles[Root.type].threshold,
        root.signed.roles[Targets.type].keyids[0],
    )


@dataclass
class BindResult:
    key_id: str
    user: str
    roles: list[str]
    targets_version: int
    releases_keyids: list[str] = field(default_factory=list)
    releases_threshold: int = 1


def bind_key(
    client: Client,
    directory: Path,
    passphrase: bytes,
    key_id: str,
    role: str,
    *,
    release_threshold: int | None = None,
    now: datetime | None = None,
) -> BindResult:
    """Bind a registered user key to `role`, signed offline; mlops keys may then publish."""
    if role not in BINDABLE_ROLES:
        raise BadRequest(f"--role must be one of {list(BINDABLE_ROLES)}, not {role!r}")
    registered = client.get_key(key_id)
    if registered.revoked_at is not None:
        raise Conflict(f"key {key_id} was revoked at {registered.revoked_at}; it binds to nothing")
    public = keys.load_public_key(registered.public_key_pem)
    if keys.key_id(public) != key_id:  # the server must not swap the key under its name
        raise FarpointError(f"the server's public key for {key_id} does not hash to that id")
    users = {u.name: u for u in client.list_users()}
    user = users.get(registered.user)
    if user is None or role not in [str(r) for r in user.roles]:
        raise Conflict(
            f"user {registered.user!r} does not hold the role {role!r}; grant it first "
            "(a key is bound only to roles its owner holds)"
        )
    targets_md = _local_targets(directory)
    bindings = _trust_file(directory, "bindings.json")
    entry = bindings["keys"].setdefault(
        key_id, {"user": registered.user, "roles": [], "public_key_pem": registered.public_key_pem}
    )
    entry["roles"] = sorted(set(entry["roles"]) | {role})
    delegation = _releases_role(targets_md.signed)
    if role == Role.MLOPS_ENGINEER.value:
        targets_md.signed.add_key(tuf_key(public), RELEASES_ROLE)
    if release_threshold is not None:
        delegation.threshold = release_threshold
    _check_release_threshold(delegation)
    version = _publish_targets(
        client,
        directory,
        passphrase,
        targets_md,
        {"bindings.json": canonical(bindings)},
        now or datetime.now(UTC),
    )
    return BindResult(
        key_id,
        registered.user,
        entry["roles"],
        version,
        list(delegation.keyids),
        delegation.threshold,
    )


def unbind_key(
    client: Client, directory: Path, passphrase: bytes, key_id: str, *, now: datetime | None = None
) -> BindResult:
    """Remove a key from bindings.json and from the `releases` delegation."""
    targets_md = _local_targets(directory)
    bindings = _trust_file(directory, "bindings.json")
    entry = bindings["keys"].pop(key_id, None)
    if entry is None:
        raise NotFound(f"key {key_id} is not bound; `farpoint trust status` lists the bindings")
    delegation = _releases_role(targets_md.signed)
    tuf_id = tuf_key(entry["public_key_pem"]).keyid
    if tuf_id in delegation.keyids:
        targets_md.signed.revoke_key(tuf_id, RELEASES_ROLE)
    # Nobody left cannot meet a threshold above what remains; 1 keeps the role well-formed.
    delegation.threshold = max(1, min(delegation.threshold, len(delegation.keyids)))
    version = _publish_targets(
        client,
        directory,
        passphrase,
        targets_md,
        {"bindings.json": canonical(bindings)},
        now or datetime.now(UTC),
    )
    return BindResult(
        key_id, entry["user"], [], version, list(delegation.keyids), delegation.threshold
    )


def _releases_role(targets: Targets) -> DelegatedRole:
    if targets.delegations is None or targets.delegations.roles is None:
        raise FarpointError("targets.json has no `releases` delegation; was it made by trust init?")
    return targets.delegations.roles[RELEASES_ROLE]


def _check_release_threshold(delegation: DelegatedRole) -> None:
    if delegation.threshold < 1 or (
        delegation.keyids and delegation.threshold > len(delegation.keyids)
    ):
        raise BadRequest(
            f"--release-threshold {delegation.threshold} must be between 1 and the "
            f"{len(delegation.keyids)} release-manager keys bound"
        )


def set_policy(
    client: Client,
    directory: Path,
    passphrase: bytes,
    policy: Any,
    *,
    fleet: str | None = None,
    now: datetime | None = None,
) -> tuple[str, int]:
    """Publish a validated trust policy (the default, or one fleet's); `(target, version)`."""
    validate_policy(policy)
    if fleet is not None and not _FLEET.match(fleet):
        raise BadRequest(f"fleet name {fleet!r} is not a valid name")
    name = f"policies/{fleet}.json" if fleet else "policy.json"
    targets_md = _local_targets(directory)
    version = _publish_targets(
        client,
        directory,
        passphrase,
        targets_md,
        {name: canonical(policy)},
        now or datetime.now(UTC),
    )
    return f"trust/{name}", version


@dataclass
class RotateResult:
    version: int
    root_keyids: list[str]
    threshold: int
    signed_by: list[str]
    added: list[str]
    online_changed: list[str]


def rotate_root(
    client: Client,
    directory: Path,
    passphrase: bytes,
    *,
    add_keys: int = 0,
    remove_keyids: Iterable[str] = (),
    threshold: int | None = None,
    rotate_online: bool = False,
    now: datetime | None = None,
) -> RotateResult:
    """Sign root v(N+1) with a threshold of the current and of the new root keys; upload it."""
    now = now or datetime.now(UTC)
    old_md, _ = _latest_root(directory)
    server = client.tuf_root_chain()
    if server and Metadata[Root].from_bytes(server[-1]).signed.version > old_md.signed.version:
        raise Conflict(
            f"the server holds root version {len(server)}, newer than this offline directory's "
            f"{old_md.signed.version}: sign from the newest offline copy"
        )
    signers = _root_signers(directory, passphrase)
    new = Root.from_dict(old_md.signed.to_dict())
    new.version += 1
    new.expires = _expiry(now, ROOT_EXPIRY)
    for keyid in remove_keyids:
        if keyid not in new.roles[Root.type].keyids:
            raise NotFound(f"{keyid} is not a root key; `farpoint trust status` lists them")
        new.revoke_key(keyid, Root.type)
    added = []
    start = max(_root_pems(directory), default=0) + 1
    for i in range(start, start + add_keys):
        private = _new_key(directory / f"root-{i}.pem", passphrase)
        signer = CryptoSigner(private, tuf_key(private.public_key()))
        signers[signer.public_key.keyid] = signer
        new.add_key(signer.public_key, Root.type)
        added.append(signer.public_key.keyid)
    if threshold is not None:
        new.roles[Root.type].threshold = threshold
    count = len(new.roles[Root.type].keyids)
    if not 1 <= new.roles[Root.type].threshold <= count:
        raise BadRequest(
            f"root threshold {new.roles[Root.type].threshold} must be between 1 and {count} keys"
        )
    changed = _swap_online(client, new) if rotate_online else []
    md = sign_rotation(old_md.signed, new, signers)
    # Check as a device would before anything leaves this machine.
    try:
        old_md.verify_delegate(Root.type, md)
        md.verify_delegate(Root.type, md)
    except UnsignedMetadataError as exc:
        raise BadRequest(f"the new root does not verify: {exc}") from exc
    data = md.to_bytes()
    client.put_tuf_root(data)
    _write(directory / "metadata" / f"{new.version}.root.json", data)
    return RotateResult(
        new.version,
        list(new.roles[Root.type].keyids),
        new.roles[Root.type].threshold,
        [s.keyid for s in md.signatures.values()],
        added,
        changed,
    )


def _swap_online(client: Client, root: Root) -> list[str]:
    """Put the server's online keys in `root` in place of the ones it names: the next key of
    a role being rotated, else its current key."""
    online = {role: tuf_key(pem) for role, pem in client.tuf_online_keys(prefer_next=True).items()}
    changed = []
    for role in ("snapshot", "timestamp"):
        key = online[role]
        if root.roles[role].keyids != [key.keyid]:
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
            root.add_key(key, role)
            changed.append(role)
    director = online["director"]
    current = root.unrecognized_fields.get(DIRECTOR_FIELD, {}).get("keyids", [])
    if current != [director.keyid]:
        for keyid in current:
            if not any(keyid in r.keyids for r in root.roles.values()):
                root.keys.pop(keyid, None)
        root.keys[director.keyid] = director
        root.unrecognized_fields[DIRECTOR_FIELD] = {"keyids": [director.keyid], "threshold": 1}
        changed.append("director")
    return changed


def rotate_online(
    client: Client,
    directory: Path,
    passphrase: bytes,
    roles: Iterable[str] = ("snapshot", "timestamp", "director"),
    *,
    now: datetime | None = None,
) -> RotateResult:
    """Replace the server's online keys: the server makes new ones, the offline root keys
    sign the root that names them; from that root on, only the new keys count on devices
    (a stolen old key is worthless), and no device re-enrolls."""
    client.tuf_rotate_online_keys(list(roles))
    return rotate_root(client, directory, passphrase, rotate_online=True, now=now)


def offline_status(directory: Path, client: Client | None = None) -> dict[str, Any]:
    """What this offline directory last signed, and what the server holds (when reachable)."""
    root_md, _ = _latest_root(directory)
    root = root_md.signed
    targets = _local_targets(directory).signed
    delegation = _releases_role(targets)
    bindings = _trust_file(directory, "bindings.json")
    local_root_keys = {}
    for _, path in sorted(_root_pems(directory).items()):
        keyid = tuf_key(path.with_suffix(".pub").read_bytes()).keyid
        local_root_keys[keyid] = path.name
    status: dict[str, Any] = {
        "offline_dir": str(directory),
        "root": {
            "version": root.version,
            "expires": root.expires.isoformat(),
            "threshold": root.roles[Root.type].threshold,
            "keys": [
                {"keyid": k, "file": local_root_keys.get(k)} for k in root.roles[Root.type].keyids
            ],
            "targets_keyids": root.roles[Targets.type].keyids,
            "snapshot_keyids": root.roles["snapshot"].keyids,
            "timestamp_keyids": root.roles["timestamp"].keyids,
            "director": root.unrecognized_fields.get(DIRECTOR_FIELD),
        },
        "targets": {
            "version": targets.version,
            "expires": targets.expires.isoformat(),
            "trust_files": sorted(targets.targets),
            "releases_keyids": list(delegation.keyids),
            "releases_threshold": delegation.threshold,
        },
        "bindings": {
            kid: {"user": b["user"], "roles": b["roles"]} for kid, b in bindings["keys"].items()
        },
    }
    if client is not None:
        status["server"] = client.tuf_status()
    return status
