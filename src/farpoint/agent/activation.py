"""Activating a release and living with it: install into the inactive slot, self-test,
switch, watch the health window, commit or roll back; and, at start, finish whatever a
crash interrupted (the rules are in restart.py).

`current.json` (state.py) is the one record of what is served; `journal.json`
(journal.py) records the update in flight, each step written before the act it
announces. The sync loop (loop.py) decides what to apply and when; this module decides
how, and is the only writer of both files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .health import judge, window_end
from .journal import Journal, RolledBack, load_journal, save_journal
from .payloads import DesiredModel, HealthPolicy, Phase, parse_health
from .registry import Registry, status_entry
from .restart import finish_step, status_at_start
from .runtime import SelfTestFailed, load_model
from .slots import (
    ReleaseRejected,
    VerifiedRelease,
    discard_slot,
    free_bytes,
    inactive_slot,
    install,
    verify_installed,
)
from .state import CurrentRelease, StateError, load_current, remove_current, save_current

if TYPE_CHECKING:
    from .trusted import DirectedRelease, TrustedDelivery

__all__ = ["Activation"]

log = logging.getLogger("farpoint.agent")
_BEFORE_SWITCH = ("downloading", "installed")


class Activation:
    """The activation of releases on one device, thread-safe (the sync loop applies, the
    health watch commits and rolls back)."""

    def __init__(
        self,
        state_dir: Path,
        registry: Registry,
        clock: Callable[[], float],
        profile: str,
        report: Callable[[], object],
    ) -> None:
        """`clock` (wall time, seconds) times health windows across restarts; `profile`
        picks the release's latency budget; `report` sends the statuses to the server."""
        self._state_dir = state_dir
        self.registry = registry
        self._clock = clock
        self.profile = profile
        self._report = report
        self._lock = threading.RLock()
        self._journals: dict[str, Journal] = {}

    def model_dir(self, model: str) -> Path:
        if not model or "/" in model or model.startswith("."):
            raise ReleaseRejected(f"model name {model!r} is not usable as a directory name")
        return self._state_dir / "models" / model

    def journal(self, model: str) -> Journal | None:
        with self._lock:
            return self._journals.get(model)

    def _save(self, model_dir: Path, journal: Journal) -> Journal:
        save_journal(model_dir, journal)
        self._journals[journal.model] = journal
        return journal

    def _phase(self, model: str, release_id: int, phase: Phase, rollout_id: int | None) -> None:
        if self.registry.set_phase(model, release_id, phase, rollout_id=rollout_id):
            self._report()

    # -- at start ------------------------------------------------------------------------

    def load_installed(self) -> None:
        """Serve each model's current slot after re-checking it, finishing an interrupted
        switch or rollback first; count a crash in a health window that is still open."""
        root = self._state_dir / "models"
        if not root.is_dir():
            return
        for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            with self._lock:
                self._load_one(model_dir)
        # judged now, reported with the first heartbeat: a start never waits for the server
        self.check_health(report=False)

    def _read_journal(self, model_dir: Path) -> Journal | None:
        try:
            journal = load_journal(model_dir)
        except StateError as exc:
            log.error("ignoring the journal of %s: %s", model_dir.name, exc)
            return None
        if journal is not None:
            self._journals[journal.model] = journal
        return journal

    def _load_one(self, model_dir: Path) -> None:
        model, current = model_dir.name, None
        try:
            journal = self._read_journal(model_dir)
            current, changed = finish_step(model_dir, journal, load_current(model_dir))
            if changed is not None:
                journal = self._save(model_dir, changed)
            if current is None:
                if journal is not None and journal.step == "rolled_back":
                    self.registry.set_phase(
                        model, journal.release_id, "failed", journal.reason,
                        rollout_id=journal.rollout_id,
                    )  # fmt: skip
                return
            try:
                path, manifest = verify_installed(model_dir, current)
                loaded = load_model(path, manifest)
            except (ReleaseRejected, SelfTestFailed, OSError) as exc:
                if journal is None or journal.step != "switched" or journal.target != current:
                    raise
                # the release in its window is unusable: a rollback, if the previous serves
                self._roll_back(model, journal, f"installed release: {exc}")
                return
            status, changed = status_at_start(journal, current, self._clock())
            if changed is not None:
                self._save(model_dir, changed)
            self.registry.activate(loaded, current, status=status)
            log.info("serving %s release %d from %s", model, current.release_id, current.slot)
        except (StateError, ReleaseRejected, SelfTestFailed, OSError) as exc:
            release_id = current.release_id if current else None
            log.error("not serving %s: %s", model, exc)
            self.registry.set_phase(model, release_id, "failed", f"installed release: {exc}")

    # -- applying a release ----------------------------------------------------------------

    def _serving_committed(self, model: str) -> bool:
        active = self.registry.get(model)
        journal = self._journals.get(model)
        if active is None or journal is None:
            return True
        if journal.target == active.current:
            return journal.step == "committed"
        if journal.previous == active.current:
            return journal.previous_committed
        return True

    def apply(
        self,
        d: DirectedRelease,
        delivery: TrustedDelivery,
        desired: DesiredModel | None,
        *,
        max_bytes_per_s: float | None = None,
        free: Callable[[Path], int] = free_bytes,
    ) -> None:
        """Verify, download, install, self-test and switch to one release; its health
        window starts. Refusals raise (ReleaseRejected, SelfTestFailed, ...): the caller
        reports them through `refused`."""
        model, release_id = d.model, d.release_id
        rollout_id = desired["rollout_id"] if desired else None
        health = desired["health"] if desired else parse_health(None, "health")
        model_dir = self.model_dir(model)
        self._phase(model, release_id, "downloading", rollout_id)
        cache_check = delivery.check_cache(d)  # a held blob is hashed meanwhile
        trusted = delivery.verify_release(d)
        with self._lock:
            serving = self.registry.get(model)
            self._save(
                model_dir,
                Journal(
                    model=model,
                    release_id=release_id,
                    manifest_digest=trusted.release.manifest_digest,
                    rollout_id=rollout_id,
                    step="downloading",
                    previous=serving.current if serving else None,
                    previous_committed=self._serving_committed(model),
                    rolled_back=self._remembered(model),
                ),
            )
        blob = delivery.fetch_model(
            d,
            lambda: self._phase(model, release_id, "verifying", rollout_id),
            cache_check,
            max_bytes_per_s=max_bytes_per_s,
            free=free,
        )
        self._phase(model, release_id, "installing", rollout_id)
        with self._lock:
            self._switch(model_dir, trusted.release, blob, health)
        approvers = ", ".join(trusted.approvers) or "nobody"
        log.info(
            "activated %s release %d (approved by %s); health window of %d s",
            model, release_id, approvers, health["window_s"],
        )  # fmt: skip
        self._report()
        self.check_health()  # a window of 0 s commits at once

    def _remembered(self, model: str) -> tuple[RolledBack, ...]:
        journal = self._journals.get(model)
        return journal.rolled_back if journal is not None else ()

    def _switch(
        self, model_dir: Path, release: VerifiedRelease, blob: Path, health: HealthPolicy
    ) -> None:
        journal = self._journals[model_dir.name]
        serving = self.registry.get(journal.model)
        previous = serving.current if serving else None
        slot = inactive_slot(previous)
        path = install(model_dir, slot, blob, release)
        target = CurrentRelease(
            model=journal.model,
            slot=slot,
            release_id=journal.release_id,
            manifest_digest=release.manifest_digest,
            model_digest=release.manifest["model_digest"],
            model_ref=release.manifest["model_ref"],
        )
        journal = self._save(
            model_dir, journal.but(step="installed", target=target, previous=previous)
        )
        loaded = load_model(path, release.manifest)
        loaded.self_test(self.profile)
        now = self._clock()
        journal = self._save(
            model_dir,
            journal.but(
                step="switched",
                health=health,
                switched_at=now,
                window_end=window_end(now, health["window_s"]),
                crashes=0,
            ),
        )
        try:
            save_current(model_dir, target)
        except OSError as exc:
            self._save(model_dir, journal.but(step="failed", reason=f"switch failed: {exc}"))
            raise
        self.registry.activate(loaded, target, committed=False, rollout_id=journal.rollout_id)

    def refused(self, d: DirectedRelease, reason: str, rollout_id: int | None) -> None:
        """Record a release refused before its switch: its slot is discarded, what is
        served is untouched, the status is `failed` with the reason."""
        with self._lock:
            journal = self._journals.get(d.model)
            if (
                journal is not None
                and (journal.release_id, journal.manifest_digest)
                == (d.release_id, d.manifest_digest)
                and journal.step in _BEFORE_SWITCH
            ):
                model_dir = self.model_dir(d.model)
                serving = self.registry.get(d.model)
                if journal.target is not None and (
                    serving is None or serving.current.slot != journal.target.slot
                ):
                    discard_slot(model_dir, journal.target.slot)
                self._save(model_dir, journal.but(step="failed", reason=reason))
        self._phase_failed(d.model, d.release_id, reason, rollout_id)

    def _phase_failed(
        self, model: str, release_id: int, reason: str, rollout_id: int | None
    ) -> None:
        if self.registry.set_phase(model, release_id, "failed", reason, rollout_id=rollout_id):
            self._report()

    def rolled_back_under(self, d: DirectedRelease, rollout_id: int | None) -> bool:
        """True when this release was rolled back here under this rollout: not again."""
        with self._lock:
            journal = self._journals.get(d.model)
            return (
                journal is not None
                and journal.rolled_back_under(d.release_id, d.manifest_digest, rollout_id)
                is not None
            )

    def settle(self, model: str, desired: DesiredModel | None) -> None:
        """The director names what is served already. Take the desired state's rollout
        and health settings into an open window (they may arrive after the release did),
        and say the release is active if the status says otherwise (a refused or
        rolled-back release the server has since taken back)."""
        rollout_id = desired["rollout_id"] if desired else None
        with self._lock:
            active = self.registry.get(model)
            if active is None:
                return
            journal = self._journals.get(model)
            if (
                journal is not None
                and journal.step == "switched"
                and journal.target == active.current
                and journal.switched_at is not None
                and desired is not None
                and (journal.rollout_id, journal.health) != (rollout_id, desired["health"])
            ):
                self._save(
                    self.model_dir(model),
                    journal.but(
                        rollout_id=rollout_id,
                        health=desired["health"],
                        window_end=window_end(journal.switched_at, desired["health"]["window_s"]),
                    ),
                )
            entry = status_entry(
                model,
                active.current.release_id,
                "active",
                None,
                self._serving_committed(model),
                rollout_id,
            )
            if self.registry.status(model) == entry:
                return
            self.registry.set_phase(
                model, entry["release_id"], "active", None,
                committed=entry["committed"], rollout_id=rollout_id,
            )  # fmt: skip
        self._report()

    # -- the health window -------------------------------------------------------------------

    def check_health(self, report: bool = True) -> None:
        """Judge each open health window: commit the healthy, roll back the unhealthy."""
        changed = False
        with self._lock:
            now = self._clock()
            for model, journal in sorted(self._journals.items()):
                if journal.step != "switched" or journal.target is None:
                    continue
                active = self.registry.get(model)
                if active is None or active.current != journal.target:
                    continue
                policy = journal.health or parse_health(None, "health")
                ends = journal.window_end if journal.window_end is not None else now
                verdict = judge(policy, active.model.counter.counts(journal.crashes), now, ends)
                if verdict.state == "healthy":
                    self._commit(journal)
                    changed = True
                elif verdict.state == "unhealthy":
                    assert verdict.reason is not None
                    self._roll_back(model, journal, verdict.reason)
                    changed = True
        if changed and report:
            self._report()

    def _commit(self, journal: Journal) -> None:
        self._save(self.model_dir(journal.model), journal.but(step="committed"))
        self.registry.set_phase(
            journal.model, journal.release_id, "active", None,
            committed=True, rollout_id=journal.rollout_id,
        )  # fmt: skip
        log.info(
            "%s release %d committed: its health window passed", journal.model, journal.release_id
        )

    def _roll_back(self, model: str, journal: Journal, reason: str) -> None:
        """Back to the previous slot (verified again), or serve nothing of the model."""
        model_dir = self.model_dir(model)
        journal = self._save(
            model_dir,
            journal.but(step="rolled_back", reason=reason).remember(
                RolledBack(journal.release_id, journal.manifest_digest, journal.rollout_id, reason)
            ),
        )
        previous = journal.previous
        if previous is not None:
            try:
                path, manifest = verify_installed(model_dir, previous)
                loaded = load_model(path, manifest)
            except (ReleaseRejected, SelfTestFailed, OSError) as exc:
                reason = (
                    f"{reason}; the previous release {previous.release_id} cannot be served "
                    f"either: {exc}"
                )
            else:
                save_current(model_dir, previous)
                self.registry.activate(
                    loaded,
                    previous,
                    status=status_entry(
                        model, journal.release_id, "rolled_back", reason, False, journal.rollout_id
                    ),
                )
                log.warning(
                    "%s release %d rolled back to release %d: %s",
                    model, journal.release_id, previous.release_id, reason,
                )  # fmt: skip
                return
        else:
            reason = f"{reason}; there is no previous release to return to"
        remove_current(model_dir)
        self.registry.deactivate(
            model,
            status_entry(
                model, journal.release_id, "failed", f"{reason}: {model} is not served",
                False, journal.rollout_id,
            ),
        )  # fmt: skip
        log.error("%s release %d withdrawn: %s; %s is not served", model, journal.release_id,
                  reason, model)  # fmt: skip
