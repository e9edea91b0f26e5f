"""The director: per-device targets metadata naming the releases a device must run.

Built from the device's desired state (fleets and rollouts decide), signed with the online
director key, with a short expiry. The version goes up whenever the content changes or
the stored copy has less than half its lifetime left, so a device can refuse replays.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy.orm import Session
from tuf.api.metadata import Metadata, TargetFile, Targets  # type: ignore[attr-defined]

from farpoint.core.digest import digest_bytes, hex_of
from farpoint.server.audit import service as audit
from farpoint.server.context import AppContext
from farpoint.server.devices import service as devices
from farpoint.server.tuf import repository as repo
from farpoint.server.tuf.service import now_of, signer_for
from farpoint.server.tuf.tables import DirectorTargets

__all__ = ["DEVICE_FIELD", "LostRace", "NeedsSigning", "director_targets"]

DEVICE_FIELD = "x-farpoint-device"


class LostRace(Exception):
    """Another request signed this device's metadata first; read it again."""


class NeedsSigning(Exception):
    """The stored copy is missing, stale or says something else: a new version must be
    signed and written (asked with `write=False`)."""


def _targets(s: Session, ctx: AppContext, device_id: str) -> dict[str, TargetFile]:
    out: dict[str, TargetFile] = {}
    for m in devices.desired_state(s, device_id).models:
        path = f"releases/{m.release_id}/manifest.json"
        custom = {
            "model": m.model,
            "release_id": m.release_id,
            "model_path": f"releases/{m.release_id}/model.onnx",
            "model_sha256": hex_of(m.model_digest),
            "model_length": ctx.blobs.size(m.model_digest),
            "fleet": m.fleet,
        }
        out[path] = TargetFile(
            length=ctx.blobs.size(m.manifest_digest),
            hashes={"sha256": hex_of(m.manifest_digest)},
            path=path,
            unrecognized_fields={"custom": custom},
        )
    return out


def director_targets(s: Session, ctx: AppContext, device_id: str, *, write: bool = True) -> bytes:
    """The device's director metadata: the stored copy while it still says the same and
    is fresh, else a newly signed version. Raises LostRace if a concurrent request wrote
    first (the caller retries in a new transaction); with `write=False`, NeedsSigning
    instead of signing (a read-only transaction finds out whether a write is needed)."""
    targets = _targets(s, ctx, device_id)
    signer = signer_for(s, ctx, "director")
    # The signing key is part of the content: after a rotation every device gets a new
    # version signed by the key its (rotated) root names.
    content = {
        "device": device_id,
        "targets": {p: t.to_dict() for p, t in targets.items()},
        "key": signer.public_key.keyid,
    }
    content_digest = digest_bytes(json.dumps(content, sort_keys=True).encode())
    now = now_of(ctx)
    lifetime = timedelta(seconds=ctx.settings.director_expiry_s)
    row = repo.director_of(s, device_id)
    if (
        row is not None
        and row.content_digest == content_digest
        and row.expires - now >= lifetime / 2
    ):
        return row.data
    if not write:
        raise NeedsSigning(device_id)

    version = row.version + 1 if row is not None else 1
    signed = Targets(
        version=version,
        expires=(now + lifetime).replace(microsecond=0),
        targets=targets,
        unrecognized_fields={DEVICE_FIELD: device_id},
    )
    md = Metadata(signed)
    md.sign(signer)
    data = md.to_bytes()
    if row is None:
        repo.add_director(
            s,
            DirectorTargets(
                device_id=device_id,
                version=version,
                content_digest=content_digest,
                data=data,
                expires=signed.expires,
                signed_at=now,
            ),
        )
    elif not repo.replace_director(
        s,
        device_id,
        row.version,
        version=version,
        content_digest=content_digest,
        data=data,
        expires=signed.expires,
        signed_at=now,
    ):
        raise LostRace(device_id)
    if row is None or row.content_digest != content_digest:
        # Only changes of what the device must run are audited, not re-signing for expiry.
        audit.record(
            s,
            ctx,
            "server",
            "tuf.director.sign",
            f"device/{device_id}",
            metadata=digest_bytes(data),
        )
    return data
