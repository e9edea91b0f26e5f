"""DSSE envelopes, device request signatures and content addresses."""

from __future__ import annotations

import base64
import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.core import dsse, keys
from farpoint.core.digest import digest_bytes, hex_of, is_digest
from farpoint.core.errors import SignatureError, Unauthorized
from farpoint.core.request_signing import sign_request, verify_request

KEY = keys.generate_private_key()
OTHER = keys.generate_private_key()
TRUSTED = {keys.key_id(KEY.public_key()): KEY.public_key()}


def test_envelope_round_trip():
    env = dsse.sign_envelope(b'{"a": 1}', dsse.MANIFEST_TYPE, KEY)
    assert dsse.verify_envelope(env, TRUSTED, dsse.MANIFEST_TYPE) == {"a": 1}


def test_envelope_tampered_payload_is_refused():
    env = dsse.sign_envelope(b'{"a": 1}', dsse.MANIFEST_TYPE, KEY)
    bad = copy.deepcopy(env)
    bad["payload"] = base64.b64encode(b'{"a": 2}').decode()
    with pytest.raises(SignatureError):
        dsse.verify_envelope(bad, TRUSTED, dsse.MANIFEST_TYPE)


def test_envelope_signed_by_untrusted_key_is_refused():
    env = dsse.sign_envelope(b"{}", dsse.MANIFEST_TYPE, OTHER)
    with pytest.raises(SignatureError, match="trusted key"):
        dsse.verify_envelope(env, TRUSTED, dsse.MANIFEST_TYPE)
    # Relabelling the untrusted signature with the trusted key id does not help.
    env["signatures"][0]["keyid"] = next(iter(TRUSTED))
    with pytest.raises(SignatureError):
        dsse.verify_envelope(env, TRUSTED, dsse.MANIFEST_TYPE)


def test_envelope_type_confusion_is_refused():
    env = dsse.sign_envelope(b"{}", "application/other", KEY)
    with pytest.raises(SignatureError, match="payload type"):
        dsse.verify_envelope(env, TRUSTED, dsse.MANIFEST_TYPE)


def test_pae_matches_the_dsse_spec_example():
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


@given(body=st.binary(max_size=256), path=st.text(min_size=1, max_size=40))
def test_signed_request_verifies_and_any_change_breaks_it(body, path):
    path = "/" + path
    headers = sign_request(KEY, "dev-1", "POST", path, body, now=1000.0)
    verify_request(headers, "POST", path, body, KEY.public_key(), now=1010.0)
    with pytest.raises(SignatureError):
        verify_request(headers, "POST", path, body + b"x", KEY.public_key(), now=1010.0)
    with pytest.raises(SignatureError):
        verify_request(headers, "GET", path, body, KEY.public_key(), now=1010.0)
    with pytest.raises(SignatureError):
        verify_request(headers, "POST", path, body, OTHER.public_key(), now=1010.0)


def test_stale_or_unsigned_request_is_refused():
    headers = sign_request(KEY, "dev-1", "GET", "/x", b"", now=1000.0)
    with pytest.raises(SignatureError, match="clock"):
        verify_request(headers, "GET", "/x", b"", KEY.public_key(), now=2000.0)
    with pytest.raises(Unauthorized):
        verify_request({}, "GET", "/x", b"", KEY.public_key(), now=1000.0)
    forged = dict(headers, **{"X-Farpoint-Device": "dev-2"})
    with pytest.raises(SignatureError):
        verify_request(forged, "GET", "/x", b"", KEY.public_key(), now=1000.0)


@given(st.binary(max_size=1024))
def test_digest_format(data):
    d = digest_bytes(data)
    assert is_digest(d) and len(hex_of(d)) == 64


def test_key_pem_round_trip_with_passphrase():
    pem = keys.private_key_pem(KEY, b"s3cret")
    loaded = keys.load_private_key(pem, b"s3cret")
    assert keys.key_id(loaded.public_key()) == keys.key_id(KEY.public_key())
    assert json.dumps(keys.key_id(KEY.public_key())).startswith('"sha256:')
