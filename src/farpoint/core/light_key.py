"""ECDSA P-256 request signing through the libcrypto the interpreter already loaded.

An agent signs every request with its device key and does nothing else with keys while it
serves. Not loading the `cryptography` extension for that took the idle agent from
79.3 to 68.7 MB resident (`benchmarks/agent_footprint.py`, docs/benchmarks.md), while
OpenSSL's libcrypto is
in the process anyway: the `ssl` module the agent's HTTPS needs links it. So the serving
agent signs through that libcrypto with ctypes: the same OpenSSL implementation
`cryptography` itself calls, the same DER signatures, nothing more loaded. Everything
else about keys (generating, rotating, verifying) stays in `keys.py`.

Where that libcrypto cannot be found or lacks a function (another TLS library, an
unusual build), `load_signing_key` says why in the log and returns a `cryptography` key.
"""

from __future__ import annotations

import ctypes
import logging
import ssl  # noqa: F401  (links libcrypto into the process: what this module signs with)
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from farpoint.core.keys import PrivateKey, PublicKey

__all__ = ["LightPrivateKey", "load_signing_key"]

log = logging.getLogger("farpoint.keys")
_EVP_PKEY_EC = 408  # NID_X9_62_id_ecPublicKey
_P256 = b"prime256v1"


def _loaded_libcrypto() -> str | None:
    """The path of the libcrypto mapped into this process (by `ssl`), if any."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                path = fields[5].strip() if len(fields) == 6 else ""
                name = path.rsplit("/", 1)[-1]
                if name.startswith("libcrypto") and ".so" in name:
                    return path
    except OSError:
        return None
    return None


class _Libcrypto:
    """The few libcrypto (OpenSSL 3) functions signing needs, typed for ctypes."""

    def __init__(self, path: str) -> None:
        lib = ctypes.CDLL(path)  # already mapped: dlopen hands back the same library
        p, i, sz = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        self.lib = lib
        for name, restype, argtypes in (
            ("BIO_new_mem_buf", p, [ctypes.c_char_p, i]),
            ("BIO_free", i, [p]),
            ("PEM_read_bio_PrivateKey", p, [p, p, p, p]),
            ("EVP_PKEY_free", None, [p]),
            ("EVP_PKEY_get_base_id", i, [p]),
            ("EVP_PKEY_get_group_name", i, [p, ctypes.c_char_p, sz, ctypes.POINTER(sz)]),
            ("EVP_MD_CTX_new", p, []),
            ("EVP_MD_CTX_free", None, [p]),
            ("EVP_sha256", p, []),
            ("EVP_DigestSignInit", i, [p, p, p, p, p]),
            ("EVP_DigestSign", i, [p, p, ctypes.POINTER(sz), ctypes.c_char_p, sz]),
        ):
            fn = getattr(lib, name)  # AttributeError: not an OpenSSL 3 libcrypto
            fn.restype = restype
            fn.argtypes = argtypes


_NO_PASSPHRASE = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_void_p
)(lambda _buf, _size, _rw, _u: 0)
"""Answers OpenSSL's passphrase prompt with none: an encrypted key fails, never asks."""

_LIB: _Libcrypto | None = None


def _libcrypto() -> _Libcrypto:
    global _LIB
    if _LIB is None:
        path = _loaded_libcrypto()
        if path is None:
            raise OSError("no libcrypto is mapped into this process")
        _LIB = _Libcrypto(path)
    return _LIB


class LightPrivateKey:
    """A P-256 private key held by libcrypto; it only signs."""

    def __init__(self, pem: bytes) -> None:
        self._c = _libcrypto()
        self._pem = pem
        lib = self._c.lib
        bio = lib.BIO_new_mem_buf(pem, len(pem))
        if not bio:
            raise MemoryError("BIO_new_mem_buf failed")
        try:
            self._pkey = lib.PEM_read_bio_PrivateKey(
                bio, None, ctypes.cast(_NO_PASSPHRASE, ctypes.c_void_p), None
            )
        finally:
            lib.BIO_free(bio)
        if not self._pkey:
            raise ValueError("not an unencrypted PEM private key")
        group = ctypes.create_string_buffer(32)
        used = ctypes.c_size_t(0)
        if lib.EVP_PKEY_get_base_id(self._pkey) != _EVP_PKEY_EC or (
            lib.EVP_PKEY_get_group_name(self._pkey, group, len(group), ctypes.byref(used)) != 1
            or group.value != _P256
        ):
            lib.EVP_PKEY_free(self._pkey)
            self._pkey = None
            raise ValueError("expected an ECDSA P-256 private key")

    def sign_der(self, data: bytes) -> bytes:
        """A DER-encoded ECDSA signature over SHA-256 of `data` (as `keys.sign` makes)."""
        lib = self._c.lib
        ctx = lib.EVP_MD_CTX_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new failed")
        try:
            if lib.EVP_DigestSignInit(ctx, None, lib.EVP_sha256(), None, self._pkey) != 1:
                raise RuntimeError("EVP_DigestSignInit failed")
            size = ctypes.c_size_t(0)
            if lib.EVP_DigestSign(ctx, None, ctypes.byref(size), data, len(data)) != 1:
                raise RuntimeError("EVP_DigestSign (size) failed")
            out = ctypes.create_string_buffer(size.value)
            if lib.EVP_DigestSign(ctx, out, ctypes.byref(size), data, len(data)) != 1:
                raise RuntimeError("EVP_DigestSign failed")
            return out.raw[: size.value]
        finally:
            lib.EVP_MD_CTX_free(ctx)

    def public_key(self) -> PublicKey:
        """The public half, through `cryptography` (imported now: only rotation asks)."""
        from farpoint.core import keys

        return keys.load_private_key(self._pem).public_key()

    def __del__(self) -> None:
        pkey = getattr(self, "_pkey", None)
        if pkey:
            self._c.lib.EVP_PKEY_free(pkey)
            self._pkey = None


SigningKey: TypeAlias = "PrivateKey | LightPrivateKey"
"""What signs device requests: a `cryptography` key or a `LightPrivateKey`."""

_warned: set[str] = set()


def load_signing_key(pem: bytes) -> SigningKey:
    """A key that signs requests: light when the process's libcrypto can, else (said once
    in the log, with the reason) a `cryptography` key. A PEM that is no P-256 private key
    raises ValueError either way."""
    try:
        return LightPrivateKey(pem)
    except (OSError, AttributeError) as exc:
        reason = str(exc) or type(exc).__name__
        if reason not in _warned:
            _warned.add(reason)
            log.info("signing requests with the cryptography package: %s", reason)
    from farpoint.core import keys

    return keys.load_private_key(pem)
