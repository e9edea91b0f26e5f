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

__all__ = ["ActiveModel", "Registry"]


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


class Registry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[str, ActiveModel] = {}
        self._status: dict[str, DeviceModelStatus] = {}

    def activate(self, model: LoadedModel, current: CurrentRelease) -> None:
        with self._lock:
            self._active[current.model] = ActiveModel(model, current)
            self._status[current.model] = {
                "model": current.model,
                "release_id": current.release_id,
                "phase": "active",
                "error": None,
            }

    def get(self, name: str) -> ActiveModel | None:
        with self._lock:
            return self._active.get(name)

    def active(self) -> list[ActiveModel]:
        with self._lock:
            return [self._active[k] for k in sorted(self._active)]

    def set_phase(
        self, model: str, release_id: int | None, phase: Phase, error: str | None = None
    ) -> bool:
        """Record a phase; True when it differs from the one recorded before."""
        entry: DeviceModelStatus = {
            "model": model,
            "release_id": release_id,
            "phase": phase,
            "error": error,
        }
        with self._lock:
            changed = self._status.get(model) != entry
            self._status[model] = entry
            return changed

    def statuses(self) -> list[DeviceModelStatus]:
        with self._lock:
            return [self._status[k].copy() for k in sorted(self._status)]

    def healthy(self) -> bool:
        """False while any model is failed: a corrupt slot, or a release that did not apply."""
        with self._lock:
            return all(s["phase"] != "failed" for s in self._status.values())
