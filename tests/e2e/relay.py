"""A byte-counting TCP relay between an agent and a server, for the end-to-end tests.

One request per connection (it asks the server to close after each answer), streamed,
each exchange recorded with its Range header, the answer's status and the body bytes
relayed. `down()` plays the loss of the server's host: every open connection is cut and
new ones are closed at once, until `up()`. (Stopping a server process alone does not cut
a download: its kernel still delivers the megabytes the process had already written.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass

__all__ = ["Exchange", "Relay"]

_BUFFER = 64 * 1024
_MAX_HEAD = 64 * 1024


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    range: str | None
    status: int
    body_bytes: int


def _read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(_BUFFER)
        if not chunk or len(data) > _MAX_HEAD:
            raise ConnectionError("no complete request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


class Relay:
    """127.0.0.1:<port> → 127.0.0.1:<upstream_port>."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._closed = False
        self._down = False
        self._open: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def exchanges(self, path_suffix: str = "") -> list[Exchange]:
        with self._lock:
            return [e for e in self._exchanges if e.path.endswith(path_suffix)]

    def down(self) -> None:
        """Cut every open connection; refuse new ones until `up()`."""
        with self._lock:
            self._down = True
            cut, self._open = list(self._open), set()
        for s in cut:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def up(self) -> None:
        with self._lock:
            self._down = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()

    def _track(self, s: socket.socket) -> bool:
        with self._lock:
            if self._down:
                return False
            self._open.add(s)
            return True

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        up: socket.socket | None = None
        try:
            if not self._track(conn):
                return
            conn.settimeout(120)
            head, rest = _read_head(conn)
            lines = head.decode("latin-1").split("\r\n")
            method, target, _version = lines[0].split(" ", 2)
            headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
            length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
            while len(rest) < length:
                chunk = conn.recv(_BUFFER)
                if not chunk:
                    return
                rest += chunk
            kept = [
                f"{k}:{v}"
                for k, v in headers
                if k.strip().lower() not in ("connection", "keep-alive")
            ]
            request = "\r\n".join([lines[0], *kept, "Connection: close", "", ""]).encode("latin-1")
            up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if not self._track(up):
                return
            up.settimeout(120)
            try:
                up.connect(("127.0.0.1", self.upstream_port))
            except OSError:
                return  # the server is down: the agent sees its connection closed
            up.sendall(request + rest)
            self._relay_answer(up, conn, method, target, headers)
        except OSError:
            pass
        finally:
            for s in (conn, up):
                if s is not None:
                    with self._lock:
                        self._open.discard(s)
                    with contextlib.suppress(OSError):
                        s.close()

    def _relay_answer(
        self,
        up: socket.socket,
        conn: socket.socket,
        method: str,
        target: str,
        headers: list[list[str]],
    ) -> None:
        status, body, pending = 0, 0, b""
        try:
            while True:
                data = up.recv(_BUFFER)
                if not data:
                    break
                if not status:
                    pending += data
                    if b"\r\n\r\n" not in pending:
                        continue
                    first, _, after = pending.partition(b"\r\n\r\n")
                    status = int(first.split(b" ", 2)[1])
                    conn.sendall(pending)
                    body += len(after)
                else:
                    conn.sendall(data)
                    body += len(data)
        finally:
            if status:
                rng = next((v.strip() for k, v in headers if k.strip().lower() == "range"), None)
                path = target.split("?", 1)[0]
                with self._lock:
                    self._exchanges.append(Exchange(method, path, rng, status, body))
