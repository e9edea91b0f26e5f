"""All SQL for telemetry windows and their counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
)
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
    "dropped_total",
    "insert_rows",
    "stored_seqs",
    "summary_rows",
    "window_children",
    "windows",
]


_STORED_SEQS = select(TelemetryWindowRow.seq).where(
    TelemetryWindowRow.device_id == bindparam("device_id"),
    TelemetryWindowRow.seq.in_(bindparam("seqs", expanding=True)),
)
"""Built once: every status report runs it."""


def stored_seqs(s: Session, device_id: str, seqs: Collection[int]) -> set[int]:
    if not seqs:
        return set()
    return set(s.scalars(_STORED_SEQS, {"device_id": device_id, "seqs": list(seqs)}).all())


_INSERTS = {
    name: insert(table.__table__)  # type: ignore[arg-type]
    for name, table in (
        ("windows", TelemetryWindowRow),
        ("models", TelemetryModel),
        ("latency", TelemetryLatency),
        ("predictions", TelemetryPrediction),
        ("feedback", TelemetryFeedback),
    )
}
"""Core inserts built once (every status report runs them; the ORM's bulk path cost more
than the SQL)."""


def insert_rows(s: Session, rows: Rows) -> None:
    """Parents before children (foreign keys); one statement per table."""
    for name, values in (
        ("windows", rows.windows),
        ("models", rows.models),
        ("latency", rows.latency),
        ("predictions", rows.predictions),
        ("feedback", rows.feedback),
    ):
        if values:
            s.execute(_INSERTS[name], values)


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


def summary_rows(s: Session, f: Filter) -> list[tuple[Any, ...]]:
    """Every sum a summary needs, from one statement, so that windows arriving meanwhile
    never make one part of it disagree with another. Rows are
    (kind, model, release, a, b, c, d, n1..n6):

    - "devices": n1 devices in all;
    - "model": n1 devices, n2 windows, n3 requests, n4 inferences, n5 errors,
      n6 input errors;
    - "latency": a bucket, n1 count;  "prediction": a label, n1 count;
    - "feedback": a attribute ('' overall), b group, c label, d predicted, n1 count.
    """
    m = TelemetryModel
    text = String(64)
    where = f.conditions()

    def head(kind: str, *keys: Any) -> list[Any]:
        padded = [cast(k, text) for k in keys] + [cast(null(), text)] * (4 - len(keys))
        return [literal(kind, text).label("kind"), m.model, m.release_id, *padded]

    def tail(*sums: Any) -> list[Any]:
        return [*sums, *[cast(null(), BigInteger)] * (6 - len(sums))]

    parts = [
        select(
            literal("devices", text).label("kind"),
            cast(null(), String(64)),
            cast(null(), Integer),
            *[cast(null(), text)] * 4,
            *tail(func.count(func.distinct(m.device_id))),
        ).where(*where),
        select(
            *head("model"),
            *tail(
                func.count(func.distinct(m.device_id)),
                func.count(),
                func.sum(m.requests),
                func.sum(m.inferences),
                func.sum(m.errors),
                func.sum(m.input_errors),
            ),
        )
        .where(*where)
        .group_by(m.model, m.release_id),
    ]
    lat, pred, fb = TelemetryLatency, TelemetryPrediction, TelemetryFeedback
    parts.append(
        select(*head("latency", lat.bucket), *tail(func.sum(lat.count)))
        .join(lat, _joined(lat))
        .where(*where)
        .group_by(m.model, m.release_id, lat.bucket)
    )
    parts.append(
        select(*head("prediction", pred.label), *tail(func.sum(pred.count)))
        .join(pred, _joined(pred))
        .where(*where)
        .group_by(m.model, m.release_id, pred.label)
    )
    parts.append(
        select(
            *head("feedback", fb.attribute, fb.group_name, fb.label, fb.predicted),
            *tail(func.sum(fb.count)),
        )
        .join(fb, _joined(fb))
        .where(*where)
        .group_by(m.model, m.release_id, fb.attribute, fb.group_name, fb.label, fb.predicted)
    )
    return [tuple(r) for r in s.execute(union_all(*parts)).all()]
