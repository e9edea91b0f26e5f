"""The TLS certificate files of `farpoint server`, checked before anything listens.

Devices pin the CA certificate named by their enrollment token: they fetch
`GET /api/v1/tls/ca.pem` once without verification, accept it only when its sha256 equals
the token's, and verify every later connection against it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature

from farpoint.server.settings import Settings

__all__ = ["MAX_CA_BYTES", "TlsConfigError", "TlsFiles", "ca_digest", "load_ca", "tls_files"]

MAX_CA_BYTES = 64 * 1024


class TlsConfigError(ValueError):
    """The TLS settings name files that are missing, unreadable or not what they claim."""


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


def _read(path: Path, what: str, limit: int = MAX_CA_BYTES) -> bytes:
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as exc:
        raise TlsConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise TlsConfigError(f"{what} {path} is over {limit} bytes; is it a certificate?")
    return data


def load_ca(path: Path) -> bytes:
    """The CA certificate's PEM bytes, exactly as served and hashed; refuse anything else."""
    from cryptography import x509

    data = _read(path, "FARPOINT_TLS_CA")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise TlsConfigError(f"FARPOINT_TLS_CA {path} is not a PEM certificate: {exc}") from exc
    if not certs:
        raise TlsConfigError(f"FARPOINT_TLS_CA {path} holds no certificate")
    return data


def ca_digest(settings: Settings) -> str | None:
    """`sha256:<hex>` of the configured CA certificate's bytes, or None without one."""
    if settings.tls_ca is None:
        return None
    return "sha256:" + hashlib.sha256(load_ca(settings.tls_ca)).hexdigest()


def tls_files(settings: Settings) -> TlsFiles | None:
    """The certificate and key to serve HTTPS with, checked; None when TLS is off."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        if settings.tls_ca is not None:
            raise TlsConfigError(
                "FARPOINT_TLS_CA is set without a certificate to serve: set "
                "FARPOINT_TLS_CERT and FARPOINT_TLS_KEY (or --tls-cert/--tls-key) too"
            )
        return None
    if cert is None or key is None:
        missing = "FARPOINT_TLS_KEY (--tls-key)" if key is None else "FARPOINT_TLS_CERT"
        raise TlsConfigError(f"HTTPS needs both a certificate and its key; {missing} is missing")
    import ssl

    _read(cert, "the TLS certificate", 1 << 20)
    _read(key, "the TLS key", 1 << 20)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"the TLS certificate {cert} and key {key} do not load together: {exc}"
        ) from exc
    if settings.tls_ca is not None:
        _check_issued_by(cert, settings.tls_ca)
    return TlsFiles(cert=cert, key=key)


def _check_issued_by(cert_path: Path, ca_path: Path) -> None:
    """The served chain must lead to the CA devices pin, or every device would refuse it."""
    from cryptography import x509

    ca = x509.load_pem_x509_certificates(load_ca(ca_path))
    chain = x509.load_pem_x509_certificates(_read(cert_path, "the TLS certificate", 1 << 20))
    for cert in chain:
        for issuer in ca:
            if cert == issuer:
                return
            try:
                cert.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return
    raise TlsConfigError(
        f"the TLS certificate {cert_path} was not issued by the CA in FARPOINT_TLS_CA "
        f"{ca_path}; devices pinning that CA would refuse this server"
    )
