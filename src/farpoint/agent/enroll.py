"""Enrollment: make a key on the device, present the token, pin the root it names.

The token is `fpe1.<secret>.<root hex>[.<ca hex>]`. The root hex is the sha256 of the TUF
root metadata the device must trust first; the server answers with those bytes, and the
device refuses any that do not hash to it. The CA hex, when present, is the sha256 of the
server's TLS CA certificate: the device fetches it, refuses it unless it hashes to that,
stores it and verifies every connection against it from then on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from farpoint.core import keys

from .client import API, LinkDown, ServerError, enroll_request
from .http import HttpError, Pool, Timeout
from .payloads import PayloadError
from .state import DEVICE_FILE, DeviceIdentity, atomic_write, hardware_profile, save_identity
from .tls import CA_FILE, InsecureServer, check_server_url

__all__ = [
    "EnrollError",
    "Enrolled",
    "EnrollmentToken",
    "enroll",
    "enroll_device",
    "enrollment_hardware",
    "fetch_ca",
    "parse_token",
]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_CA_BYTES = 64 * 1024
TOKEN_PREFIX = "fpe1"


class EnrollError(Exception):
    """Enrollment was refused, on this side or the server's."""


@dataclass(frozen=True)
class EnrollmentToken:
    raw: str
    secret: str
    root_sha256: str
    """64 lowercase hex digits: the sha256 of the root bytes to trust."""
    ca_sha256: str | None = None
    """64 lowercase hex digits: the sha256 of the TLS CA certificate to pin, if any."""


def parse_token(token: str) -> EnrollmentToken:
    """`fpe1.<secret>.<root hex>[.<ca hex>]`; EnrollError naming what is wrong.

    The secret never holds a '.' when the server makes it, but older tokens are read
    leniently: the CA part is recognized only when the two last parts are both hex.
    """
    token = token.strip()
    prefix, _, rest = token.partition(".")
    if prefix != TOKEN_PREFIX or not rest:
        raise EnrollError(
            f"malformed enrollment token: it must look like {TOKEN_PREFIX}.<secret>.<hex>"
        )
    parts = rest.split(".")
    ca_hex: str | None = None
    if len(parts) >= 3 and _HEX_RE.match(parts[-1]) and _HEX_RE.match(parts[-2]):
        ca_hex = parts.pop()
    secret, hex_part = ".".join(parts[:-1]), parts[-1]
    if not secret:
        raise EnrollError("malformed enrollment token: the secret part is missing")
    if not _HEX_RE.match(hex_part):
        raise EnrollError(
            "malformed enrollment token: its last part must be the 64 lowercase hex "
            "digits of the sha256 of the trusted root"
        )
    return EnrollmentToken(raw=token, secret=secret, root_sha256=hex_part, ca_sha256=ca_hex)


def _execution_providers() -> list[str]:
    """What ONNX Runtime can run on here. Imported only by `agent enroll` (about 45 MB);
    the idle agent reports providers only once a model made it import onnxruntime."""
    try:
        import onnxruntime
    except ImportError:
        return []
    providers: list[str] = onnxruntime.get_available_providers()
    return providers


def enrollment_hardware() -> dict[str, object]:
    """The hardware profile sent at enrollment: architecture, CPUs, memory, OS, Python,
    ONNX Runtime and its available execution providers."""
    return {**hardware_profile(), "execution_providers": _execution_providers()}


