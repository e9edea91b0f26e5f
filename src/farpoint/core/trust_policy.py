"""The trust policy a device enforces before it activates a release.

Two documents, both signed offline (listed by hash in the image repository's top-level
`targets.json`, see docs/trust-delivery.md):

- `trust/bindings.json`: which people's keys count, for which roles;
- `trust/policy.json` (or `trust/policies/<fleet>.json`): what a release needs.

`evaluate_policy` checks DSSE envelopes the server hands over against the BOUND keys
only: the server is not trusted for them. Pure: standard library and `farpoint.core`.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from farpoint.core import digest, dsse, intoto, keys
from farpoint.core.errors import FarpointError, SignatureError

__all__ = [
    "BINDINGS_SCHEMA",
    "POLICY_SCHEMA",
    "Binding",
    "Bindings",
    "Policy",
    "PolicyError",
    "PolicyVerdict",
    "ReleaseFacts",
    "RoleRequirement",
    "evaluate_policy",
    "parse_bindings",
    "parse_policy",
]

BINDINGS_SCHEMA = "farpoint.bindings/v1"
POLICY_SCHEMA = "farpoint.trust-policy/v1"
EVALUATION_ROLE = "data-scientist"
"""The role whose key must sign a passed test-result attestation."""
MAX_ENVELOPES = 256
_ROLE_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


class PolicyError(ValueError):
    """A bindings or policy document does not have the expected shape."""


@dataclass(frozen=True)
class Binding:
    key_id: str
    user: str
    roles: frozenset[str]
    public_key: keys.PublicKey = field(compare=False, repr=False)


@dataclass(frozen=True)
class Bindings:
    keys: Mapping[str, Binding]


@dataclass(frozen=True)
class RoleRequirement:
    role: str
    min: int


@dataclass(frozen=True)
class Policy:
    evaluation: str | None
    """"passed" or None (no evaluation required)."""
    approvals: tuple[RoleRequirement, ...]
    min_distinct_approvers: int
    author_may_approve: bool


@dataclass(frozen=True)
class ReleaseFacts:
    """What the policy is about: the manifest's digest, the model's, and the author."""

    manifest_digest: str
    model_digest: str
    author: str | None

    @classmethod
    def from_manifest_bytes(cls, manifest: bytes) -> ReleaseFacts:
        try:
            doc = json.loads(manifest)
        except ValueError as exc:
            raise PolicyError(f"the manifest is not JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise PolicyError("the manifest is not a JSON object")
        model_digest = doc.get("model_digest")
        if not isinstance(model_digest, str) or not digest.is_digest(model_digest):
            raise PolicyError("the manifest's model_digest is not a sha256 content address")
        author = doc.get("author")
        return cls(
            manifest_digest=digest.digest_bytes(manifest),
            model_digest=model_digest,
            author=author if isinstance(author, str) and author else None,
        )


@dataclass(frozen=True)
class PolicyVerdict:
    ok: bool
    reasons: tuple[str, ...]
    """Why the policy is not met (empty when ok)."""
    approvals: Mapping[str, tuple[str, ...]]
    """role -> the people whose approval counted for it, sorted."""
    evaluation_passed: bool
    notes: tuple[str, ...] = ()
    """Envelopes and signatures that were ignored, and why."""

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(sorted({u for users in self.approvals.values() for u in users}))

    def summary(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "met"


# -- parsing ---------------------------------------------------------------------------------


def _load(data: bytes | str | Mapping[str, Any], what: str) -> dict[str, Any]:
    if isinstance(data, bytes | str):
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise PolicyError(f"{what} is not JSON: {exc}") from exc
    else:
        doc = dict(data)
    if not isinstance(doc, dict):
        raise PolicyError(f"{what} is not a JSON object")
    return doc


def _int(doc: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = doc.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise PolicyError(f"{where}: {key} must be a non-negative integer")
    return value


def parse_bindings(data: bytes | str | Mapping[str, Any]) -> Bindings:
    """`trust/bindings.json`; every key id must be the hash of the key it binds."""
    doc = _load(data, "bindings.json")
    if doc.get("schema") != BINDINGS_SCHEMA:
        raise PolicyError(f"bindings.json: schema must be {BINDINGS_SCHEMA!r}")
    raw = doc.get("keys")
    if not isinstance(raw, dict):
        raise PolicyError("bindings.json: keys must be an object")
    out: dict[str, Binding] = {}
    for key_id, entry in raw.items():
        where = f"bindings.json: key {key_id}"
        if not isinstance(entry, dict):
            raise PolicyError(f"{where} must be an object")
        user, roles, pem = entry.get("user"), entry.get("roles"), entry.get("public_key_pem")
        if not isinstance(user, str) or not user:
            raise PolicyError(f"{where}: user must be a non-empty string")
        if not isinstance(roles, list) or not all(
            isinstance(r, str) and _ROLE_RE.match(r) for r in roles
        ):
            raise PolicyError(f"{where}: roles must be a list of role names")
        if not isinstance(pem, str):
            raise PolicyError(f"{where}: public_key_pem must be a PEM string")
        try:
            public_key = keys.load_public_key(pem)
        except FarpointError as exc:
            raise PolicyError(f"{where}: {exc.detail}") from exc
        if keys.key_id(public_key) != key_id:
            raise PolicyError(f"{where}: the public key hashes to {keys.key_id(public_key)}")
        out[key_id] = Binding(key_id, user, frozenset(roles), public_key)
    return Bindings(out)


def parse_policy(data: bytes | str | Mapping[str, Any]) -> Policy:
    """`trust/policy.json` or `trust/policies/<fleet>.json`."""
    doc = _load(data, "policy")
    if doc.get("schema") != POLICY_SCHEMA:
        raise PolicyError(f"policy: schema must be {POLICY_SCHEMA!r}")
    evaluation = doc.get("evaluation")
    if evaluation == "none":
        evaluation = None
    if evaluation not in (None, "passed"):
        raise PolicyError("policy: evaluation must be 'passed', 'none' or absent")
    raw = doc.get("approvals", [])
    if not isinstance(raw, list):
        raise PolicyError("policy: approvals must be a list")
    approvals: list[RoleRequirement] = []
    for i, item in enumerate(raw):
        where = f"policy: approvals[{i}]"
        if not isinstance(item, dict):
            raise PolicyError(f"{where} must be an object")
        role = item.get("role")
        if not isinstance(role, str) or not _ROLE_RE.match(role):
            raise PolicyError(f"{where}: role must be a role name")
        if any(r.role == role for r in approvals):
            raise PolicyError(f"{where}: role {role!r} is listed twice")
        approvals.append(RoleRequirement(role, _int(item, "min", where, 1)))
    author_may_approve = doc.get("author_may_approve", False)
    if not isinstance(author_may_approve, bool):
        raise PolicyError("policy: author_may_approve must be true or false")
    return Policy(
        evaluation=evaluation,
        approvals=tuple(approvals),
        min_distinct_approvers=_int(doc, "min_distinct_approvers", "policy", 0),
        author_may_approve=author_may_approve,
    )


# -- evaluation ------------------------------------------------------------------------------


def _signed_statements(
    envelope: Any, bindings: Bindings, index: int, notes: list[str]
) -> list[tuple[Binding, intoto.Statement]]:
    """Each (binding, statement) for which a BOUND key's signature on `envelope` verifies."""
    where = f"envelope {index}"
    if not isinstance(envelope, dict) or not isinstance(envelope.get("signatures"), list):
        notes.append(f"{where}: not a DSSE envelope")
        return []
    if envelope.get("payloadType") != intoto.PAYLOAD_TYPE:
        notes.append(f"{where}: payload type is not {intoto.PAYLOAD_TYPE}")
        return []
    signers: list[Binding] = []
    for entry in envelope["signatures"]:
        keyid = entry.get("keyid") if isinstance(entry, dict) else None
        binding = bindings.keys.get(keyid) if isinstance(keyid, str) else None
        if binding is None:
            notes.append(f"{where}: signature by unbound key {keyid!r} ignored")
            continue
        if binding in signers:
            continue
        single = {**envelope, "signatures": [entry]}
        try:
            dsse.verify_envelope(single, {binding.key_id: binding.public_key}, intoto.PAYLOAD_TYPE)
        except SignatureError as exc:
            notes.append(f"{where}: signature by {binding.user}'s key does not verify: {exc}")
            continue
        signers.append(binding)
    if not signers:
        return []
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        statement = intoto.parse_statement(payload)
    except (ValueError, FarpointError) as exc:
        notes.append(f"{where}: the signed statement is not valid: {exc}")
        return []
    return [(b, statement) for b in signers]


