"""The agent's side of the trust worker (`trust_worker.py`): start it on demand, ask it to
sync or verify, turn its answers back into the agent's own values and exceptions.

The worker is this agent's own code in a child process; its answers are trusted as the
in-process `Delivery`'s would be. What it cannot be trusted to do is stay alive: a worker
that dies, hangs past the timeout or answers garbage is stopped and the request fails as
LinkDown (the loop retries with backoff); a worker that exited because it was idle is
restarted once, transparently.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .client import Decommissioned, DeviceClient, LinkDown, ServerError
from .payloads import PayloadError
from .slots import ReleaseRejected, parse_release
from .state import StateError
from .trusted import DirectedRelease, DirectorMetadata, ModelFetch, SyncRefused, TrustedRelease

__all__ = ["TrustWorker", "WorkerDelivery"]

log = logging.getLogger("farpoint.agent")
MAX_ANSWER_BYTES = 8 << 20


class TrustWorker:
    """One worker process at a time, started when a request comes and none runs."""

    def __init__(
        self,
        state_dir: Path,
        *,
        linger_s: float = 30.0,
        timeout_s: float = 300.0,
        log_level: str = "INFO",
    ) -> None:
        self._state_dir = state_dir
        self._linger_s = linger_s
        self._timeout_s = timeout_s
        self._log_level = log_level
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.started = 0
        """How many worker processes were started (a test reads it)."""

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self) -> subprocess.Popen[bytes]:
        command = [
            sys.executable,
            "-m",
            "farpoint.agent.trust_worker",
            "--state-dir",
            str(self._state_dir),
            "--linger-s",
            str(self._linger_s),
            "--log-level",
            self._log_level,
        ]
        # its log lines go where the agent's go (inherited stderr)
        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.started += 1
        # reap it as soon as it exits (idle), or it lingers as a zombie until the next sync
        threading.Thread(target=proc.wait, name="farpoint-trust-reaper", daemon=True).start()
        return proc

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the worker now, even while a request waits on it (that request fails)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
        with self._lock:
            self._stop()

    def _exchange(self, proc: subprocess.Popen[bytes], line: bytes) -> bytes | None:
        """Send one request and read one answer line; None when the worker is gone."""
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            return None
        deadline = time.monotonic() + self._timeout_s
        answer = bytearray()
        fd = proc.stdout.fileno()
        while not answer.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            answer += chunk
            if len(answer) > MAX_ANSWER_BYTES:
                raise ValueError(f"answer over {MAX_ANSWER_BYTES} bytes")
        return bytes(answer)

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """The worker's answer to `request`; LinkDown when it cannot give one."""
        line = (json.dumps(request, separators=(",", ":")) + "\n").encode()
        log.debug("trust worker: %s", request.get("op"))
        with self._lock:
            for attempt in (1, 2):
                if self._proc is None or self._proc.poll() is not None:
                    self._proc = self._start()
                proc = self._proc
                try:
                    raw = self._exchange(proc, line)
                except TimeoutError:
                    self._stop()
                    raise LinkDown(
                        f"the trust worker did not answer within {self._timeout_s:.0f} s"
                    ) from None
                except ValueError as exc:
                    self._stop()
                    raise LinkDown(f"the trust worker's answer is unusable: {exc}") from exc
                if raw is None:
                    code = proc.poll()
                    self._stop()
                    if attempt == 1 and code in (0, None):
                        continue  # it had just exited, idle: start a fresh one
                    raise LinkDown(f"the trust worker exited (code {code}) without answering")
                try:
                    answer = json.loads(raw)
                except ValueError as exc:
                    self._stop()
                    raise LinkDown(f"the trust worker's answer is not JSON: {exc}") from exc
                if not isinstance(answer, dict):
                    self._stop()
                    raise LinkDown("the trust worker's answer is not an object")
                return answer
        raise AssertionError("unreachable")


def _raise(answer: dict[str, Any]) -> None:
    """Turn a failed answer back into the exception the in-process Delivery raises."""
    kind = answer.get("kind")
    message = str(answer.get("message") or "no reason given")
    if kind == "sync-refused":
        raise SyncRefused(message)
    if kind == "rejected":
        raise ReleaseRejected(message)
    if kind == "server":
        status = answer.get("status")
        found = answer.get("problem")
        problem: dict[str, Any] = found if isinstance(found, dict) else {}
        code = status if isinstance(status, int) else 400
        if code == 403 and problem.get("device_state") == "decommissioned":
            raise Decommissioned(code, message, problem)
        raise ServerError(code, message, problem)
    if kind == "state":
        raise StateError(message)
    if kind == "payload":
        raise PayloadError(message)
    if kind == "link":
        raise LinkDown(message)
    raise LinkDown(f"the trust worker failed: {message}")


class WorkerDelivery(ModelFetch):
    """`TrustedDelivery` through the trust worker; the model's bytes are fetched and
    hashed here, in the agent, as in process."""

    def __init__(
        self,
        client: DeviceClient,
        state_dir: Path,
        worker: TrustWorker,
        clock: Callable[[], float],
        trust_clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._state_dir = state_dir
        self._worker = worker
        self._clock = clock
        self._trust_clock = trust_clock

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        request["sign_offset"] = self._clock() - now
        request["trust_offset"] = self._trust_clock() - now
        answer = self._worker.call(request)
        if answer.get("ok") is not True:
            _raise(answer)
        return answer

    def sync(self) -> DirectorMetadata:
        answer = self._ask({"op": "sync"})
        try:
            releases = tuple(DirectedRelease.from_json(r) for r in answer["releases"])
            return DirectorMetadata(
                version=int(answer["version"]),
                expires=datetime.datetime.fromisoformat(str(answer["expires"])),
                releases=releases,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise LinkDown(f"the trust worker's sync answer is malformed: {exc}") from exc

    def verify_release(self, d: DirectedRelease) -> TrustedRelease:
        answer = self._ask({"op": "verify", "release": d.to_json()})
        try:
            payload = base64.b64decode(str(answer["manifest_b64"]), validate=True)
            approvers = tuple(str(a) for a in answer.get("approvers") or ())
        except (KeyError, binascii.Error, ValueError) as exc:
            raise LinkDown(f"the trust worker's verify answer is malformed: {exc}") from exc
        release = parse_release(payload)
        if release.manifest_digest != d.manifest_digest:  # what the worker verified, no other
            raise ReleaseRejected(
                f"the trust worker's manifest hashes to {release.manifest_digest}, not to the "
                f"director's {d.manifest_digest}"
            )
        return TrustedRelease(d, release, approvers)
