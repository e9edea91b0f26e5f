"""Enrollment, devices and what a device may fetch: the use cases."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from farpoint.core import intoto, keys
from farpoint.core.digest import hex_of
from farpoint.core.errors import BadRequest, Conflict, NotFound, Unauthorized, ValidationFailed
from farpoint.server.attestations import repository as attestations_repo
from farpoint.server.devices import repository as repo
from farpoint.server.devices.diagnostics import pending_diagnostics
from farpoint.server.devices.tables import Device, DeviceModelState, EnrollmentToken
from farpoint.server.fleets import history
from farpoint.server.fleets import repository as fleets_repo
from farpoint.server.fleets.rules import state_etag
from farpoint.server.rollouts import controller as rollouts
from farpoint.server.rollouts import desired
from farpoint.server.telemetry import service as telemetry_service
from farpoint.server.tuf import repository as tuf_repo
from farpoint.wire.devices import (
    DesiredModel,
    DesiredState,
    DeviceModelStatus,
    DeviceOut,
    DeviceStatusReport,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
    EnrollRequest,
    EnrollResponse,
)

_TOKEN_PREFIX = "fpe1"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_enrollment_token(
    s: Session,
    body: EnrollmentTokenCreate,
    actor: str,
    server_key_id: str,
    now: datetime,
    ca_digest: str | None = None,
) -> EnrollmentTokenCreated:
    """A single-use token naming the current root (and the TLS CA when the server has one);
    only the hash of its secret is stored."""
    root = tuf_repo.latest(s, "root")
    if root is None:
        raise Conflict(
            "trust is not initialized: an admin must run `farpoint trust init` before "
            "enrollment tokens can name the root devices trust"
        )
    if body.fleet is not None:
        fleet = fleets_repo.fleet_by_name(s, body.fleet)
        if fleet is None:
            raise NotFound(f"fleet {body.fleet!r} does not exist; create it first")
        _fleet_labels(fleet.name, fleet.selector, body.labels)  # contradictions fail now
    secret = secrets.token_urlsafe(32)  # no '.' in the urlsafe alphabet
    row = EnrollmentToken(
        secret_hash=_hash(secret),
        labels=dict(body.labels),
        server_key_id=server_key_id,
        root_version=root.version,
        root_digest=root.digest,
        created_by=actor,
        created_at=now,
        expires_at=now + timedelta(seconds=body.expires_in_s),
        used_at=None,
        device_id=None,
        fleet=body.fleet,
        requires_approval=body.requires_approval,
        ca_digest=ca_digest,
    )
    repo.add_token(s, row)
    s.flush()
    token = f"{_TOKEN_PREFIX}.{secret}.{hex_of(root.digest)}"
    if ca_digest is not None:
        token += f".{hex_of(ca_digest)}"
    return EnrollmentTokenCreated(
        id=row.id,
        token=token,
        labels=row.labels,
        fleet=row.fleet,
        requires_approval=row.requires_approval,
        expires_at=row.expires_at,
        server_key_id=server_key_id,
        root_digest=root.digest,
        ca_digest=ca_digest,
    )


def _fleet_labels(
    fleet: str, selector: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, str]:
    """The fleet's selector labels plus the token's; a token label that contradicts the
    selector would enroll the device outside the fleet it names, so it is refused."""
    clash = sorted(k for k, v in selector.items() if k in labels and labels[k] != v)
    if clash:
        pairs = ", ".join(f"{k}={labels[k]!r} (fleet wants {selector[k]!r})" for k in clash)
        raise ValidationFailed(f"labels contradict the selector of fleet {fleet!r}: {pairs}")
    return {**labels, **selector}


def _token_secret(token: str) -> str:
    parts = token.split(".")
    if len(parts) not in (3, 4) or parts[0] != _TOKEN_PREFIX or not parts[1]:
        raise Unauthorized(
            "the enrollment token is malformed; expected fpe1.<secret>.<hex>[.<ca hex>]"
        )
    return parts[1]


def enroll(
    s: Session, body: EnrollRequest, server_key: keys.PublicKey, now: datetime
) -> EnrollResponse:
    """Register a device under a valid token; the token is spent in the same transaction.

    Labels on the token win over labels the device proposes: the operator decides.
    """
    secret_hash = _hash(_token_secret(body.token))
    token = repo.token_by_hash(s, secret_hash)
    if token is None or not hmac.compare_digest(token.secret_hash, secret_hash):
        raise Unauthorized("the enrollment token is not valid; ask IT operations for a new one")
    if token.used_at is not None:
        raise Conflict("this enrollment token was already used; ask IT operations for a new one")
    if token.expires_at <= now:
        raise Unauthorized("the enrollment token expired; ask IT operations for a new one")
    try:
        public_key = keys.load_public_key(body.public_key_pem)
    except BadRequest as exc:
        raise ValidationFailed(f"public_key_pem: {exc.detail}") from exc
    if repo.device_by_name(s, body.name) is not None:
        raise Conflict(f"a device named {body.name!r} is already enrolled; pick another name")

    device_id = str(uuid.uuid4())
    # Claim first: of two enrollments racing on one token, the second finds used_at set
    # (PostgreSQL re-checks the WHERE after the first commits; SQLite serializes writers).
    if not repo.claim_token(s, token.id, device_id, now):
        raise Conflict("this enrollment token was already used; ask IT operations for a new one")
    labels = {**body.labels, **token.labels}
    if token.fleet is not None:
        fleet = fleets_repo.fleet_by_name(s, token.fleet)
        if fleet is None:
            raise Conflict(
                f"the fleet {token.fleet!r} this token enrolls into no longer exists; "
                "ask IT operations for a new token"
            )
        labels = {**body.labels, **_fleet_labels(fleet.name, fleet.selector, token.labels)}
    state = "pending" if token.requires_approval else "active"
    device = Device(
        id=device_id,
        name=body.name,
        public_key_pem=body.public_key_pem,
        key_id=keys.key_id(public_key),
        labels=labels,
        hardware=dict(body.hardware),
        heartbeat={},
        enrollment_token_id=token.id,
        enrolled_at=now,
        last_seen_at=now,
        state=state,
        state_changed_at=now,
        state_changed_by=f"enroll:{token.id}",
    )
    repo.add_device(s, device)
    try:
        s.flush()
    except IntegrityError as exc:  # a concurrent enrollment took the name
        raise Conflict(f"a device named {body.name!r} is already enrolled") from exc
    root = tuf_repo.metadata_version(s, "root", token.root_version)
    assert root is not None, "roots are never deleted"
    return EnrollResponse(
        device_id=device_id,
        server_public_key_pem=keys.public_key_pem(server_key).decode(),
        server_key_id=keys.key_id(server_key),
        labels=labels,
        root_json_b64=base64.b64encode(root.data).decode(),
        root_digest=root.digest,
        state=state,
    )


def device_outs(
    s: Session, devices: Sequence[Device], now: datetime, online_s: int
) -> list[DeviceOut]:
    states: dict[str, list[DeviceModelStatus]] = {}
    for st in repo.model_states(s, [d.id for d in devices]):
        states.setdefault(st.device_id, []).append(
            DeviceModelStatus(
                model=st.model,
                release_id=st.release_id,
                phase=st.phase,
                error=st.error,
                committed=st.committed,
                serving_release_id=st.serving_release_id,
                rollout_id=st.rollout_id,
                updated_at=st.updated_at,
            )
        )
    return [
        DeviceOut(
            id=d.id,
            name=d.name,
            labels=d.labels,
            hardware=d.hardware,
            key_id=d.key_id,
            enrolled_at=d.enrolled_at,
            last_seen_at=d.last_seen_at,
            online=d.last_seen_at is not None
            and (now - d.last_seen_at).total_seconds() <= online_s,
            models=states.get(d.id, []),
            heartbeat=d.heartbeat,
            state=d.state,
            state_changed_at=d.state_changed_at,
            state_changed_by=d.state_changed_by,
            key_rotated_at=d.key_rotated_at,
        )
        for d in devices
    ]


def get_device(s: Session, device_id: str, now: datetime, online_s: int) -> DeviceOut:
    device = repo.device_by_id(s, device_id)
    if device is None:
        raise NotFound(f"device {device_id} does not exist")
    return device_outs(s, [device], now, online_s)[0]


def desired_state(s: Session, device_id: str) -> DesiredState:
    """What the device must run now, per model: among the fleets selecting it, the one set
    most recently decides, through its rollout's assignment for the device (see
    `rollouts.desired`). A few indexed queries, whatever the number of devices."""
    labels = repo.device_labels(s, device_id)
    if labels is None:
        raise Unauthorized(f"device {device_id} is not enrolled")
    models: list[dict[str, object]] = []
    for choice in desired.choices_for_device(s, device_id, labels):
        won = choice.chosen
        if won is None:
            continue
        models.append(
            {
                "model": choice.model,
                "release_id": won.gives.release_id,
                "manifest_digest": choice.manifest_digest,
                "model_digest": choice.model_digest,
                "fleet": won.target.fleet,
                "rollout_id": won.gives.rollout_id,
                "health": dict(choice.health or {}),
            }
        )
    request = pending_diagnostics(s, device_id)  # IT operations asked for the device's logs
    diagnostics = None if request is None else request.model_dump()
    return DesiredState(
        device_id=device_id,
        etag=state_etag(models, diagnostics),
        models=[DesiredModel.model_validate(m) for m in models],
        diagnostics=diagnostics,
    )


def desired_release_envelope(s: Session, device_id: str, release_id: int) -> dict[str, object]:
    """The signed manifest of a release, only if the release is desired for this device."""
    if all(m.release_id != release_id for m in desired_state(s, device_id).models):
        raise NotFound(f"release {release_id} is not desired for this device")
    release = fleets_repo.release_by_id(s, release_id)
    if release is None:  # pragma: no cover - desired state joins on releases
        raise NotFound(f"release {release_id} does not exist")
    return release.envelope


def desired_release_attestations(
    s: Session, device_id: str, release_id: int
) -> list[dict[str, object]]:
    """Approvals of a desired release's manifest and test results of its model, as DSSE
    envelopes; the device judges them against the offline-signed bindings itself."""
    if all(m.release_id != release_id for m in desired_state(s, device_id).models):
        raise NotFound(f"release {release_id} is not desired for this device")
    release = fleets_repo.release_by_id(s, release_id)
    if release is None:  # pragma: no cover - desired state joins on releases
        raise NotFound(f"release {release_id} does not exist")
    out: list[dict[str, object]] = []
    for subject, predicate in (
        (release.manifest_digest, intoto.APPROVAL_V1),
        (release.model_digest, intoto.TEST_RESULT_V01),
    ):
        after = 0
        while True:
            rows = attestations_repo.search(s, after, 500, subject, predicate)
            out.extend(r.envelope for r in rows)
            if len(rows) < 500:
                break
            after = rows[-1].id
    return out


def check_blob_desired(s: Session, device_id: str, digest: str) -> None:
    if all(m.model_digest != digest for m in desired_state(s, device_id).models):
        raise NotFound(f"blob {digest} is not part of a release desired for this device")


def report_status(s: Session, device_id: str, report: DeviceStatusReport, now: datetime) -> bool:
    """Store what the device runs, its heartbeat and its telemetry windows, record changes
    of what it serves, then advance its rollouts. True when some device's desired state
    may have changed (the caller wakes long-polls after committing)."""
    # Writing first makes SQLite take its write lock before anything is read.
    if not repo.record_heartbeat(s, device_id, dict(report.heartbeat), now):
        raise Unauthorized(f"device {device_id} is not enrolled")
    for m in report.models:
        row = repo.model_state(s, device_id, m.model)
        if row is None:
            row = DeviceModelState(device_id=device_id, model=m.model)
            repo.add_model_state(s, row)
        row.release_id = m.release_id
        row.phase = m.phase
        row.error = m.error
        row.committed = m.committed
        row.serving_release_id = history.serving_release(m)[1]
        row.rollout_id = m.rollout_id
        row.updated_at = now
    s.flush()
    telemetry_service.store(s, device_id, report.telemetry, report.dropped_telemetry, now)
    history.record_serving(s, device_id, report.models, now)
    return rollouts.on_report(s, device_id, report.models, now)
