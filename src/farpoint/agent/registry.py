"""The models this device serves and the phase of each, shared by the sync loop, the
local API and the heartbeat. Activation swaps a model's session under a lock, so a
request sees either the old release or the new one, whole."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from .payloads import DeviceModelStatus, Phase
from .runtime import LoadedModel
from .state import CurrentRelease

__all__ = ["ActiveModel", "Registry", "status_entry"]


@dataclass(frozen=True)
class ActiveModel:
    model: LoadedModel
    current: CurrentRelease

    def describe(self) -> dict[str, Any]:
        m = self.model.manifest
        return {
            "model": m["model"],
            "release_id": self.current.release_id,
            "model_ref": m["model_ref"],
            "inputs": m["signature"]["inputs"],
            "outputs": m["signature"]["outputs"],
            "classes": m["classes"],
        }


def status_entry(
    model: str,
    release_id: int | None,
    phase: Phase,
    error: str | None,
    committed: bool,
    rollout_id: int | None,
) -> DeviceModelStatus:
    return {
        "model": model,
        "release_id": release_id,
        "phase": phase,
        "error": error,
        "committed": committed,
        "rollout_id": rollout_id,
    }


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, ActiveModel] = {}
        self._status: dict[str, DeviceModelStatus] = {}

    def activate(
        self,
        model: LoadedModel,
        current: CurrentRelease,
        *,
        committed: bool = False,
        rollout_id: int | None = None,
        status: DeviceModelStatus | None = None,
    ) -> None:
        """Serve `model` from now on; its status becomes `status`, by default `active`."""
        entry = status or status_entry(
            current.model, current.release_id, "active", None, committed, rollout_id
        )
        with self._lock:
            self._active[current.model] = ActiveModel(model, current)
            self._status[current.model] = entry

    def deactivate(self, name: str, status: DeviceModelStatus) -> None:
        """Stop serving `name` (its predict requests get 404 from now on)."""
        with self._lock:
            self._active.pop(name, None)
            self._status[name] = status

    def get(self, name: str) -> ActiveModel | None:
        with self._lock:
            return self._active.get(name)

    def active(self) -> list[ActiveModel]:
        with self._lock:
            return [self._active[k] for k in sorted(self._active)]

    def set_phase(
        self,
        model: str,
        release_id: int | None,
        phase: Phase,
        error: str | None = None,
        *,
        committed: bool = False,
        rollout_id: int | None = None,
    ) -> bool:
        """Record a phase; True when it differs from the one recorded before."""
        entry = status_entry(model, release_id, phase, error, committed, rollout_id)
        with self._lock:
            changed = self._status.get(model) != entry
            self._status[model] = entry
            return changed

    def status(self, name: str) -> DeviceModelStatus | None:
        with self._lock:
            entry = self._status.get(name)
            return None if entry is None else entry.copy()

    def statuses(self) -> list[DeviceModelStatus]:
        """Each model's status, with `serving_release_id`: what it serves now, if anything."""
        with self._lock:
            out = []
            for name in sorted(self._status):
                entry = self._status[name].copy()
                active = self._active.get(name)
                entry["serving_release_id"] = active.current.release_id if active else None
                out.append(entry)
            return out

    def healthy(self) -> bool:
        """False while any model is failed: a corrupt slot, or a release that did not apply."""
        with self._lock:
            return all(s["phase"] != "failed" for s in self._status.values())
