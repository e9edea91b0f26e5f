"""Release managers' model signatures (OMS v1.0 bundles), served as `releases/<id>/model.sig`.

The server checks an upload only so that it stores nothing useless (a bundle for other bytes,
or by a key the uploader does not hold); devices verify the bundle themselves against the
keys bound offline as mlops-engineer.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from farpoint.core import oms
from farpoint.core.digest import digest_bytes, hex_of
from farpoint.core.errors import NotFound, PayloadTooLarge, SignatureError, ValidationFailed
from farpoint.server.keys import service as keys_service
from farpoint.server.releases import repository as releases_repo
from farpoint.server.tuf.tables import ReleaseModelSignature

__all__ = ["MAX_SIGNATURE_BYTES", "signature_of", "upload_model_signature"]

MAX_SIGNATURE_BYTES = 64 * 1024


def signature_of(s: Session, release_id: int) -> ReleaseModelSignature | None:
    return s.get(ReleaseModelSignature, release_id)


def upload_model_signature(
    s: Session, release_id: int, data: bytes, user_id: int, user: str, now: datetime
) -> ReleaseModelSignature:
    """Store the uploader's OMS bundle over the release's model bytes (replacing theirs)."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise PayloadTooLarge(f"a model signature is at most {MAX_SIGNATURE_BYTES} bytes")
    release = releases_repo.release_by_id(s, release_id)
    if release is None:
        raise NotFound(f"release {release_id} does not exist")
    try:
        bundle = json.loads(data)
    except ValueError as exc:
        raise ValidationFailed(f"the model signature is not JSON: {exc}") from exc
    mine = keys_service.active_public_keys(s, user_id)
    by_hint = {oms.key_hint(k): (key_id, k) for key_id, k in mine.items()}
    try:
        hint = oms.verify_bundle(
            bundle, {h: k for h, (_, k) in by_hint.items()}, hex_of(release.model_digest)
        )
    except SignatureError as exc:
        raise ValidationFailed(
            f"not an OMS signature of release {release_id}'s model by one of your registered "
            f"keys: {exc.detail}"
        ) from exc
    row = signature_of(s, release_id)
    if row is None:
        row = ReleaseModelSignature(release_id=release_id)
        s.add(row)
    row.data = data
    row.digest = digest_bytes(data)
    row.signer_key_id = by_hint[hint][0]
    row.uploaded_by = user
    row.uploaded_at = now
    s.flush()
    return row
