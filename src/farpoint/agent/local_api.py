"""The local inference API that applications on the device call (stdlib HTTP server)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from farpoint.core.errors import (
    BadRequest,
    Conflict,
    FarpointError,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)

from .feedback import (
    MAX_FEEDBACK_BYTES,
    FeedbackError,
    RecentPredictions,
    check_label,
    label_text,
    new_ids,
    parse_feedback,
)
from .registry import Registry
from .runtime import InputError, rows_from_body
from .telemetry import FeedbackRefused, InferenceStats

__all__ = ["MAX_BODY_BYTES", "LocalApi", "openapi_document"]

MAX_BODY_BYTES = 1 << 20
_DRAIN_BYTES = 16 << 20
_PREFIX = "/v1/models/"
_PREDICT = ":predict"
_FEEDBACK = "/v1/feedback"


class _LengthRequired(FarpointError):
    status = 411
    code = "length-required"
    title = "Length required"


class _MethodNotAllowed(FarpointError):
    status = 405
    code = "method-not-allowed"
    title = "Method not allowed"


class _TooManyRequests(FarpointError):
    status = 429
    code = "too-many-requests"
    title = "Too many requests"


class _InferenceFailed(FarpointError):
    status = 500
    code = "inference-failed"
    title = "Inference failed"


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
            "id": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{16}$",
                "description": "Name it in POST /v1/feedback with the true label.",
            },
            "label": {},
            "probabilities": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    }
    feedback_body = {
        "type": "object",
        "required": ["prediction_id", "label"],
        "additionalProperties": False,
        "properties": {
            "prediction_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16}$"},
            "label": {
                "type": ["integer", "string"],
                "description": "The true label: one of the model's classes.",
            },
            "attributes": {
                "type": "object",
                "maxProperties": 8,
                "description": "Protected attributes the application knows (the model never "
                "sees them), as groups: name (1-32 characters) to a value of 1-32 "
                "characters or an integer. Counted per group, never stored per prediction.",
                "additionalProperties": {
                    "type": ["string", "integer"],
                    "maxLength": 32,
                },
            },
        },
    }
    feedback_answer = {
        "type": "object",
        "properties": {
            "prediction_id": {"type": "string"},
            "model": {"type": "string"},
            "release_id": {"type": ["integer", "null"]},
            "label": {"type": "string"},
            "predicted": {"type": "string"},
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
                        "500": problem,
                    },
                }
            },
            "/v1/feedback": {
                "post": {
                    "summary": "The true label of a prediction, for monitoring (counts only)",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": feedback_body}},
                    },
                    "responses": {
                        "200": {
                            "description": "counted",
                            "content": {"application/json": {"schema": feedback_answer}},
                        },
                        "400": problem,
                        "404": {
                            "description": "the prediction id is unknown or expired",
                            "content": {"application/problem+json": {}},
                        },
                        "409": {
                            "description": "this prediction already has its feedback",
                            "content": {"application/problem+json": {}},
                        },
                        "413": problem,
                        "422": problem,
                        "429": problem,
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
            elif path == _FEEDBACK:
                raise _MethodNotAllowed("feedback takes POST")
            else:
                raise NotFound(f"no route {path}")
        except FarpointError as err:
            self._problem(err)

    def do_POST(self) -> None:
        path = unquote(urlsplit(self.path).path)
        if path == _FEEDBACK:
            try:
                self._feedback()
            except FarpointError as err:
                self._problem(err)
            return
        if not (path.startswith(_PREFIX) and path.endswith(_PREDICT)):
            self._problem(NotFound(f"no route {path}"))
            return
        name = path[len(_PREFIX) : -len(_PREDICT)]
        try:
            self._predict(name)
        except FarpointError as err:
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

    def _read_body(self, limit: int = MAX_BODY_BYTES, hint: str = "send fewer rows") -> Any:
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            raise _LengthRequired("send the request body with a Content-Length header")
        try:
            length = int(length_text)
        except ValueError as exc:
            raise BadRequest("Content-Length is not a number") from exc
        if length > limit:
            self._discard(length)
            raise PayloadTooLarge(f"body of {length} B is over the limit of {limit} B; {hint}")
        data = self.rfile.read(length)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BadRequest(f"body is not JSON: {exc}") from exc

    def _predict(self, name: str) -> None:
        server = self.server
        active = server.registry.get(name)
        if active is None:
            raise NotFound(f"no model named {name!r} is served on this device")
        release_id = active.current.release_id
        stats = server.stats
        try:
            rows = rows_from_body(self._read_body())
            started = time.perf_counter()
            try:
                predictions = active.model.predict(rows)
            except (InputError, OverflowError):
                raise
            except Exception as exc:  # the model or ONNX Runtime failed: ours, not the caller's
                stats.record_failure(name, release_id)
                raise _InferenceFailed(
                    f"release {release_id} of model {name!r} failed to predict: "
                    f"{type(exc).__name__}: {str(exc)[:500]}"
                ) from exc
            elapsed = time.perf_counter() - started
        except InputError as exc:
            stats.record_input_error(name, release_id)
            extra: dict[str, Any] = {}
            if exc.row is not None:
                extra["row"] = exc.row
            if exc.field is not None:
                extra["field"] = exc.field
            raise BadRequest(exc.detail, **extra) from exc
        except OverflowError as exc:
            stats.record_input_error(name, release_id)
            raise PayloadTooLarge(str(exc)) from exc
        except _InferenceFailed:
            raise
        except FarpointError:  # the body: missing length, too large, not JSON
            stats.record_input_error(name, release_id)
            raise
        ids = new_ids(len(predictions))
        labels = [label_text(p["label"]) for p in predictions]
        for pid, p in zip(ids, predictions, strict=True):
            p["id"] = pid
        server.predictions.remember(ids, name, release_id, labels, active.model.manifest["classes"])
        stats.record_prediction(name, release_id, elapsed, labels)
        self._send(
            200,
            {
                "model": name,
                "release_id": release_id,
                "model_ref": active.model.manifest["model_ref"],
                "predictions": predictions,
            },
        )

    def _feedback(self) -> None:
        server = self.server
        try:
            feedback = parse_feedback(
                self._read_body(MAX_FEEDBACK_BYTES, "feedback is one small object")
            )
        except FeedbackError as exc:
            raise ValidationFailed(exc.detail, field=exc.field) from exc
        pid = feedback.prediction_id
        recent = server.predictions
        try:
            prediction = recent.claim(pid)
        except KeyError:
            raise NotFound(
                f"prediction {pid} is unknown or expired: this device remembers its last "
                f"{recent.capacity} predictions for {recent.max_age_s:.0f} s",
                field="prediction_id",
            ) from None
        except LookupError:
            raise Conflict(
                f"prediction {pid} already has its feedback; each prediction counts once",
                field="prediction_id",
            ) from None
        try:
            label = check_label(feedback.label, prediction.classes)
            server.stats.record_feedback(
                prediction.model,
                prediction.release_id,
                label,
                prediction.predicted,
                feedback.attributes,
            )
        except FeedbackError as exc:
            recent.unclaim(pid)
            raise ValidationFailed(exc.detail, field=exc.field) from exc
        except FeedbackRefused as exc:
            recent.unclaim(pid)
            if exc.retry_later:
                raise _TooManyRequests(exc.detail) from exc
            raise ValidationFailed(exc.detail, field="attributes") from exc
        self._send(
            200,
            {
                "prediction_id": pid,
                "model": prediction.model,
                "release_id": prediction.release_id,
                "label": label,
                "predicted": prediction.predicted,
            },
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    registry: Registry
    stats: InferenceStats
    predictions: RecentPredictions


class LocalApi:
    """The HTTP server in a thread of its own."""

    def __init__(
        self,
        registry: Registry,
        stats: InferenceStats,
        host: str,
        port: int,
        predictions: RecentPredictions | None = None,
    ) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.registry = registry
        self._server.stats = stats
        self._server.predictions = predictions if predictions is not None else RecentPredictions()
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