def parse_labels(items: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise EnrollError(f"label {item!r} is not key=value")
        labels[key] = value
    return labels


@dataclass(frozen=True)
class Enrolled:
    identity: DeviceIdentity
    state: str
    """`pending` when the token requires IT operations' approval, else `active`."""
    pinned_ca: bool


def enroll(
    server_url: str, token_text: str, state_dir: Path, name: str, labels: dict[str, str]
) -> DeviceIdentity:
    """Enroll this device and store its identity in `state_dir`."""
    return enroll_device(server_url, token_text, state_dir, name, labels).identity


def enroll_device(
    server_url: str, token_text: str, state_dir: Path, name: str, labels: dict[str, str]
) -> Enrolled:
    """Enroll this device, store its identity in `state_dir`, say what state it is in."""
    token = parse_token(token_text)
    server_url = check_server_url(server_url)
    if not NAME_RE.match(name):
        raise EnrollError(
            f"device name {name!r} must be lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    if (state_dir / DEVICE_FILE).exists():
        raise EnrollError(f"{state_dir} already holds an enrolled device; use another --state-dir")
    # The CA first: the enrollment itself (which spends the token) goes over a connection
    # verified against it.
    ca_pem = fetch_ca(server_url, token.ca_sha256) if token.ca_sha256 else None
    key = keys.generate_private_key()
    answer = enroll_request(
        server_url,
        {
            "token": token.raw,
            "name": name,
            "public_key_pem": keys.public_key_pem(key.public_key()).decode(),
            "labels": labels,
            "hardware": enrollment_hardware(),
        },
        ca_pem=ca_pem,
    )
    # The token names the root to trust; a root that merely arrives is not trusted.
    root = _checked_root(answer["root_json_b64"], token.root_sha256)
    identity = DeviceIdentity(
        device_id=answer["device_id"],
        server_url=server_url.rstrip("/"),
        root_sha256=token.root_sha256,
        name=name,
        labels=answer["labels"] or labels,
    )
    if ca_pem is not None:  # before device.json: present means enrolled, pin included
        atomic_write(state_dir / CA_FILE, ca_pem)
    save_identity(state_dir, identity, key, root)
    return Enrolled(identity, answer["state"], ca_pem is not None)


def fetch_ca(server_url: str, want_sha256: str, timeout_s: float = 30.0) -> bytes:
    """The server's CA certificate, fetched WITHOUT verification (there is nothing to verify
    against yet) and accepted only if it hashes to `want_sha256`, the token's value."""
    base = check_server_url(server_url)
    if not base.startswith("https://"):
        raise InsecureServer(
            "the enrollment token pins a TLS CA, so the server must be reached over https://"
        )
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    pool = Pool(base, ssl_context=unverified, timeout=Timeout(connect=5.0, read=timeout_s))
    try:
        resp = pool.request(
            "GET", urlsplit(base).path.rstrip("/") + API + "/tls/ca.pem", preload=False
        )
        data = b""
        for chunk in resp.stream(1 << 14):
            data += chunk
            if len(data) > MAX_CA_BYTES:
                resp.release_conn()
                break
    except HttpError as exc:
        raise LinkDown(f"cannot reach {server_url}: {exc}") from exc
    finally:
        pool.close()
    if resp.status != 200:
        raise ServerError(resp.status, f"GET /tls/ca.pem answered {resp.status}")
    if len(data) > MAX_CA_BYTES:
        raise PayloadError(f"the server's CA certificate is over {MAX_CA_BYTES} bytes")
    got = hashlib.sha256(data).hexdigest()
    if got != want_sha256:
        raise InsecureServer(
            f"the CA certificate the server sent hashes to {got}, not to {want_sha256} named "
            "by the token; refusing to trust this server"
        )
    return data


def _checked_root(root_b64: str, want_hex: str) -> bytes:
    try:
        root = base64.b64decode(root_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise EnrollError(f"the server's root_json_b64 is not base64: {exc}") from exc
    got = hashlib.sha256(root).hexdigest()
    if got != want_hex:
        raise EnrollError(
            f"the root the server sent hashes to {got}, not to {want_hex} named by the token; "
            "refusing to trust this server"
        )
    try:
        doc = json.loads(root)
        if doc["signed"]["_type"] != "root":
            raise ValueError("not root metadata")
    except (ValueError, KeyError, TypeError) as exc:
        raise EnrollError(f"the root the token names is not TUF root metadata: {exc}") from exc
    return root
