"""The agent's HTTP client (`agent/http.py`), every device request signed with the device key.

Plain HTTP is for loopback development only; anything else is HTTPS, verified against the
CA the enrollment token pinned (`tls-ca.pem` in the state directory) or, when the token
pinned none, against the system's CAs.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from farpoint.core import keys, light_key, request_signing

from .http import HttpError, Pool, Response, Timeout
from .payloads import (
    DesiredState,
    DeviceStatusReport,
    EnrollRequest,
    EnrollResponse,
    KeyRotated,
    KeyRotation,
    PayloadError,
    parse_desired_state,
    parse_enroll_response,
    parse_key_rotated,
)
from .tls import InsecureServer, check_server_url, load_pinned_ca, tls_context

__all__ = [
    "Decommissioned",
    "DeviceClient",
    "LinkDown",
    "ServerError",
    "enroll_request",
]

API = "/api/v1"
MAX_METADATA_BYTES = 1 << 20
MAX_ATTESTATION_BYTES = 4 << 20
_CHUNK = 1 << 16
KEY_FILE = "device-key.pem"  # = state.KEY_FILE; the client re-reads it when it changes


class LinkDown(Exception):
    """The server could not be reached (or answered 5xx): try again later."""


class ServerError(Exception):
    """The server answered with a 4xx problem."""

    def __init__(self, status: int, detail: str, problem: dict[str, Any] | None = None) -> None:
        super().__init__(f"server answered {status}: {detail}")
        self.status = status
        self.detail = detail
        self.problem: dict[str, Any] = problem or {}

    @property
    def device_state(self) -> str | None:
        """`pending`, `rejected` or `decommissioned` when the server refused the device."""
        state = self.problem.get("device_state")
        return state if isinstance(state, str) else None


class Decommissioned(ServerError):
    """IT operations decommissioned this device: the server refuses it from now on."""


def _problem(resp: Response) -> tuple[str, dict[str, Any]]:
    data = resp.data or b""
    try:
        doc = json.loads(data)
        if isinstance(doc, dict):
            for key in ("detail", "title"):
                value = doc.get(key)
                if isinstance(value, str):
                    return value, doc
    except ValueError:
        pass
    text = data[:200].decode(errors="replace").strip()
    return text or (resp.reason or "no detail"), {}


def _detail(resp: Response) -> str:
    return _problem(resp)[0]


def _check(resp: Response, *ok: int) -> None:
    if resp.status in ok:
        return
    detail, problem = _problem(resp)
    if resp.status >= 500:
        raise LinkDown(f"server answered {resp.status}: {detail}")
    if resp.status == 403 and problem.get("device_state") == "decommissioned":
        raise Decommissioned(resp.status, detail, problem)
    raise ServerError(resp.status, detail, problem)


def _pool(base_url: str, timeout_s: float, ca_pem: bytes | None = None) -> Pool:
    # retries are ours (backoff with jitter in the loop), but for one retry of a kept-alive
    # connection the server had closed
    return Pool(
        base_url, ssl_context=tls_context(ca_pem), timeout=Timeout(connect=5.0, read=timeout_s)
    )


def enroll_request(
    server_url: str, body: EnrollRequest, timeout_s: float = 30.0, ca_pem: bytes | None = None
) -> EnrollResponse:
    """POST the enrollment; the one request a device makes before it has an identity."""
    base = check_server_url(server_url)
    pool = _pool(base, timeout_s, ca_pem)
    try:
        resp = pool.request(
            "POST",
            urlsplit(base).path.rstrip("/") + API + "/devices/enroll",
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
    except HttpError as exc:
        raise LinkDown(f"cannot reach {server_url}: {exc}") from exc
    finally:
        pool.close()
    _check(resp, 200, 201)
    try:
        return parse_enroll_response(json.loads(resp.data))
    except ValueError as exc:
        raise PayloadError(f"enrollment response is not valid: {exc}") from exc


class DeviceClient:
    """Signed requests to the device endpoints of one server.

    With `state_dir`, connections are verified against the CA pinned there (if any), and
    the device key is re-read whenever its file changes (a key rotation by another
    process takes effect at the next request).
    """

    def __init__(
        self,
        server_url: str,
        device_id: str,
        key: light_key.SigningKey,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 30.0,
        *,
        state_dir: Path | None = None,
    ) -> None:
        self._base = check_server_url(server_url)
        self._prefix = urlsplit(self._base).path.rstrip("/")
        self._device_id = device_id
        self._key = key
        self._clock = clock
        self._timeout_s = timeout_s
        self._key_path = state_dir / KEY_FILE if state_dir is not None else None
        self._key_stamp = self._stamp()
        ca_pem = load_pinned_ca(state_dir) if state_dir is not None else None
        if ca_pem is not None and not self._base.startswith("https://"):
            raise InsecureServer(f"{state_dir} pins a TLS CA but the server URL is not https://")
        self._http = _pool(self._base, timeout_s, ca_pem)
        self.decommissioned: Decommissioned | None = None
        """Set once the server said this device is decommissioned: nothing is sent after."""

    @property
    def device_id(self) -> str:
        return self._device_id

    @property
    def key(self) -> light_key.SigningKey:
        """The key requests are signed with (re-read from `state_dir` when it changed)."""
        stamp = self._stamp()
        if stamp is not None and stamp != self._key_stamp and self._key_path is not None:
            try:
                self._key = light_key.load_signing_key(self._key_path.read_bytes())
                self._key_stamp = stamp
            except (OSError, ValueError):  # mid-replace: the old key serves this request
                pass
        return self._key

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._key_path is None:
            return None
        try:
            st = os.stat(self._key_path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _request(
        self,
        method: str,
        path_and_query: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        read_timeout_s: float | None = None,
        stream: bool = False,
        key: light_key.SigningKey | None = None,
    ) -> Response:
        if self.decommissioned is not None:
            raise self.decommissioned
        target = self._prefix + API + path_and_query
        signed = request_signing.sign_request(
            key or self.key, self._device_id, method, target, body, self._clock()
        )
        all_headers = {"Accept": "application/json", **signed, **(headers or {})}
        if body:
            all_headers["Content-Type"] = "application/json"
        timeout = Timeout(connect=5.0, read=read_timeout_s or self._timeout_s)
        try:
            return self._http.request(
                method,
                target,
                body=body or None,
                headers=all_headers,
                timeout=timeout,
                preload=not stream,
            )
        except HttpError as exc:
            raise LinkDown(f"{method} {path_and_query}: {exc}") from exc

    def close(self) -> None:
        """Close the kept-alive connections."""
        self._http.close()

    def _checked(self, resp: Response, *ok: int) -> None:
        try:
            _check(resp, *ok)
        except Decommissioned as exc:
            self.decommissioned = exc
            raise

    def desired_state(self, etag: str | None, wait_s: int) -> DesiredState | None:
        """The desired state, or None when it has not changed from `etag` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        resp = self._request(
            "GET",
            f"/devices/self/desired-state?wait={wait_s}",
            headers=headers,
            read_timeout_s=wait_s + self._timeout_s,
        )
        if resp.status == 304:
            return None
        self._checked(resp, 200)
        try:
            return parse_desired_state(json.loads(resp.data))
        except ValueError as exc:
            raise PayloadError(f"desired state is not valid: {exc}") from exc

    def get(
        self, path_and_query: str, headers: dict[str, str] | None = None, stream: bool = False
    ) -> Response:
        """A signed GET of `API + path_and_query`; the caller checks the status."""
        return self._request("GET", path_and_query, headers=headers, stream=stream)

    def api_path(self, url: str) -> str:
        """The part of an absolute URL under this server's API (what a request signs)."""
        base = self._base + API
        if not url.startswith(base + "/"):
            raise ValueError(f"{url} is not under {base}")
        return url[len(base) :]

    def get_bytes(self, path_and_query: str, max_bytes: int) -> bytes:
        """A signed GET whose 200 body must fit in `max_bytes`."""
        resp = self.get(path_and_query, stream=True)
        try:
            if resp.status != 200:
                resp.read()
                self._checked(resp, 200)
            data = bytearray()
            try:
                for chunk in resp.stream(_CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise PayloadError(f"{path_and_query} answered over {max_bytes} B")
            except HttpError as exc:
                raise LinkDown(f"GET {path_and_query} broke off: {exc}") from exc
        finally:
            resp.release_conn()
        return bytes(data)

    def director_metadata(self) -> bytes:
        """This device's director targets metadata, unverified (director.py verifies it)."""
        return self.get_bytes("/tuf/director/targets.json", MAX_METADATA_BYTES)

    def attestations(self, release_id: int) -> list[Any]:
        """The DSSE envelopes the server holds for a release; unverified."""
        data = self.get_bytes(
            f"/devices/self/releases/{release_id}/attestations", MAX_ATTESTATION_BYTES
        )
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise PayloadError(f"attestations of release {release_id} are not JSON") from exc
        items = doc.get("attestations") if isinstance(doc, dict) else None
        if not isinstance(items, list):
            raise PayloadError(f"attestations of release {release_id}: expected a list")
        return items

    def report_status(self, report: DeviceStatusReport) -> None:
        body = json.dumps(report, separators=(",", ":")).encode()
        resp = self._request("POST", "/devices/self/status", body=body)
        self._checked(resp, 200, 204)

    def rotate_key(self, body: KeyRotation, signing_key: keys.PrivateKey) -> KeyRotated:
        """POST /devices/self/key signed with `signing_key` (the current key, or the new one
        when retrying a rotation whose answer was lost)."""
        data = json.dumps(body, separators=(",", ":")).encode()
        resp = self._request("POST", "/devices/self/key", body=data, key=signing_key)
        self._checked(resp, 200)
        try:
            return parse_key_rotated(json.loads(resp.data))
        except ValueError as exc:
            raise PayloadError(f"key rotation answer is not valid: {exc}") from exc

    def upload_diagnostics(self, diagnostics_id: int, body: bytes) -> None:
        """POST the answer to a diagnostics request (the caller keeps `body` bounded)."""
        resp = self._request("POST", f"/devices/self/diagnostics/{diagnostics_id}", body=body)
        self._checked(resp, 200, 204)
