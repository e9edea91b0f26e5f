"""The agent's loop: on a desired-state change (or every poll period) re-sync the director
and the image repository, apply each release they both vouch for, report, serve."""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .activation import Activation
from .client import Decommissioned, DeviceClient, LinkDown, ServerError
from .diagnostics import DiagnosticsUploader, agent_facts
from .local_api import LocalApi
from .outbox import Outbox
from .payloads import DesiredModel, DesiredState, DeviceStatusReport, PayloadError
from .push import PushListener, Waker
from .registry import Registry
from .runtime import SelfTestFailed, execution_providers
from .slots import ReleaseRejected, free_bytes
from .state import StateError, atomic_write, hardware_profile_key, load_signing_identity
from .telemetry import CpuMeter, InferenceStats, disk_free_bytes, pack_windows, rss_bytes
from .tls import load_pinned_ca
from .trust import TrustWorker, WorkerDelivery
from .trusted import SyncRefused, TrustedDelivery

if TYPE_CHECKING:
    from .trusted import DirectedRelease

__all__ = ["MAX_REPORT_BYTES", "Agent", "Backoff"]

log = logging.getLogger("farpoint.agent")
MAX_BACKOFF_S = 30.0
RETRY_FIRST_S = 60.0
"""A refused release is tried again after this long, doubling each time, up to RETRY_CAP_S
(or sooner when the desired state changes): never in a tight loop."""
RETRY_CAP_S = 3600.0
MIN_RESYNC_S = 1.0
MAX_REPORT_BYTES = 64 * 1024
"""The server's limit on a device request body (`server.device_auth.MAX_DEVICE_BODY`)."""
_REPORT_MARGIN = 1024
RECORD_BYTES = 48 * 1024
"""A window's record is split by model past this, so it fits a report with its statuses."""
CATCHUP_REPORTS = 8
"""Extra reports per heartbeat while records queued offline wait: a backlog drains in
minutes without a fleet that comes back at once flooding the server."""
HEALTH_CHECK_S = 0.5
"""How often open health windows are judged."""


@dataclass
class _Refusal:
    attempts: int
    retry_at: float


