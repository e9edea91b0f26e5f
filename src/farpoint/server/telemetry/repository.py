"""All SQL for telemetry windows and their counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, select
from sqlalchemy.orm import Session

from farpoint.server.telemetry.rules import Rows
from farpoint.server.telemetry.tables import (
    TelemetryDevice,
    TelemetryFeedback,
    TelemetryLatency,
    TelemetryModel,
    TelemetryPrediction,
    TelemetryWindowRow,
)

__all__ = [
    "Filter",
    "add_dropped",
    "count_devices",
    "dropped_total",
    "insert_rows",
    "stored_seqs",
    "sum_feedback",
    "sum_latency",
    "sum_models",
    "sum_predictions",
    "window_children",
    "windows",
]


def stored_seqs(s: Session, device_id: str, seqs: Collection[int]) -> set[int]:
    if not seqs:
        return set()
    q = select(TelemetryWindowRow.seq).where(
        TelemetryWindowRow.device_id == device_id, TelemetryWindowRow.seq.in_(list(seqs))
    )
    return set(s.scalars(q).all())


def insert_rows(s: Session, rows: Rows) -> None:
    """Parents before children (foreign keys); one statement per table."""
    for table, values in (
        (TelemetryWindowRow, rows.windows),
        (TelemetryModel, rows.models),
        (TelemetryLatency, rows.latency),
        (TelemetryPrediction, rows.predictions),
        (TelemetryFeedback, rows.feedback),
    ):
        if values:
            s.execute(insert(table), values)


def add_dropped(s: Session, device_id: str, dropped: int, now: datetime) -> None:
    row = s.get(TelemetryDevice, device_id)
    if row is None:
        s.add(TelemetryDevice(device_id=device_id, dropped_total=dropped, updated_at=now))
    else:
        row.dropped_total += dropped
        row.updated_at = now


def dropped_total(s: Session, device_id: str) -> int:
    row = s.get(TelemetryDevice, device_id)
    return 0 if row is None else row.dropped_total


def windows(
    s: Session, device_id: str, since: datetime, until: datetime, after_seq: int, limit: int
) -> Sequence[TelemetryWindowRow]:
    """A device's windows ending in (since, until], by seq."""
    w = TelemetryWindowRow
    q = (
        select(w)
        .where(w.device_id == device_id, w.end_at > since, w.end_at <= until, w.seq > after_seq)
        .order_by(w.seq)
        .limit(limit)
    )
    return s.scalars(q).all()


def window_children(
    s: Session, device_id: str, seqs: Sequence[int]
) -> tuple[
    Sequence[TelemetryModel],
    Sequence[TelemetryLatency],
    Sequence[TelemetryPrediction],
    Sequence[TelemetryFeedback],
]:
    """Every count row of some windows of one device."""
    if not seqs:
        return [], [], [], []
    out: list[Any] = []
    for table in (TelemetryModel, TelemetryLatency, TelemetryPrediction, TelemetryFeedback):
        q = select(table).where(table.device_id == device_id, table.seq.in_(list(seqs)))
        out.append(s.scalars(q).all())
    return out[0], out[1], out[2], out[3]


@dataclass(frozen=True)
class Filter:
    """Which model windows a summary sums: those ending in (since, until]."""

    since: datetime
    until: datetime
    release_id: int | None = None
    model: str | None = None
    device_ids: Collection[str] | None = None
    """None: every device."""

    def conditions(self) -> list[ColumnElement[bool]]:
        m = TelemetryModel
        out = [m.end_at > self.since, m.end_at <= self.until]
        if self.release_id is not None:
            out.append(m.release_id == self.release_id)
        if self.model is not None:
            out.append(m.model == self.model)
        if self.device_ids is not None:
            out.append(m.device_id.in_(list(self.device_ids)))
        return out


def _joined(child: Any) -> ColumnElement[bool]:
    m = TelemetryModel
    return and_(child.device_id == m.device_id, child.seq == m.seq, child.model == m.model)


def sum_models(s: Session, f: Filter) -> list[tuple[Any, ...]]:
    """(model, release, devices, windows, requests, inferences, errors, input_errors)."""
    m = TelemetryModel
    q = (
        select(
            m.model,
            m.release_id,
            func.count(func.distinct(m.device_id)),
            func.count(),
            func.sum(m.requests),
            func.sum(m.inferences),
            func.sum(m.errors),
            func.sum(m.input_errors),
        )
        .where(*f.conditions())
        .group_by(m.model, m.release_id)
    )
    return [tuple(r) for r in s.execute(q).all()]


def count_devices(s: Session, f: Filter) -> int:
    m = TelemetryModel
    q = select(func.count(func.distinct(m.device_id))).where(*f.conditions())
    return int(s.scalar(q) or 0)


def sum_latency(s: Session, f: Filter) -> list[tuple[Any, ...]]:
    """(model, release, bucket, count)."""
    m, c = TelemetryModel, TelemetryLatency
    q = (
        select(m.model, m.release_id, c.bucket, func.sum(c.count))
        .join(c, _joined(c))
        .where(*f.conditions())
        .group_by(m.model, m.release_id, c.bucket)
    )
    return [tuple(r) for r in s.execute(q).all()]


def sum_predictions(s: Session, f: Filter) -> list[tuple[Any, ...]]:
    """(model, release, label, count)."""
    m, c = TelemetryModel, TelemetryPrediction
    q = (
        select(m.model, m.release_id, c.label, func.sum(c.count))
        .join(c, _joined(c))
        .where(*f.conditions())
        .group_by(m.model, m.release_id, c.label)
    )
    return [tuple(r) for r in s.execute(q).all()]


def sum_feedback(s: Session, f: Filter) -> list[tuple[Any, ...]]:
    """(model, release, attribute, group, label, predicted, count); attribute '' is overall."""
    m, c = TelemetryModel, TelemetryFeedback
    q = (
        select(
            m.model,
            m.release_id,
            c.attribute,
            c.group_name,
            c.label,
            c.predicted,
            func.sum(c.count),
        )
        .join(c, _joined(c))
        .where(*f.conditions())
        .group_by(m.model, m.release_id, c.attribute, c.group_name, c.label, c.predicted)
    )
    return [tuple(r) for r in s.execute(q).all()]
