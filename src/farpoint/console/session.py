"""Who is signed in, and how the console reaches the API on their behalf.

The token lives in NiceGUI's per-browser `app.storage.user` (server side, keyed by a
signed session cookie). Every SDK call runs in a worker thread: the console is served
by the same event loop as the API it calls, so a blocking call on the loop would wait
for an answer that loop can never produce.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from nicegui import app, run, ui
from starlette.requests import Request

from farpoint.core.errors import FarpointError, Unauthorized
from farpoint.sdk import Client
from farpoint.wire.identity import Me

__all__ = ["Api", "clear_token", "prepare_storage", "server_url", "store_token", "stored_token"]

T = TypeVar("T")
log = logging.getLogger("farpoint.console")

_TOKEN_KEY = "farpoint_token"
SECRET_ENV = "FARPOINT_CONSOLE_SECRET"


def prepare_storage() -> str:
    """The session secret, with NiceGUI's user storage put where it belongs.

    Without FARPOINT_CONSOLE_SECRET the secret is random, so sessions end with the
    process: their storage goes to a private temporary directory. With it, sessions
    survive restarts and are kept under FARPOINT_HOME.
    """
    from nicegui.storage import Storage

    configured = os.environ.get(SECRET_ENV)
    if configured:
        home = Path(os.environ.get("FARPOINT_HOME") or ".farpoint").resolve()
        path = home / "console-sessions"
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        Storage.path = path
        return configured
    path = Path(tempfile.mkdtemp(prefix="farpoint-console-"))
    Storage.path = path
    app.on_shutdown(lambda: shutil.rmtree(path, ignore_errors=True))
    return secrets.token_urlsafe(32)


def stored_token() -> str | None:
    token = app.storage.user.get(_TOKEN_KEY)
    return token if isinstance(token, str) and token else None


def store_token(token: str) -> None:
    app.storage.user[_TOKEN_KEY] = token


def clear_token() -> None:
    app.storage.user.pop(_TOKEN_KEY, None)


def server_url(request: Request) -> str:
    """The API's own address, as seen from this process.

    The local socket address of the browser's connection is used rather than the Host
    header, which the browser controls: the console must never send a user's token to
    a host a request names.
    """
    server = request.scope.get("server")
    if server and server[0]:
        host, port = server[0], server[1]
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if request.url.scheme in ("https", "wss") else "http"
        return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    base = str(request.base_url).rstrip("/")
    mount = request.scope.get("root_path", "")
    return base[: -len(mount)] if mount and base.endswith(mount) else base


def _self_transport(base_url: str) -> httpx.HTTPTransport | None:
    """Over HTTPS the console calls its own server at the socket address, which the
    certificate may not name: it pins the server's own certificate (FARPOINT_TLS_CERT, set
    by `farpoint server`) instead of checking a host name."""
    cert = os.environ.get("FARPOINT_TLS_CERT")
    if not cert or not base_url.startswith("https://"):
        return None
    context = ssl.create_default_context(cafile=cert)
    context.check_hostname = False  # the exact certificate is pinned instead
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return httpx.HTTPTransport(verify=context)


class Api:
    """The SDK for one browser tab, with errors turned into notifications."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token
        self._sdk: Client | None = None
        self._failing = False

    def _client(self) -> Client:
        if self._sdk is None:
            self._sdk = Client(
                self.base_url, self.token, timeout=20.0, transport=_self_transport(self.base_url)
            )
        return self._sdk

    def close(self) -> None:
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    async def me(self) -> Me:
        """The token's user and roles; raises what the SDK raises (used at sign-in)."""
        result = await run.io_bound(lambda: self._client().me())
        if result is None:
            raise FarpointError("the console is shutting down")
        return result

    async def call(self, fn: Callable[[Client], T]) -> T | None:
        """`fn(client)` in a worker thread; None (and a notification) when it fails.

        A run of failures is announced once, so a page that refreshes every few seconds
        does not pile up the same message.
        """
        try:
            result = await run.io_bound(fn, self._client())
        except Unauthorized as exc:
            clear_token()
            ui.notify(f"Signed out: {exc.detail}", type="warning")
            ui.navigate.to("/login")
            return None
        except FarpointError as exc:
            self._announce(f"{exc.title}: {exc.detail}")
            return None
        except Exception as exc:
            log.exception("console call failed")
            self._announce(f"Unexpected error: {type(exc).__name__}: {exc}")
            return None
        self._failing = False
        return result

    def _announce(self, message: str) -> None:
        if not self._failing:
            ui.notify(message, type="negative", multi_line=True, timeout=10_000, close_button=True)
        self._failing = True
