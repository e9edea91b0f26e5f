"""The agent's HTTP client: urllib3, every device request signed with the device key."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import urllib3

from farpoint.core import keys, request_signing

from .payloads import (
    DesiredState,
    DeviceStatusReport,
    EnrollRequest,
    EnrollResponse,
    PayloadError,
    parse_desired_state,
    parse_enroll_response,
)

__all__ = ["DeviceClient", "LinkDown", "ServerError", "enroll_request"]

API = "/api/v1"
MAX_METADATA_BYTES = 1 << 20
MAX_ATTESTATION_BYTES = 4 << 20
_CHUNK = 1 << 16


class LinkDown(Exception):
    """The server could not be reached (or answered 5xx): try again later."""


class ServerError(Exception):
    """The server answered with a 4xx problem."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"server answered {status}: {detail}")
        self.status = status
        self.detail = detail


def _detail(resp: urllib3.BaseHTTPResponse) -> str:
    data = resp.data or b""
    try:
        doc = json.loads(data)
        if isinstance(doc, dict):
            for key in ("detail", "title"):
                value = doc.get(key)
                if isinstance(value, str):
                    return value
    except ValueError:
        pass
    text = data[:200].decode(errors="replace").strip()
    return text or (resp.reason or "no detail")


def _check(resp: urllib3.BaseHTTPResponse, *ok: int) -> None:
    if resp.status in ok:
        return
    if resp.status >= 500:
        raise LinkDown(f"server answered {resp.status}: {_detail(resp)}")
    raise ServerError(resp.status, _detail(resp))


def _pool(timeout_s: float) -> urllib3.PoolManager:
    # retries are ours (backoff with jitter in the loop), not urllib3's
    return urllib3.PoolManager(
        num_pools=2,
        maxsize=4,
        retries=False,
        timeout=urllib3.Timeout(connect=5.0, read=timeout_s),
    )


def enroll_request(server_url: str, body: EnrollRequest, timeout_s: float = 30.0) -> EnrollResponse:
    """POST the enrollment; the one request a device makes before it has an identity."""
    url = server_url.rstrip("/") + API + "/devices/enroll"
    try:
        resp = _pool(timeout_s).request(
            "POST",
            url,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
    except urllib3.exceptions.HTTPError as exc:
        raise LinkDown(f"cannot reach {server_url}: {exc}") from exc
    _check(resp, 200, 201)
    try:
        return parse_enroll_response(json.loads(resp.data))
    except ValueError as exc:
        raise PayloadError(f"enrollment response is not valid: {exc}") from exc


class DeviceClient:
    """Signed requests to the device endpoints of one server."""

    def __init__(
        self,
        server_url: str,
        device_id: str,
        key: keys.PrivateKey,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 30.0,
    ) -> None:
        self._base = server_url.rstrip("/")
        self._prefix = urlsplit(self._base).path.rstrip("/")
        self._device_id = device_id
        self._key = key
        self._clock = clock
        self._timeout_s = timeout_s
        self._http = _pool(timeout_s)

    def _request(
        self,
        method: str,
        path_and_query: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        read_timeout_s: float | None = None,
        stream: bool = False,
    ) -> urllib3.BaseHTTPResponse:
        target = self._prefix + API + path_and_query
        signed = request_signing.sign_request(
            self._key, self._device_id, method, target, body, self._clock()
        )
        all_headers = {"Accept": "application/json", **signed, **(headers or {})}
        if body:
            all_headers["Content-Type"] = "application/json"
        timeout = urllib3.Timeout(connect=5.0, read=read_timeout_s or self._timeout_s)
        try:
            return self._http.request(
                method,
                self._base + API + path_and_query,
                body=body or None,
                headers=all_headers,
                timeout=timeout,
                preload_content=not stream,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise LinkDown(f"{method} {path_and_query}: {exc}") from exc

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
        _check(resp, 200)
        try:
            return parse_desired_state(json.loads(resp.data))
        except ValueError as exc:
            raise PayloadError(f"desired state is not valid: {exc}") from exc

    def get(
        self, path_and_query: str, headers: dict[str, str] | None = None, stream: bool = False
    ) -> urllib3.BaseHTTPResponse:
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
                _check(resp, 200)
            data = bytearray()
            try:
                for chunk in resp.stream(_CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise PayloadError(f"{path_and_query} answered over {max_bytes} B")
            except urllib3.exceptions.HTTPError as exc:
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
        _check(resp, 200, 204)