class Backoff:
    """Exponential backoff with full jitter, capped (AWS architecture blog's variant)."""

    def __init__(self, base_s: float = 0.5, cap_s: float = MAX_BACKOFF_S) -> None:
        self._base, self._cap, self._attempt = base_s, cap_s, 0

    def next(self) -> float:
        ceiling = min(self._cap, self._base * (2**self._attempt))
        self._attempt = min(self._attempt + 1, 16)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempt = 0


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class Agent:
    """One device agent over one state directory; `start` returns once it serves."""

    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        port_file: Path | None = None,
        poll_wait_s: int = 30,
        heartbeat_s: float = 10.0,
        parent_pid: int | None = None,
        clock: Callable[[], float] = time.time,
        trust_clock: Callable[[], float] | None = None,
        poll_interval_s: float = 0.5,
        mqtt_url: str | None = None,
        max_download_bytes_per_s: float | None = None,
        free_disk: Callable[[Path], int] = free_bytes,
        trust_worker: bool | TrustWorker = False,
        resync_s: float = 300.0,
    ) -> None:
        """`clock` signs requests and times health windows; `trust_clock` (default:
        `clock`) judges metadata expiry.

        `poll_interval_s`: the least time between two desired-state polls the server answers
        at once (with `poll_wait_s` 0 and a push channel, polls can be rare). `mqtt_url`:
        listen for sync pushes there (paho-mqtt imported only then).
        `max_download_bytes_per_s` limits model downloads; `free_disk` tells the free bytes
        of a folder's filesystem (a test may shrink it). `trust_worker`: verify in the
        trust worker process (`farpoint agent run` does) rather than in this one.
        `resync_s`: how often the image repository and the director are re-read when the
        desired state has not changed.
        """
        if max_download_bytes_per_s is not None and not max_download_bytes_per_s > 0:
            raise ValueError(
                f"max_download_bytes_per_s must be positive, got {max_download_bytes_per_s}"
            )
        self.state_dir = state_dir
        self.identity, key = load_signing_identity(state_dir)
        self._clock = clock
        self._trust_clock = trust_clock or clock
        self.client = DeviceClient(
            self.identity.server_url, self.identity.device_id, key, clock, state_dir=state_dir
        )
        self.registry = Registry()
        self.stats = InferenceStats()
        self._api = LocalApi(self.registry, self.stats, host, port)
        self.outbox = Outbox(state_dir / "telemetry")
        self._window_lock = threading.Lock()
        self._window_start = clock()
        self._window_cpu = CpuMeter()
        self._port_file = port_file
        self._poll_wait_s = max(0, min(60, poll_wait_s))
        self._heartbeat_s = heartbeat_s
        self._parent_pid = parent_pid
        self._stop = threading.Event()
        self._poll_interval_s = max(0.5, poll_interval_s)
        self.waker = Waker(self._stop)
        self._push = (
            PushListener(
                mqtt_url, self.identity.device_id, self.waker.wake, load_pinned_ca(state_dir)
            )
            if mqtt_url
            else None
        )
        self._diagnostics = DiagnosticsUploader(self.client, lambda: agent_facts(self))
        self._report_lock = threading.Lock()
        self._cpu = CpuMeter()
        self._started = time.monotonic()
        self._etag: str | None = None
        self._desired: DesiredState | None = None
        self._delivery: TrustedDelivery | None = None
        if isinstance(trust_worker, TrustWorker):
            self._worker: TrustWorker | None = trust_worker
        else:
            self._worker = TrustWorker(state_dir) if trust_worker else None
        self._resync_s = max(MIN_RESYNC_S, resync_s)
        self._directed: tuple[DirectedRelease, ...] = ()
        self._director_version = 0
        self._last_trust_sync: float | None = None
        self._failed: dict[tuple[str, int, str], _Refusal] = {}
        self.sync_refusal: str | None = None
        self._threads: list[threading.Thread] = []
        self._max_download_bytes_per_s = max_download_bytes_per_s
        self._free_disk = free_disk
        self.activation = Activation(
            state_dir,
            self.registry,
            clock,
            hardware_profile_key(self.identity.labels),
            self.report,
        )

    @property
    def port(self) -> int:
        return self._api.port

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        """Set when the agent stops (helper threads of the CLI wait on it)."""
        return self._stop

    # lifecycle

    def start(self) -> None:
        self.load_installed()
        self._api.start()
        if self._port_file is not None:
            atomic_write(self._port_file, f"{self.port}\n".encode())
        for name, target in (
            ("sync", self._sync_forever),
            ("heartbeat", self._heartbeat_forever),
            ("health", self._health_forever),
        ):
            t = threading.Thread(target=target, name=f"farpoint-agent-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        if self._parent_pid is not None:
            t = threading.Thread(
                target=self._watch_parent, name="farpoint-agent-parent", daemon=True
            )
            t.start()
        if self._push is not None:
            self._push.start()
        log.info("agent %s serving on port %d", self.identity.device_id, self.port)

    def stop(self) -> None:
        self._stop.set()
        self.waker.wake()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self._stop.wait(timeout_s)

    def close(self) -> None:
        """Stop and release the port; the sync thread may still be inside a long poll."""
        self._stop.set()
        self.waker.wake()
        if self._push is not None:
            self._push.stop()
        if self._worker is not None:
            self._worker.close()
        self._api.stop()
        for t in self._threads:
            t.join(timeout=1.0)
        try:
            self.close_window()  # the last counts wait on disk for the next start
        except OSError as exc:
            log.error("last telemetry window not queued: %s", exc)

    def _watch_parent(self) -> None:
        assert self._parent_pid is not None
        while not self._stop.wait(0.5):
            if not _process_alive(self._parent_pid):
                log.info("parent process %d is gone; stopping", self._parent_pid)
                self._stop.set()

    # installed releases

    def load_installed(self) -> None:
        """Serve each model's current slot after re-checking it and resuming its journal
        (activation.py); report the ones that fail."""
        self.activation.load_installed()

    def _health_forever(self) -> None:
        while not self._stop.wait(HEALTH_CHECK_S):
            try:
                self.activation.check_health()
            except Exception:  # the watch must outlive any one bad release
                log.exception("health window: unexpected error")

    # sync

    def _desired_model(self, d: DirectedRelease) -> DesiredModel | None:
        """The desired state's entry for a directed release: its rollout and health window."""
        for dm in self._desired["models"] if self._desired else []:
            if (dm["model"], dm["release_id"]) == (d.model, d.release_id):
                return dm
        return None

    def _rollout_id(self, d: DirectedRelease) -> int | None:
        dm = self._desired_model(d)
        return dm["rollout_id"] if dm else None

    def _serving(self, d: DirectedRelease) -> bool:
        active = self.registry.get(d.model)
        return active is not None and (
            active.current.release_id == d.release_id
            and active.current.manifest_digest == d.manifest_digest
        )

    def _pending(self) -> list[DirectedRelease]:
        """Releases the director names that are not active, not rolled back here under
        the same rollout, and not cooling down."""
        now = time.monotonic()
        todo = []
        for d in self._directed:
            if self._serving(d) or self.activation.rolled_back_under(d, self._rollout_id(d)):
                continue
            refusal = self._failed.get((d.model, d.release_id, d.manifest_sha256))
            if refusal is not None and now < refusal.retry_at:
                continue
            todo.append(d)
        return todo

    def _resync_due(self) -> bool:
        if self._last_trust_sync is None:
            return True
        return time.monotonic() - self._last_trust_sync >= self._resync_s

    def sync_once(self, wait_s: int) -> None:
        """One poll, a trust re-sync when due, and the work it brings.

        LinkDown/ServerError/PayloadError of the poll propagate to the caller.
        """
        changed = self._take_desired(self.client.desired_state(self._etag, wait_s))
        self._diagnostics.answer(self._desired)  # IT operations asked for the logs
        if changed or self._resync_due() or self._pending():
            self.trust_sync()
        if any(self._desired_model(d) is None for d in self._pending()):
            # the director moved on before the desired state held here (a re-sync between
            # two polls): take it first, for the rollout and health window of the release
            self._take_desired(self.client.desired_state(self._etag, 0))
        for d in self._directed:
            if self._serving(d):
                self.activation.settle(d.model, self._desired_model(d))
        for d in self._pending():
            self.apply(d)

    def _take_desired(self, desired: DesiredState | None) -> bool:
        """Keep a polled desired state; True when it differs from the one held."""
        changed = desired is not None and desired["etag"] != self._etag
        if desired is not None:
            if changed:
                self._failed.clear()  # a new desired state earns refused releases a new try
            self._etag, self._desired = desired["etag"], desired
        return changed

    def trust_sync(self) -> None:
        """Refresh the image repository and the director metadata; refusals are reported."""
        if self._delivery is None:
            self._delivery = self._make_delivery()
        self._last_trust_sync = time.monotonic()
        try:
            director = self._delivery.sync()
        except SyncRefused as exc:
            self._directed = ()
            self.sync_refusal = str(exc)
            log.error("sync refused: %s", exc)
            self._report_sync_refusal(str(exc))
            return
        except StateError as exc:
            self._directed = ()
            self.sync_refusal = f"agent state: {exc}"
            log.error("sync: %s", exc)
            self._report_sync_refusal(self.sync_refusal)
            return
        self.sync_refusal = None
        if director.version != self._director_version:
            log.info("director metadata version %d accepted", director.version)
        self._director_version = director.version
        self._directed = director.releases

    def _make_delivery(self) -> TrustedDelivery:
        if self._worker is not None:
            return WorkerDelivery(
                self.client, self.state_dir, self._worker, self._clock, self._trust_clock
            )
        from .delivery import Delivery  # python-tuf's memory, in this process from now on

        return Delivery(
            self.client,
            self.state_dir,
            self.identity.server_url,
            self.identity.device_id,
            self._trust_clock,
        )

    def _report_sync_refusal(self, reason: str) -> None:
        """Mark what the server says it wants as failed, with the reason (labels only:
        nothing unverified is acted on); models already serving keep serving."""
        changed = False
        wanted = self._desired["models"] if self._desired else []
        for dm in wanted:
            active = self.registry.get(dm["model"])
            if active is not None and active.current.release_id == dm["release_id"]:
                continue
            changed |= self.registry.set_phase(dm["model"], dm["release_id"], "failed", reason)
        if changed:
            self.report()

    def _sync_forever(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            wait_s = 0 if self._pending() else self._poll_wait_s
            began = time.monotonic()
            try:
                self.sync_once(wait_s)
                backoff.reset()
                quick = time.monotonic() - began
                if quick < self._poll_interval_s and not self._pending():
                    # a server that does not hold the poll is not hammered; a push ends the nap
                    self.waker.nap(self._poll_interval_s - quick)
            except Decommissioned as exc:
                log.error(
                    "%s; this device stops syncing and reporting, and keeps serving what it "
                    "has (enroll it again to bring it back)",
                    exc.detail,
                )
                return
            except (LinkDown, ServerError, PayloadError) as exc:
                delay = backoff.next()
                log.warning("sync: %s; retrying in %.1f s", exc, delay)
                self.waker.nap(delay)
            except Exception:  # the loop must outlive any one bad release
                log.exception("sync: unexpected error")
                self._stop.wait(backoff.next())

    def _refused(self, d: DirectedRelease, reason: str) -> None:
        key = (d.model, d.release_id, d.manifest_sha256)
        previous = self._failed.get(key)
        attempts = 1 if previous is None else previous.attempts + 1
        delay = min(RETRY_CAP_S, RETRY_FIRST_S * 2 ** (attempts - 1))
        self._failed[key] = _Refusal(attempts, time.monotonic() + delay)
        log.error(
            "release %d of %s refused: %s (next try in %.0f s)",
            d.release_id,
            d.model,
            reason,
            delay,
        )
        self.activation.refused(d, reason, self._rollout_id(d))

    def apply(self, d: DirectedRelease) -> None:
        """Verify, download, install, self-test and switch one release (activation.py);
        report each phase, and a refusal with its reason."""
        delivery = self._delivery
        assert delivery is not None
        try:
            self.activation.apply(
                d,
                delivery,
                self._desired_model(d),
                max_bytes_per_s=self._max_download_bytes_per_s,
                free=self._free_disk,
            )
        except (
            ReleaseRejected,
            SelfTestFailed,
            PayloadError,
            ServerError,
            StateError,
            OSError,
        ) as exc:
            self._refused(d, str(exc))

    # status

    def heartbeat(self) -> dict[str, object]:
        per_model = self.stats.snapshot()
        for active in self.registry.active():
            entry = per_model.setdefault(
                active.current.model,
                {
                    "requests": 0,
                    "inferences": 0,
                    "errors": 0,
                    "input_errors": 0,
                    "latency_p50_ms": None,
                    "latency_p95_ms": None,
                },
            )
            entry["release_id"] = active.current.release_id
        return {
            "uptime_s": round(time.monotonic() - self._started, 3),
            "cpu_percent": self._cpu.read(),
            "rss_bytes": rss_bytes(),
            "disk_free_bytes": disk_free_bytes(self.state_dir),
            "execution_providers": execution_providers(),
            "models": per_model,
        }

    def close_window(self) -> None:
        """Close the telemetry window into records on the on-disk queue."""
        with self._window_lock:
            end = self._clock()
            resources: dict[str, float | int | None] = {
                "cpu_percent": self._window_cpu.read(),
                "rss_bytes": rss_bytes(),
                "disk_free_bytes": disk_free_bytes(self.state_dir),
            }
            records = pack_windows(
                self.stats.close_window(),
                _iso(self._window_start),
                _iso(end),
                resources,
                RECORD_BYTES,
            )
            self._window_start = end
            for record in records:
                self.outbox.append(dict(record))

    def report(self) -> bool:
        """Send the statuses, a heartbeat and the oldest queued telemetry records; False
        when the server could not take it."""
        return self._report() is not None

    def _report(self) -> int | None:
        """Records the server accepted with one report (None: not delivered)."""
        with self._report_lock:
            report: DeviceStatusReport = {
                "models": self.registry.statuses(),
                "heartbeat": self.heartbeat(),
            }
            dropped = self.outbox.dropped
            if dropped:
                report["dropped_telemetry"] = dropped
            base = len(json.dumps(report, separators=(",", ":")))
            batch = self.outbox.batch(MAX_REPORT_BYTES - base - _REPORT_MARGIN)
            if batch:
                report["telemetry"] = batch
            try:
                self.client.report_status(report)
            except LinkDown as exc:
                log.warning("status report not delivered: %s", exc)
                return None
            except ServerError as exc:
                if not batch:
                    log.warning("status report not delivered: %s", exc)
                    return None
                return self._find_refused_record(report, batch, exc)
            if batch or dropped:
                self.outbox.ack(batch[-1]["seq"] if batch else -1, dropped)
            return len(batch)

    def _find_refused_record(
        self, report: DeviceStatusReport, batch: list[dict[str, Any]], exc: ServerError
    ) -> int | None:
        """A report with telemetry was refused. The oldest record alone goes through: it
        was a later one (the next reports find it). The report goes through without any:
        the oldest record is one the server will never take; drop it rather than block
        the queue behind it. Neither: the refusal is not about telemetry."""
        dropped = report.get("dropped_telemetry", 0)
        if len(batch) > 1:
            report["telemetry"] = batch[:1]
            try:
                self.client.report_status(report)
            except LinkDown as again:
                log.warning("status report not delivered: %s", again)
                return None
            except ServerError:
                pass
            else:
                self.outbox.ack(batch[0]["seq"], dropped)
                return 1
        report.pop("telemetry", None)
        try:
            self.client.report_status(report)
        except (LinkDown, ServerError) as again:
            log.warning("status report not delivered: %s", again)
            return None
        seq = self.outbox.drop_oldest()
        log.error("server refused telemetry record %s (%s); dropped it", seq, exc.detail)
        if dropped:
            self.outbox.ack(-1, dropped)
        return 0

    def _heartbeat_forever(self) -> None:
        backoff = Backoff(base_s=self._heartbeat_s)
        delay = 0.0
        while not self._stop.wait(delay) and self.client.decommissioned is None:
            self.close_window()
            sent = self._report()
            catchup = 0
            while sent and self.outbox.pending and catchup < CATCHUP_REPORTS:
                sent = self._report()
                catchup += 1
            if sent is not None:
                backoff.reset()
                delay = self._heartbeat_s
            else:
                delay = max(self._heartbeat_s, backoff.next())


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()
