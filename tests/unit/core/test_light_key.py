"""Request signing through the process's libcrypto (core/light_key.py): the same
signatures `cryptography` makes and verifies, refusals instead of prompts, a logged
fallback where that libcrypto is not usable."""

from __future__ import annotations

import logging
import os

import pytest

from farpoint.core import keys, light_key, request_signing


def test_signatures_verify_with_cryptography_and_cover_every_byte() -> None:
    key = keys.generate_private_key()
    light = light_key.load_signing_key(keys.private_key_pem(key))
    assert isinstance(light, light_key.LightPrivateKey)
    for size in (0, 1, 63, 64, 1000, 70_000):
        data = os.urandom(size)
        sig = keys.sign(light, data)
        assert keys.verify(key.public_key(), data, sig)
        assert not keys.verify(key.public_key(), data + b"\\0", sig)
    other = keys.generate_private_key()
    assert not keys.verify(other.public_key(), b"x", keys.sign(light, b"x"))
    assert keys.key_id(light.public_key()) == keys.key_id(key.public_key())


def test_a_signed_request_from_a_light_key_is_accepted_by_the_server_check() -> None:
    key = keys.generate_private_key()
    light = light_key.load_signing_key(keys.private_key_pem(key))
    headers = request_signing.sign_request(light, "dev-1", "POST", "/api/v1/x", b"{}", 1000.0)
    request_signing.verify_request(headers, "POST", "/api/v1/x", b"{}", key.public_key(), 1000.0)


def test_keys_that_are_not_unencrypted_p256_private_keys_are_refused_without_a_prompt() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )  # fmt: skip
    encrypted = keys.private_key_pem(keys.generate_private_key(), passphrase=b"secret")
    public = keys.public_key_pem(keys.generate_private_key().public_key())
    for pem in (p384, ed, encrypted, public, b"not a key", b""):
        with pytest.raises(ValueError):
            light_key.LightPrivateKey(pem)


def test_without_a_usable_libcrypto_it_says_so_and_signs_with_cryptography(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(light_key, "_LIB", None)
    monkeypatch.setattr(light_key, "_loaded_libcrypto", lambda: None)
    monkeypatch.setattr(light_key, "_warned", set())
    key = keys.generate_private_key()
    with caplog.at_level(logging.INFO, logger="farpoint.keys"):
        got = light_key.load_signing_key(keys.private_key_pem(key))
    assert not isinstance(got, light_key.LightPrivateKey)
    assert keys.verify(key.public_key(), b"m", keys.sign(got, b"m"))
    assert "no libcrypto is mapped" in caplog.text
