"""The local inference API that applications on the device call (stdlib HTTP server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from farpoint.core.errors import BadRequest, FarpointError, NotFound, PayloadTooLarge

from .registry import Registry
from .runtime import InputError, rows_from_body
from .telemetry import InferenceStats

__all__ = ["MAX_BODY_BYTES", "LocalApi", "openapi_document"]

MAX_BODY_BYTES = 1 << 20
_DRAIN_BYTES = 16 << 20
_PREFIX = "/v1/models/"
_PREDICT = ":predict"


class _LengthRequired(FarpointError):
    status = 411
    code = "length-required"
    title = "Length required"


class _MethodNotAllowed(FarpointError):
    status = 405
    code = "method-not-allowed"
    title = "Method not allowed"


def openapi_document() -> dict[str, Any]:
    """A small hand-written OpenAPI 3.1 description of the local API."""
    problem = {"description": "problem details", "content": {"application/problem+json": {}}}
    model_name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    predict_body = {
        "type": "object",
        "description": "Either rows (one object per row) or columns (one list per input).",
        "properties": {
            "rows": {"type": "array", "maxItems": 10000, "items": {"type": "object"}},
            "columns": {"type": "object", "additionalProperties": {"type": "array"}},
        },
    }
    prediction = {
        "type": "object",
        "properties": {
            "label": {},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    }
    predict_answer = {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "release_id": {"type": "integer"},
            "model_ref": {"type": "string"},
            "predictions": {"type": "array", "items": prediction},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Farpoint agent local inference API", "version": "1"},
        "paths": {
            "/v1/health": {
                "get": {
                    "summary": "Agent health and served models",
                    "responses": {"200": {"description": "status ok or degraded"}},
                }
            },
            "/v1/models": {
                "get": {
                    "summary": "Models served on this device",
                    "responses": {"200": {"description": "list of models"}},
                }
            },
            "/v1/models/{name}": {
                "get": {
                    "summary": "A served model: release, inputs, outputs, classes",
                    "parameters": [model_name],
                    "responses": {"200": {"description": "model"}, "404": problem},
                }
            },
            "/v1/models/{name}:predict": {
                "post": {
                    "summary": "Predict with the active release of a model",
                    "parameters": [model_name],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": predict_body}},
                    },
                    "responses": {
                        "200": {
                            "description": "predictions",
                            "content": {"application/json": {"schema": predict_answer}},
                        },
                        "400": problem,
                        "404": problem,
                        "413": problem,
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle and the
    # peer's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the device's log is for the agent's own events, not every request

    def _send(self, status: int, doc: Any, content_type: str = "application/json") -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _problem(self, err: FarpointError) -> None:
        doc = err.problem()
        doc["instance"] = self.path
        if err.status >= 400 and self.command == "POST":
            # whatever of the body we did not read would be taken for the next request
            self.close_connection = True
        self._send(err.status, doc, "application/problem+json")

    def do_GET(self) -> None:
        path = unquote(urlsplit(self.path).path)
        registry = self.server.registry
        try:
            if path == "/v1/health":
                statuses = registry.statuses()
                self._send(
                    200,
                    {
                        "status": "ok" if registry.healthy() else "degraded",
                        "models": statuses,
                    },
                )
            elif path == "/v1/models":
                self._send(200, {"items": [a.describe() for a in registry.active()]})
            elif path == "/v1/openapi.json":
                self._send(200, openapi_document())
            elif path.startswith(_PREFIX) and not path.endswith(_PREDICT):
                name = path[len(_PREFIX) :]
                active = registry.get(name)
                if active is None:
                    raise NotFound(f"no model named {name!r} is served on this device")
                self._send(200, active.describe())
            elif path.endswith(_PREDICT):
                raise _MethodNotAllowed("predict takes POST")
            else:
                raise NotFound(f"no route {path}")
        except FarpointError as err:
            self._problem(err)

    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if not (path.startswith(_PREFIX) and path.endswith(_PREDICT)):
            self._problem(NotFound(f"no route {path}"))
            return
        name = path[len(_PREFIX) : -len(_PREDICT)]
        try:
            self._predict(name)
        except FarpointError as err:
            if err.status == 400:
                self.server.stats.record(name, 0, None, error=True)
            self._problem(err)

    def _discard(self, length: int) -> None:
        """Read and drop a refused body (up to a bound), so the client sees our answer
        instead of a broken pipe; past the bound the connection is closed unread."""
        left = min(length, _DRAIN_BYTES)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)

    def _read_body(self) -> Any:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise _LengthRequired("send the request body with a Content-Length header")
        try:
            length = int(length_text)
        except ValueError as exc:
            raise BadRequest("Content-Length is not a number") from exc
        if length > MAX_BODY_BYTES:
            self._discard(length)
            raise PayloadTooLarge(
                f"body of {length} B is over the limit of {MAX_BODY_BYTES} B; "
                "send fewer rows per request"
            )
        data = self.rfile.read(length)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from exc

    def _predict(self, name: str) -> None:
        active = self.server.registry.get(name)
        if active is None:
            raise NotFound(f"no model named {name!r} is served on this device")
        body = self._read_body()
        try:
            rows = rows_from_body(body)
            started = time.perf_counter()
            predictions = active.model.predict(rows)
            elapsed = time.perf_counter() - started
        except InputError as exc:
            extra: dict[str, Any] = {}
            if exc.row is not None:
                extra["row"] = exc.row
            if exc.field is not None:
                extra["field"] = exc.field
            raise BadRequest(exc.detail, **extra) from exc
        except OverflowError as exc:
            raise PayloadTooLarge(str(exc)) from exc
        self.server.stats.record(name, len(rows), elapsed, error=False)
        self._send(
            200,
            {
                "model": name,
                "release_id": active.current.release_id,
                "model_ref": active.model.manifest["model_ref"],
                "predictions": predictions,
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: Registry
    stats: InferenceStats


class LocalApi:
    """The HTTP server in a thread of its own."""

    def __init__(self, registry: Registry, stats: InferenceStats, host: str, port: int) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.registry = registry
        self._server.stats = stats
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="farpoint-agent-api", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
