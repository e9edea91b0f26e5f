"""SDK calls for device telemetry: one device's windows, and sums over releases and fleets."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from farpoint.sdk._http import _Base, segment
from farpoint.wire.telemetry import DeviceTelemetry, StoredWindow, TelemetrySummary

__all__ = ["TelemetryCalls"]


def _range(since: datetime | None, until: datetime | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if since is not None:
        params["since"] = since.isoformat()
    if until is not None:
        params["until"] = until.isoformat()
    return params


class TelemetryCalls(_Base):
    def device_telemetry(
        self,
        device_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> DeviceTelemetry:
        """A device's telemetry windows ending in (since, until] (default: the last 24 h),
        oldest first: all of them, or the first `limit`."""
        path = f"devices/{segment(device_id)}/telemetry"
        items: list[StoredWindow] = []
        cursor: str | None = None
        page: DeviceTelemetry | None = None
        while limit is None or len(items) < limit:
            want = self.page_size if limit is None else min(self.page_size, limit - len(items))
            params = {**_range(since, until), "limit": want}
            if cursor is not None:
                params["cursor"] = cursor
            page = self._one(DeviceTelemetry, "GET", path, params=params)
            items.extend(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
        assert page is not None
        return page.model_copy(update={"items": items, "next_cursor": cursor})

    def telemetry_summary(
        self,
        *,
        release_id: int | None = None,
        fleet: str | None = None,
        model: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> TelemetrySummary:
        """Counts summed per model and release over a release's windows and/or a fleet's
        devices (default range: the last 24 h)."""
        params = _range(since, until)
        for key, value in (("release_id", release_id), ("fleet", fleet), ("model", model)):
            if value is not None:
                params[key] = value
        return self._one(TelemetrySummary, "GET", "telemetry/summary", params=params)
