"""ECDSA P-256 keys: the curve OpenSSF Model Signing accepts and devices can afford."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from farpoint.core.errors import BadRequest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from farpoint.core.light_key import LightPrivateKey

# `cryptography` is imported by the functions that need it, not here: a serving agent
# imports this module but signs through `light_key.py` and never loads the extension.

__all__ = [
    "PrivateKey",
    "PublicKey",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
    "sign",
    "verify",
]

if TYPE_CHECKING:
    PrivateKey = ec.EllipticCurvePrivateKey
    PublicKey = ec.EllipticCurvePublicKey


def __getattr__(name: str) -> Any:
    """`keys.PrivateKey` and `keys.PublicKey` at run time, importing `cryptography`."""
    if name in ("PrivateKey", "PublicKey"):
        from cryptography.hazmat.primitives.asymmetric import ec

        return ec.EllipticCurvePrivateKey if name == "PrivateKey" else ec.EllipticCurvePublicKey
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def generate_private_key() -> PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def private_key_pem(key: PrivateKey, passphrase: bytes | None = None) -> bytes:
    from cryptography.hazmat.primitives import serialization

    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = serialization.load_pem_private_key(pem, password=passphrase)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise BadRequest("expected an ECDSA P-256 private key")
    return key


def public_key_pem(key: PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes | str) -> PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise BadRequest(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise BadRequest("expected an ECDSA P-256 public key")
    return key


def key_id(key: PublicKey) -> str:
    """`sha256:<hex>` of the DER SubjectPublicKeyInfo: how tokens and manifests name a key."""
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(der).hexdigest()


def sign(key: PrivateKey | LightPrivateKey, data: bytes) -> bytes:
    """A DER-encoded ECDSA signature over SHA-256 of `data`."""
    from farpoint.core.light_key import LightPrivateKey

    if isinstance(key, LightPrivateKey):
        return key.sign_der(data)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(key: PublicKey, data: bytes, signature: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True
