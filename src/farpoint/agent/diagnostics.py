"""Remote diagnostics: a bounded ring of recent log lines and last errors, uploaded when
IT operations ask (the desired state names a request) at the next sync.

Secrets never leave the device: private keys, enrollment and bearer tokens, request
signatures and credentials in URLs are removed from every line before it is kept, and the
upload is cut (oldest lines first) to fit the server's 64 KiB limit for device bodies.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from .client import DeviceClient, ServerError
from .payloads import DesiredState, DiagnosticsUpload, LogLine

__all__ = [
    "MAX_UPLOAD_BYTES",
    "DiagnosticsRing",
    "DiagnosticsUploader",
    "build_upload",
    "install",
    "redact",
]

log = logging.getLogger("farpoint.agent.diagnostics")

MAX_LINES = 500
MAX_ERRORS = 50
MAX_MESSAGE = 2000
MAX_UPLOAD_BYTES = 60 * 1024
"""Below the server's 64 KiB limit for any device body."""

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_PEM = r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)"
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Replacements say "[redacted]", which no later pattern matches again.
    (re.compile(_PEM, re.S), "[private key redacted]"),
    (re.compile(r"\bfpe1\.[A-Za-z0-9_.\-]+"), "fpe1.[redacted]"),
    (re.compile(r"\bfpt_\d+_[A-Za-z0-9_\-]+"), "fpt_[redacted]"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9_.\-]+"), "Bearer [redacted]"),
    (
        re.compile(
            r"(?i)\b(authorization|x-farpoint-signature)(['\"]?\s*[:=]\s*['\"]?)[^\s,'\"}]+"
        ),
        r"\1\2[redacted]",
    ),
    (re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"), r"\1[redacted]@"),
    (
        re.compile(r"(?i)\b(password|passwd|secret|token|passphrase)(\s*[=:]\s*)[^\s,&]+"),
        r"\1\2[redacted]",
    ),
)


def redact(text: str) -> str:
    """`text` without anything that looks like a secret."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _line(record: logging.LogRecord, message: str) -> LogLine:
    level = record.levelname if record.levelname in _LEVELS else "INFO"
    return {
        "at": round(record.created, 3),
        "level": level,
        "logger": record.name[:200],
        "message": redact(message)[:MAX_MESSAGE],
    }


class DiagnosticsRing(logging.Handler):
    """A logging handler keeping the last `max_lines` lines and the last `max_errors`
    errors (with their tracebacks), secrets removed; cheap enough to run always."""

    def __init__(self, max_lines: int = MAX_LINES, max_errors: int = MAX_ERRORS) -> None:
        super().__init__(logging.DEBUG)
        self._lines: deque[LogLine] = deque(maxlen=max_lines)
        self._errors: deque[LogLine] = deque(maxlen=max_errors)
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        line = _line(record, message)
        error = None
        if record.levelno >= logging.ERROR:
            detail = message
            if record.exc_info and record.exc_info[0] is not None:
                detail += "\n" + "".join(traceback.format_exception(*record.exc_info))
            error = _line(record, detail[-4 * MAX_MESSAGE :])
        with self._guard:
            self._lines.append(line)
            if error is not None:
                self._errors.append(error)

    def snapshot(self) -> tuple[list[LogLine], list[LogLine]]:
        with self._guard:
            return list(self._lines), list(self._errors)


_installed: DiagnosticsRing | None = None
_install_lock = threading.Lock()


def install(level: int = logging.INFO) -> DiagnosticsRing:
    """The process's ring, attached to the root logger (once) at `level`."""
    global _installed
    with _install_lock:
        if _installed is None:
            _installed = DiagnosticsRing()
            root = logging.getLogger()
            root.addHandler(_installed)
        _installed.setLevel(level)
        return _installed


def build_upload(
    lines: list[LogLine],
    errors: list[LogLine],
    facts: dict[str, Any],
    max_bytes: int = MAX_UPLOAD_BYTES,
) -> bytes:
    """The JSON body of an upload, at most `max_bytes`: the oldest lines go first, then
    the oldest errors, until it fits."""
    lines, errors = list(lines), list(errors)
    dropped = 0
    safe_facts = json.loads(redact(json.dumps(facts, default=str)))
    while True:
        doc: DiagnosticsUpload = {
            "logs": lines,
            "errors": errors,
            "dropped_lines": dropped,
            "agent": safe_facts,
        }
        data = json.dumps(doc, separators=(",", ":")).encode()
        excess = len(data) - max_bytes
        if excess <= 0:
            return data
        if lines:
            # drop about as many lines as the excess needs, at least one
            average = max(1, len(data) // max(1, len(lines) + len(errors)))
            n = min(len(lines), max(1, excess // average))
            del lines[:n]
            dropped += n
        elif errors:
            del errors[0]
            dropped += 1
        elif safe_facts:
            safe_facts = {"note": "agent facts left out: too large"}
        else:  # pragma: no cover - an empty document is far below the limit
            return data


def agent_facts(agent: Any) -> dict[str, Any]:
    """What IT operations want next to the logs: identity, versions, what is served."""
    from farpoint import __version__

    identity = agent.identity
    facts: dict[str, Any] = {
        "device_id": identity.device_id,
        "name": identity.name,
        "server_url": identity.server_url,
        "farpoint": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "sync_refusal": getattr(agent, "sync_refusal", None),
        "statuses": agent.registry.statuses(),
        "serving": [
            {
                "model": a.current.model,
                "release_id": a.current.release_id,
                "slot": a.current.slot,
                "manifest_digest": a.current.manifest_digest,
            }
            for a in agent.registry.active()
        ],
    }
    try:
        facts["heartbeat"] = agent.heartbeat()
    except Exception as exc:  # diagnostics must work when the rest is in trouble
        facts["heartbeat"] = f"unavailable: {exc}"
    return facts


class DiagnosticsUploader:
    """Answers each diagnostics request of the desired state once."""

    def __init__(
        self,
        client: DeviceClient,
        facts: Callable[[], dict[str, Any]],
        ring: DiagnosticsRing | None = None,
    ) -> None:
        self._client = client
        self._facts = facts
        self._ring = ring
        self._answered: set[int] = set()

    def answer(self, desired: DesiredState | None) -> bool:
        """Upload if `desired` names a request not answered yet; True when one was sent.
        LinkDown propagates (the request stays open and is answered at a later sync)."""
        request = desired["diagnostics"] if desired is not None else None
        if request is None or request["id"] in self._answered:
            return False
        rid = request["id"]
        ring = self._ring or install()
        lines, errors = ring.snapshot()
        started = time.monotonic()
        body = build_upload(lines, errors, self._facts())
        try:
            self._client.upload_diagnostics(rid, body)
        except ServerError as exc:
            if exc.status >= 500 or exc.status in (401, 403):
                raise
            # 404/409/422: this request cannot be answered; asking again makes a new one
            self._answered.add(rid)
            log.warning("diagnostics request %d not answered: %s", rid, exc.detail)
            return False
        self._answered.add(rid)
        log.info(
            "diagnostics request %d answered: %d log lines, %d errors, %d B in %.2f s",
            rid,
            len(lines),
            len(errors),
            len(body),
            time.monotonic() - started,
        )
        return True
