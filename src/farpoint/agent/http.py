"""A small keep-alive HTTP/1.1 client on the standard library's `http.client`.

The agent's own transport: the idle agent pays for `http.client`, `ssl` and this module,
not for a third-party HTTP stack (urllib3 costs about 6 MB of resident memory more, a
third of the agent's budget over a bare ONNX Runtime process). What the agent needs and
no more: connection reuse per thread, separate connect and read timeouts, streamed
bodies, TLS with a given context, TCP_NODELAY, and one retry when a kept-alive
connection turns out to have been closed by the server.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["HttpError", "Pool", "Response", "Timeout"]


class HttpError(Exception):
    """The request could not be made or its answer not read (connection, timeout, protocol)."""


@dataclass(frozen=True)
class Timeout:
    connect: float = 5.0
    read: float = 30.0


class Response:
    """An answer whose body is read whole (`data`) or streamed (`stream`), then released."""

    def __init__(self, pool: Pool, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse):
        self._pool = pool
        self._conn: http.client.HTTPConnection | None = conn
        self._raw = raw
        self.status = raw.status
        self.reason = raw.reason
        self.headers = raw.headers
        self._data: bytes | None = None

    @property
    def data(self) -> bytes:
        """The whole body (read on first use)."""
        return self.read()

    def read(self) -> bytes:
        """The whole body; read once, then the same bytes again."""
        if self._data is not None:
            return self._data
        try:
            self._data = self._raw.read()
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise HttpError(f"reading the answer failed: {exc}") from exc
        self.release_conn()
        return self._data

    def stream(self, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """The body in chunks of at most `chunk_size` bytes; HttpError if it breaks off."""
        try:
            while chunk := self._raw.read(chunk_size):
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise HttpError(f"the answer broke off: {exc}") from exc
        self.release_conn()

    def release_conn(self) -> None:
        """Give the connection back for reuse if the body was read to its end, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._raw.isclosed() and not self._raw.will_close:
            self._pool._give_back(conn)
        else:
            self._raw.close()
            conn.close()

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


class Pool:
    """Connections to one origin, kept alive and reused one per thread at a time."""

    def __init__(
        self,
        base_url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        timeout: Timeout = Timeout(),
        max_idle: int = 4,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl_context
        if self.scheme == "https" and self._ssl is None:
            self._ssl = ssl.create_default_context()
        self.timeout = timeout
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connect(self, timeout: Timeout) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self.scheme == "https":
            conn = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout.connect, context=self._ssl
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout.connect)
        conn.connect()
        assert conn.sock is not None
        # headers and body go out in separate writes: without TCP_NODELAY Nagle and the
        # peer's delayed ACK stall small requests by ~40 ms
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _take(self) -> http.client.HTTPConnection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: Timeout | None = None,
        preload: bool = True,
    ) -> Response:
        """Send one request; with `preload` the body is read before returning."""
        timeout = timeout or self.timeout
        conn = self._take()
        reused = conn is not None
        for attempt in (1, 2):
            try:
                if conn is None:
                    conn = self._connect(timeout)
                if conn.sock is not None:
                    conn.sock.settimeout(timeout.read)
                conn.request(method, path, body=body, headers=dict(headers or {}))
                raw = conn.getresponse()
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
            ) as exc:
                if conn is not None:
                    conn.close()
                conn = None
                if reused and attempt == 1:
                    reused = False  # the server closed a kept-alive connection: once more
                    continue
                raise HttpError(f"{method} {path}: {exc}") from exc
            except (OSError, http.client.HTTPException) as exc:
                if conn is not None:
                    conn.close()
                raise HttpError(f"{method} {path}: {exc}") from exc
            response = Response(self, conn, raw)
            if preload:
                response.data  # noqa: B018  (reads the body and frees the connection)
            return response
        raise AssertionError("unreachable")
