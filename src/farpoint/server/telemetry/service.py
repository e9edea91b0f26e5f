"""Telemetry use cases: store what devices report, read it back per device, sum it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from farpoint.core.errors import BadRequest, NotFound
from farpoint.core.telemetry import LATENCY_BUCKETS
from farpoint.server.devices import repository as devices_repo
from farpoint.server.fleets import repository as fleets_repo
from farpoint.server.fleets.rules import selects
from farpoint.server.releases import repository as releases_repo
from farpoint.server.telemetry import repository as repo
from farpoint.server.telemetry import rules
from farpoint.wire.telemetry import (
    ConfusionCount,
    DeviceTelemetry,
    FeedbackCount,
    ModelWindow,
    StoredWindow,
    TelemetrySummary,
    TelemetryWindow,
)

__all__ = ["DEFAULT_RANGE", "device_telemetry", "store", "summary"]

DEFAULT_RANGE = timedelta(hours=24)
"""What a read covers when it names no `since`."""


def store(
    s: Session, device_id: str, windows: Sequence[TelemetryWindow], dropped: int, now: datetime
) -> int:
    """Keep each (device, seq) once: a window already stored (a retry after a lost
    answer) counts nothing twice. Returns how many windows were new."""
    if dropped:
        repo.add_dropped(s, device_id, dropped, now)
    if not windows:
        return 0
    known = repo.stored_seqs(s, device_id, {w.seq for w in windows})
    fresh: dict[int, TelemetryWindow] = {}
    for w in windows:
        if w.seq not in known and w.seq not in fresh:
            fresh[w.seq] = w
    if fresh:
        repo.insert_rows(s, rules.rows_of(device_id, fresh.values(), now))
    return len(fresh)


def _range(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    until = until or now
    since = since or until - DEFAULT_RANGE
    if since >= until:
        raise BadRequest(f"since ({since.isoformat()}) must be before until ({until.isoformat()})")
    return since, until


def device_telemetry(
    s: Session,
    device_id: str,
    since: datetime | None,
    until: datetime | None,
    after_seq: int,
    limit: int,
    now: datetime,
) -> DeviceTelemetry:
    """A device's windows ending in (since, until], oldest first, a page at a time."""
    if devices_repo.device_by_id(s, device_id) is None:
        raise NotFound(f"device {device_id} does not exist")
    since, until = _range(since, until, now)
    rows = repo.windows(s, device_id, since, until, after_seq, limit)
    seqs = [r.seq for r in rows]
    models, latency, predictions, feedback = repo.window_children(s, device_id, seqs)
    per_window: dict[int, dict[str, ModelWindow]] = {seq: {} for seq in seqs}
    for m in models:
        per_window[m.seq][m.model] = ModelWindow(
            release_id=m.release_id,
            requests=m.requests,
            inferences=m.inferences,
            errors=m.errors,
            input_errors=m.input_errors,
        )
    for lat in latency:
        mw = per_window[lat.seq][lat.model]
        if not mw.latency_ms:
            mw.latency_ms = [0] * LATENCY_BUCKETS
        mw.latency_ms[lat.bucket] = lat.count
    for p in predictions:
        per_window[p.seq][p.model].predictions[p.label] = p.count
    for fb in feedback:
        mw = per_window[fb.seq][fb.model]
        if fb.attribute == rules.OVERALL:
            cell = ConfusionCount(label=fb.label, predicted=fb.predicted, count=fb.count)
            mw.confusion.append(cell)
        else:
            mw.feedback.append(
                FeedbackCount(
                    attribute=fb.attribute,
                    group=fb.group_name,
                    label=fb.label,
                    predicted=fb.predicted,
                    count=fb.count,
                )
            )
    items = [
        StoredWindow(
            seq=r.seq,
            start=r.start_at,
            end=r.end_at,
            models=per_window[r.seq],
            resources=r.resources,
            received_at=r.received_at,
        )
        for r in rows
    ]
    return DeviceTelemetry(
        device_id=device_id,
        items=items,
        next_cursor=str(seqs[-1]) if len(seqs) == limit and seqs else None,
        dropped_total=repo.dropped_total(s, device_id),
    )


def _fleet_devices(s: Session, fleet: str) -> list[str] | None:
    """The devices a fleet selects now (None: every device, an empty selector)."""
    row = fleets_repo.fleet_by_name(s, fleet)
    if row is None:
        raise NotFound(f"fleet {fleet!r} does not exist")
    if not row.selector:
        return None
    return [
        device_id
        for device_id, labels in devices_repo.all_device_labels(s)
        if selects(row.selector, labels)
    ]


def summary(
    s: Session,
    release_id: int | None,
    fleet: str | None,
    model: str | None,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> TelemetrySummary:
    """Every count of the windows ending in (since, until] summed exactly per model and
    release, over one release's windows, a fleet's devices (those it selects now), or
    both; latency quantiles from the summed histograms, accuracy from the summed cells."""
    since, until = _range(since, until, now)
    if release_id is not None and releases_repo.release_by_id(s, release_id) is None:
        raise NotFound(f"release {release_id} does not exist")
    device_ids = _fleet_devices(s, fleet) if fleet is not None else None
    f = repo.Filter(since, until, release_id, model, device_ids)
    totals: dict[tuple[str, int | None], rules.ModelTotals] = {}
    devices_seen = 0
    if device_ids is None or device_ids:
        rows = repo.summary_rows(s, f)
        for kind, name, rel, *_, n1, n2, n3, n4, n5, n6 in rows:
            if kind == "devices":
                devices_seen = int(n1 or 0)
            elif kind == "model":
                totals[(name, rel)] = rules.ModelTotals(
                    model=name,
                    release_id=rel,
                    devices=int(n1),
                    windows=int(n2),
                    requests=int(n3 or 0),
                    inferences=int(n4 or 0),
                    errors=int(n5 or 0),
                    input_errors=int(n6 or 0),
                )
        for kind, name, rel, a, b, c, d, n1, *_ in rows:
            if kind == "latency":
                totals[(name, rel)].latency[int(a)] = int(n1)
            elif kind == "prediction":
                totals[(name, rel)].predictions[a] = int(n1)
            elif kind == "feedback":
                totals[(name, rel)].feedback.append((a, b, c, d, int(n1)))
    ordered = sorted(totals.values(), key=lambda t: (t.model, t.release_id or 0))
    return TelemetrySummary(
        release_id=release_id,
        fleet=fleet,
        model=model,
        since=since,
        until=until,
        devices=devices_seen,
        models=[rules.model_summary(t) for t in ordered],
    )