def evaluate_policy(
    policy: Policy,
    bindings: Bindings,
    release: ReleaseFacts,
    envelopes: Iterable[Any],
) -> PolicyVerdict:
    """Whether the release meets `policy`, counting only statements signed by bound keys."""
    notes: list[str] = []
    counted: dict[str, set[str]] = {}
    evaluation_passed = False
    for index, envelope in enumerate(envelopes):
        if index >= MAX_ENVELOPES:
            notes.append(f"more than {MAX_ENVELOPES} envelopes: the rest were not read")
            break
        for binding, st in _signed_statements(envelope, bindings, index, notes):
            where = f"envelope {index} ({binding.user})"
            if st.predicate_type == intoto.TEST_RESULT_V01:
                if release.model_digest not in st.digests:
                    notes.append(f"{where}: test result is not about the model")
                elif st.predicate.get("result") != "PASSED":
                    notes.append(f"{where}: test result is {st.predicate.get('result')!r}")
                elif EVALUATION_ROLE not in binding.roles:
                    notes.append(
                        f"{where}: test result signed by a key not bound as data-scientist"
                    )
                else:
                    evaluation_passed = True
            elif st.predicate_type == intoto.APPROVAL_V1:
                role = st.predicate.get("role")
                if release.manifest_digest not in st.digests:
                    notes.append(f"{where}: approval is not about this manifest")
                elif not isinstance(role, str) or role not in binding.roles:
                    notes.append(
                        f"{where}: approval as {role!r} ignored: the key is bound only as "
                        f"{', '.join(sorted(binding.roles)) or 'nothing'}"
                    )
                elif binding.user == release.author and not policy.author_may_approve:
                    notes.append(f"{where}: approval by the author ignored")
                else:
                    counted.setdefault(role, set()).add(binding.user)
            else:
                notes.append(f"{where}: predicate type {st.predicate_type} is not used here")

    reasons: list[str] = []
    if policy.evaluation == "passed" and not evaluation_passed:
        reasons.append(
            f"needs a passed evaluation of {release.model_digest} signed by a data-scientist key"
        )
    for req in policy.approvals:
        have = len(counted.get(req.role, ()))
        if have < req.min:
            plural = "approval" if req.min == 1 else "approvals"
            reasons.append(f"needs {req.min} {plural} by {req.role}, has {have}")
    people = {u for users in counted.values() for u in users}
    if len(people) < policy.min_distinct_approvers:
        reasons.append(
            f"needs {policy.min_distinct_approvers} distinct approvers, has {len(people)}"
        )
    return PolicyVerdict(
        ok=not reasons,
        reasons=tuple(reasons),
        approvals={role: tuple(sorted(users)) for role, users in sorted(counted.items())},
        evaluation_passed=evaluation_passed,
        notes=tuple(notes),
    )
