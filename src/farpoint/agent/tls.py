"""The agent's transport security: HTTPS verified against the CA its enrollment token
pinned (or the system's CAs when it pinned none); plain HTTP to loopback only."""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["CA_FILE", "InsecureServer", "check_server_url", "load_pinned_ca", "tls_context"]

CA_FILE = "tls-ca.pem"
"""In the state directory: the CA certificate the enrollment token pinned."""


class InsecureServer(ValueError):
    """A server URL the agent refuses to talk to (plain HTTP off loopback, odd schemes)."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(url: str) -> str:
    """The URL without a trailing slash, if the agent may use it: https://, or http:// to a
    loopback address (development only). InsecureServer otherwise."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise InsecureServer(
            f"server URL {url!r} must be https://host[:port] (or http:// on loopback)"
        )
    if parts.scheme == "http" and not _is_loopback(host):
        raise InsecureServer(
            f"refusing plain HTTP to {host}: it is not a loopback address; use https:// "
            "(plain HTTP is for development on 127.0.0.1 only)"
        )
    return url.strip().rstrip("/")


def tls_context(ca_pem: bytes | None) -> ssl.SSLContext | None:
    """Verification against the pinned CA only; None means the default (system CAs)."""
    if ca_pem is None:
        return None
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii", errors="replace"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def load_pinned_ca(state_dir: Path) -> bytes | None:
    """The CA certificate enrollment pinned, or None when the token pinned none."""
    try:
        return (state_dir / CA_FILE).read_bytes()
    except FileNotFoundError:
        return None
