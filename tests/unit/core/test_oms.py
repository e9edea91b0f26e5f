"""OMS v1.0 bundles interoperate with the reference `model_signing` library, both ways."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from farpoint.core import keys, oms
from farpoint.core.errors import SignatureError

model_signing = pytest.importorskip("model_signing", reason="the dev extra installs it")

KEY = keys.generate_private_key()
OTHER = keys.generate_private_key()


@pytest.fixture
def model_dir(tmp_path: Path) -> tuple[Path, str]:
    directory = tmp_path / "deterioration"
    directory.mkdir()
    data = os.urandom(4096)
    (directory / oms.FILE_NAME).write_bytes(data)
    return directory, hashlib.sha256(data).hexdigest()


def _pem_files(tmp_path: Path) -> tuple[Path, Path]:
    priv, pub = tmp_path / "priv.pem", tmp_path / "pub.pem"
    priv.write_bytes(keys.private_key_pem(KEY))
    pub.write_bytes(keys.public_key_pem(KEY.public_key()))
    return priv, pub


def test_our_bundle_verifies_with_model_signing(tmp_path, model_dir):
    directory, digest = model_dir
    bundle = oms.sign_bundle(KEY, directory.name, digest)
    sig = tmp_path / "model.sig"
    sig.write_text(json.dumps(bundle))
    _, pub = _pem_files(tmp_path)
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(
        directory, sig
    )
    # And it is refused there once the model changes.
    (directory / oms.FILE_NAME).write_bytes(b"tampered")
    with pytest.raises(ValueError):
        model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pub).verify(
            directory, sig
        )


def test_model_signing_bundle_verifies_with_our_light_verifier(tmp_path, model_dir):
    directory, digest = model_dir
    priv, _ = _pem_files(tmp_path)
    sig = tmp_path / "model.sig"
    model_signing.signing.Config().use_elliptic_key_signer(private_key=priv).sign(directory, sig)
    bundle = json.loads(sig.read_text())
    trusted = {oms.key_hint(KEY.public_key()): KEY.public_key()}
    assert oms.verify_bundle(bundle, trusted, digest) == oms.key_hint(KEY.public_key())


def test_light_verifier_refuses_other_files_keys_and_tampering(model_dir):
    directory, digest = model_dir
    bundle = oms.sign_bundle(KEY, directory.name, digest)
    trusted = {oms.key_hint(KEY.public_key()): KEY.public_key()}
    with pytest.raises(SignatureError, match=r"not model\.onnx with sha256"):
        oms.verify_bundle(bundle, trusted, "0" * 64)
    with pytest.raises(SignatureError, match="not trusted"):
        oms.verify_bundle(bundle, {oms.key_hint(OTHER.public_key()): OTHER.public_key()}, digest)
    forged = oms.sign_bundle(OTHER, directory.name, digest)
    forged["verificationMaterial"] = bundle["verificationMaterial"]  # claims KEY signed it
    with pytest.raises(SignatureError, match="does not verify"):
        oms.verify_bundle(forged, trusted, digest)
    with pytest.raises(SignatureError, match="malformed"):
        oms.verify_bundle({"mediaType": oms.BUNDLE_MEDIA_TYPE}, trusted, digest)
