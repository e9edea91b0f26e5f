"""SDK calls for enrollment and devices: tokens, approval, decommissioning, diagnostics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from farpoint.sdk._http import _Base, segment
from farpoint.wire.device_ops import DiagnosticsOut
from farpoint.wire.devices import (
    DeviceOut,
    DeviceState,
    EnrollmentTokenCreate,
    EnrollmentTokenCreated,
)

__all__ = ["DeviceCalls"]


def _body(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json")  # type: ignore[no-any-return]


class DeviceCalls(_Base):
    def create_enrollment_token(
        self,
        labels: Mapping[str, str] | None = None,
        expires_in_s: int = 24 * 3600,
        *,
        fleet: str | None = None,
        requires_approval: bool = False,
    ) -> EnrollmentTokenCreated:
        """A single-use token a device enrolls with (it-ops). The device receives `labels`,
        and the selector labels of `fleet` when one is named; with `requires_approval` it
        waits in state `pending` until `approve_device`."""
        body = EnrollmentTokenCreate(
            labels=dict(labels or {}),
            fleet=fleet,
            requires_approval=requires_approval,
            expires_in_s=expires_in_s,
        )
        return self._one(EnrollmentTokenCreated, "POST", "enrollment-tokens", json=_body(body))

    def list_devices(self, state: DeviceState | None = None) -> list[DeviceOut]:
        """Every device, or those in `state` (`pending`: waiting for approval)."""
        return self._all(DeviceOut, "devices", params={"state": state} if state else None)

    def get_device(self, device_id: str) -> DeviceOut:
        return self._one(DeviceOut, "GET", f"devices/{segment(device_id)}")

    def approve_device(self, device_id: str) -> DeviceOut:
        """Let a pending device in (it-ops)."""
        return self._one(DeviceOut, "POST", f"devices/{segment(device_id)}/approve")

    def reject_device(self, device_id: str) -> DeviceOut:
        """Refuse a pending device for good (it-ops)."""
        return self._one(DeviceOut, "POST", f"devices/{segment(device_id)}/reject")

    def decommission_device(self, device_id: str) -> DeviceOut:
        """Refuse every request of the device from now on; its record stays (it-ops)."""
        return self._one(DeviceOut, "POST", f"devices/{segment(device_id)}/decommission")

    def request_diagnostics(self, device_id: str) -> DiagnosticsOut:
        """Ask the device for its recent logs and last errors (it-ops); it uploads them at
        its next sync. Asking again before it answered returns the same request."""
        return self._one(DiagnosticsOut, "POST", f"devices/{segment(device_id)}/diagnostics")

    def list_diagnostics(self, device_id: str) -> list[DiagnosticsOut]:
        """The device's newest diagnostics requests, with what it uploaded (it-ops)."""
        found = self._json("GET", f"devices/{segment(device_id)}/diagnostics")
        return [DiagnosticsOut.model_validate(d) for d in found]

    def wait_diagnostics(
        self, device_id: str, diagnostics_id: int, timeout_s: float = 60.0, poll_s: float = 1.0
    ) -> DiagnosticsOut:
        """Poll until the device answered request `diagnostics_id`; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout_s
        while True:
            for d in self.list_diagnostics(device_id):
                if d.id == diagnostics_id and d.uploaded_at is not None:
                    return d
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"device {device_id} has not answered diagnostics request "
                    f"{diagnostics_id} after {timeout_s:g} s; it uploads at its next sync "
                    "(is it online?)"
                )
            time.sleep(poll_s)
