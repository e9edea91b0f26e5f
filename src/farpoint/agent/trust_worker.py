"""The trust worker: python-tuf, the director and every signature check, in a process of
its own that lives only while the agent syncs.

`python -m farpoint.agent.trust_worker --state-dir DIR` reads one JSON request per line on
stdin and answers one JSON line on stdout, with the agent's own verification code
(`delivery.Delivery`, the same code the agent runs in process with
`--trust-in-process`). It exits when stdin closes or after `--linger-s` seconds without a
request: the idle agent then holds neither python-tuf, securesystemslib nor urllib3
(about a third of its memory budget over a bare ONNX Runtime process), and a rollout's
several requests still share one warm worker.

Requests: `{"op": "sync", "sign_offset": s, "trust_offset": t}` and
`{"op": "verify", "release": {...DirectedRelease...}, ...offsets}`; the offsets are the
agent's clocks minus `time.time()`, so an injected clock holds in here too. Answers:
`{"ok": true, ...}` or `{"ok": false, "kind": ..., "message": ...}` (see `trust.py`).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import select
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from .client import DeviceClient, LinkDown, ServerError
from .delivery import Delivery
from .payloads import PayloadError
from .slots import ReleaseRejected
from .state import StateError, load_identity
from .trusted import DirectedRelease, SyncRefused

__all__ = ["MAX_REQUEST_BYTES", "main", "serve"]

MAX_REQUEST_BYTES = 64 * 1024
log = logging.getLogger("farpoint.agent.trust")


class _Offsets:
    def __init__(self) -> None:
        self.sign = 0.0
        self.trust = 0.0

    def take(self, request: dict[str, Any]) -> None:
        for name in ("sign", "trust"):
            value = request.get(f"{name}_offset", 0.0)
            if isinstance(value, int | float) and not isinstance(value, bool):
                setattr(self, name, float(value))


def _failure(exc: Exception) -> dict[str, Any]:
    if isinstance(exc, SyncRefused):
        return {"ok": False, "kind": "sync-refused", "message": str(exc)}
    if isinstance(exc, ReleaseRejected):
        return {"ok": False, "kind": "rejected", "message": str(exc)}
    if isinstance(exc, ServerError):
        return {
            "ok": False,
            "kind": "server",
            "message": exc.detail,
            "status": exc.status,
            "problem": exc.problem,
        }
    if isinstance(exc, LinkDown):
        return {"ok": False, "kind": "link", "message": str(exc)}
    if isinstance(exc, StateError):
        return {"ok": False, "kind": "state", "message": str(exc)}
    if isinstance(exc, PayloadError):
        return {"ok": False, "kind": "payload", "message": str(exc)}
    return {"ok": False, "kind": "internal", "message": f"{type(exc).__name__}: {exc}"}


def _handle(delivery: Delivery, offsets: _Offsets, request: Any) -> dict[str, Any]:
    if not isinstance(request, dict):
        return {"ok": False, "kind": "internal", "message": "a request must be a JSON object"}
    offsets.take(request)
    op = request.get("op")
    try:
        if op == "sync":
            director = delivery.sync()
            return {
                "ok": True,
                "version": director.version,
                "expires": director.expires.isoformat(),
                "releases": [d.to_json() for d in director.releases],
            }
        if op == "verify":
            directed = DirectedRelease.from_json(request.get("release"))
            if not delivery.synced:  # a new worker: read the repository first
                delivery.sync()
            trusted = delivery.verify_release(directed)
            return {
                "ok": True,
                "manifest_b64": base64.b64encode(trusted.release.payload).decode(),
                "approvers": list(trusted.approvers),
            }
        return {"ok": False, "kind": "internal", "message": f"unknown op {op!r}"}
    except Exception as exc:  # every failure is an answer, never a dead worker
        if _failure(exc)["kind"] == "internal":
            log.exception("trust worker: %s failed", op)
        return _failure(exc)


def _readable(stream: IO[str], timeout_s: float) -> bool:
    ready, _, _ = select.select([stream], [], [], timeout_s)
    return bool(ready)


def serve(
    state_dir: Any,
    stdin: IO[str],
    stdout: IO[str],
    linger_s: float,
    readable: Callable[[IO[str], float], bool] = _readable,
) -> int:
    """Answer requests until stdin closes or `linger_s` pass without one."""
    identity, key = load_identity(state_dir)
    offsets = _Offsets()
    client = DeviceClient(
        identity.server_url,
        identity.device_id,
        key,
        lambda: time.time() + offsets.sign,
        state_dir=state_dir,
    )
    delivery = Delivery(
        client,
        state_dir,
        identity.server_url,
        identity.device_id,
        lambda: time.time() + offsets.trust,
    )
    try:
        while True:
            if not readable(stdin, linger_s):
                return 0  # idle: the agent starts another worker when it needs one
            line = stdin.readline(MAX_REQUEST_BYTES + 1)
            if not line:
                return 0  # the agent closed the pipe (or is gone)
            if len(line) > MAX_REQUEST_BYTES:
                answer: dict[str, Any] = {
                    "ok": False,
                    "kind": "internal",
                    "message": f"request over {MAX_REQUEST_BYTES} bytes",
                }
            else:
                try:
                    request = json.loads(line)
                except ValueError as exc:
                    request = None
                    answer = {"ok": False, "kind": "internal", "message": f"not JSON: {exc}"}
                if request is not None:
                    answer = _handle(delivery, offsets, request)
            stdout.write(json.dumps(answer, separators=(",", ":")) + "\n")
            stdout.flush()
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="python -m farpoint.agent.trust_worker")
    parser.add_argument("--state-dir", required=True, type=Path)
    parser.add_argument("--linger-s", type=float, default=30.0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return serve(args.state_dir, sys.stdin, sys.stdout, args.linger_s)
    except StateError as exc:
        print(f"trust worker: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
