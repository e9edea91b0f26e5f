"""OpenSSF Model Signing (OMS v1.0) bundles for a single-file model, and a light verifier.

A bundle is a Sigstore bundle (v0.3) holding a DSSE envelope over an in-toto Statement with
predicate type `https://model_signing/signature/v1.0`, signed with an ECDSA key (no
transparency log: `verificationMaterial.publicKey.hint` is the sha256 of the signer's PEM
public key). The model is the directory of one file, `model.onnx`: the predicate lists that
file's sha256 as its one resource, and the subject digest is sha256 over the resources'
raw digests. This is what `model_signing verify` accepts; devices check it with
`verify_bundle` here instead of the reference library (which pulls in sigstore).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from farpoint.core import dsse, keys
from farpoint.core.errors import SignatureError

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "FILE_NAME",
    "PREDICATE_TYPE",
    "SIGNATURE_FILE",
    "key_hint",
    "sign_bundle",
    "verify_bundle",
]

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
FILE_NAME = "model.onnx"
SIGNATURE_FILE = "model.sig"
"""The bundle's name beside the model in a release (`releases/<id>/model.sig`)."""
_SERIALIZATION = {
    "hash_type": "sha256",
    "method": "files",
    "allow_symlinks": False,
    "ignore_paths": [".gitignore", ".github", ".gitattributes", ".git"],
}


def key_hint(key: keys.PublicKey) -> str:
    """How OMS names a key without a certificate: sha256 hex of its PEM encoding."""
    return hashlib.sha256(keys.public_key_pem(key)).hexdigest()


def _statement(model_name: str, file_sha256_hex: str) -> dict[str, Any]:
    root = hashlib.sha256(bytes.fromhex(file_sha256_hex)).hexdigest()
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": model_name, "digest": {"sha256": root}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "resources": [{"digest": file_sha256_hex, "algorithm": "sha256", "name": FILE_NAME}],
            "serialization": dict(_SERIALIZATION),
        },
    }


def sign_bundle(key: keys.PrivateKey, model_name: str, file_sha256_hex: str) -> dict[str, Any]:
    """Sign the single-file model whose sha256 is `file_sha256_hex` (hashed once, elsewhere)."""
    payload = json.dumps(_statement(model_name, file_sha256_hex), sort_keys=True).encode()
    signature = keys.sign(key, dsse.pae(PAYLOAD_TYPE, payload))
    return {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": key_hint(key.public_key())},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode(), "keyid": ""}],
        },
    }


def verify_bundle(
    bundle: Mapping[str, Any], trusted: Mapping[str, keys.PublicKey], file_sha256_hex: str
) -> str:
    """Check that a trusted key signed this exact model file; return the signer's hint.

    `trusted` maps key hints (`key_hint`) to keys. Raises SignatureError naming the problem.
    """
    try:
        if bundle["mediaType"] != BUNDLE_MEDIA_TYPE:
            raise SignatureError(f"not an OMS bundle: media type {bundle['mediaType']!r}")
        hint = str(bundle["verificationMaterial"]["publicKey"]["hint"])
        envelope = bundle["dsseEnvelope"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        if envelope["payloadType"] != PAYLOAD_TYPE:
            raise SignatureError(f"OMS payload type is {envelope['payloadType']!r}")
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"malformed OMS bundle: {exc}") from exc
    key = trusted.get(hint)
    if key is None:
        raise SignatureError(f"the model was signed by key {hint[:16]}…, which is not trusted")
    message = dsse.pae(PAYLOAD_TYPE, payload)
    if not any(keys.verify(key, message, sig) for sig in signatures):
        raise SignatureError("the OMS signature does not verify with the signer's key")
    try:
        statement = json.loads(payload)
        subject = statement["subject"]
        resources = statement["predicate"]["resources"]
        if statement["predicateType"] != PREDICATE_TYPE or len(subject) != 1:
            raise SignatureError("the OMS statement is not a model signature of one model")
        digests = [r["digest"] for r in resources if r["algorithm"] == "sha256"]
        names = [r["name"] for r in resources]
        root = hashlib.sha256(b"".join(bytes.fromhex(d) for d in digests)).hexdigest()
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"malformed OMS statement: {exc}") from exc
    if root != subject[0]["digest"]["sha256"]:
        raise SignatureError("the OMS subject digest does not match its resources")
    if names not in (["."], [FILE_NAME]) or digests != [file_sha256_hex]:
        raise SignatureError(
            f"the OMS signature covers {dict(zip(names, digests, strict=False))}, "
            f"not {FILE_NAME} with sha256 {file_sha256_hex}"
        )
    return hint
