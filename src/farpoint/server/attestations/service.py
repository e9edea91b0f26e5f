"""Attestations: accept a signed statement only when its signer, subject and claims hold up."""

from __future__ import annotations

import base64
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core import dsse, intoto
from farpoint.core.errors import Forbidden, NotFound, SignatureError, ValidationFailed
from farpoint.server.attestations import predicates
from farpoint.server.attestations import repository as repo
from farpoint.server.attestations.tables import Attestation
from farpoint.server.auth import Principal
from farpoint.server.keys import service as keys_service
from farpoint.wire.trust import AttestationOut, Envelope, SubjectOut

__all__ = ["attestation_out", "get", "submit"]


def attestation_out(s: Session, row: Attestation) -> AttestationOut:
    return AttestationOut(
        id=row.id,
        predicate_type=row.predicate_type,
        subjects=[SubjectOut(name=x.name, digest=x.digest) for x in repo.subjects_of(s, row.id)],
        signer=row.signer,
        key_id=row.key_id,
        envelope=Envelope.model_validate(row.envelope),
        statement=row.statement,
        created_at=row.created_at,
    )


def get(s: Session, attestation_id: int) -> AttestationOut:
    row = repo.by_id(s, attestation_id)
    if row is None:
        raise NotFound(f"attestation {attestation_id} does not exist")
    return attestation_out(s, row)


def _verified_statement(
    s: Session, principal: Principal, envelope: Envelope
) -> tuple[intoto.Statement, str]:
    """The statement, once a signature by one of the caller's own active keys verifies."""
    if envelope.payloadType != intoto.PAYLOAD_TYPE:
        raise ValidationFailed(
            f"the envelope's payloadType is {envelope.payloadType!r}; "
            f"attestations are {intoto.PAYLOAD_TYPE!r}",
            reason="wrong-payload-type",
        )
    trusted = keys_service.active_public_keys(s, principal.user_id)
    signing_ids = [sig.keyid for sig in envelope.signatures if sig.keyid in trusted]
    if not signing_ids:
        reasons = [
            keys_service.why_not_usable(s, principal.user_id, x.keyid) for x in envelope.signatures
        ]
        raise Forbidden(
            "no signature on the envelope is by one of your registered, unrevoked keys: "
            + "; ".join(reasons),
            reason="key-not-usable",
        )
    raw = envelope.model_dump()
    for kid in signing_ids:
        try:
            dsse.verify_envelope(raw, {kid: trusted[kid]}, intoto.PAYLOAD_TYPE)
        except SignatureError:
            continue
        payload = base64.b64decode(envelope.payload, validate=True)
        return intoto.parse_statement(payload), kid
    raise SignatureError(
        "the signature does not verify with your key "
        f"{', '.join(signing_ids)}: the payload or signature was changed after signing",
        reason="signature-invalid",
    )


def submit(s: Session, principal: Principal, envelope: Envelope, now: datetime) -> AttestationOut:
    """Verify, judge against the records, then store; any refusal stores nothing."""
    statement, key_id = _verified_statement(s, principal, envelope)
    spec = predicates.lookup(statement.predicate_type)
    if spec.signer_roles is not None and not (principal.roles & spec.signer_roles):
        need = sorted(r.value for r in spec.signer_roles)
        raise Forbidden(
            f"a {statement.predicate_type} attestation is signed by one of {need}; "
            f"you hold {sorted(r.value for r in principal.roles)}",
            reason="signer-role",
        )
    for subject in statement.subjects:
        if not repo.is_known_digest(s, subject.digest):
            raise ValidationFailed(
                f"subject {subject.name!r} has digest {subject.digest}, which names no dataset "
                "version, model version or release manifest on this server",
                reason="unknown-subject",
            )
    found = spec.find_subject(s, statement)
    spec.check(s, statement, found, principal)
    row = Attestation(
        predicate_type=statement.predicate_type,
        envelope=envelope.model_dump(),
        statement=statement.to_json(),
        signer_user_id=principal.user_id,
        signer=principal.user,
        key_id=key_id,
        created_at=now,
    )
    repo.add(s, row, [(x.name, x.digest) for x in statement.subjects])
    return attestation_out(s, row)
