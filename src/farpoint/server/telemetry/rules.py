"""Pure rules of the telemetry room: records to rows, summed counts to summaries.

Plain functions over plain data, tested without a database; the counting rules
themselves are `farpoint.core.telemetry`, shared with the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from farpoint.core.telemetry import (
    LATENCY_BUCKETS,
    LATENCY_EDGES_MS,
    accuracy,
    correct_count,
    histogram_quantile,
)
from farpoint.wire.telemetry import (
    ConfusionCount,
    FeedbackSummary,
    GroupSummary,
    LatencySummary,
    ModelSummary,
    TelemetryWindow,
)

__all__ = ["OVERALL", "ModelTotals", "Rows", "latency_summary", "model_summary", "rows_of"]

OVERALL = ""
"""The attribute stored for a window's overall confusion cells."""


@dataclass
class Rows:
    """Plain rows of each table, for one executemany each."""

    windows: list[dict[str, Any]]
    models: list[dict[str, Any]]
    latency: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    feedback: list[dict[str, Any]]


def rows_of(device_id: str, windows: Iterable[TelemetryWindow], now: datetime) -> Rows:
    """The rows that store some windows of one device."""
    rows = Rows([], [], [], [], [])
    for w in windows:
        key = {"device_id": device_id, "seq": w.seq}
        rows.windows.append(
            {**key, "start_at": w.start, "end_at": w.end, "received_at": now,
             "resources": dict(w.resources)}
        )  # fmt: skip
        for model, m in w.models.items():
            mk = {**key, "model": model}
            rows.models.append(
                {**mk, "release_id": m.release_id, "end_at": w.end, "requests": m.requests,
                 "inferences": m.inferences, "errors": m.errors, "input_errors": m.input_errors}
            )  # fmt: skip
            rows.latency.extend(
                {**mk, "bucket": i, "count": n} for i, n in enumerate(m.latency_ms) if n
            )
            rows.predictions.extend(
                {**mk, "label": label, "count": n} for label, n in m.predictions.items() if n
            )
            cells: dict[tuple[str, str, str, str], int] = {}
            for fb in m.feedback:
                k = (fb.attribute, fb.group, fb.label, fb.predicted)
                cells[k] = cells.get(k, 0) + fb.count
            for c in m.confusion:
                k = (OVERALL, "", c.label, c.predicted)
                cells[k] = cells.get(k, 0) + c.count
            rows.feedback.extend(
                {**mk, "attribute": a, "group_name": g, "label": lb, "predicted": p, "count": n}
                for (a, g, lb, p), n in cells.items()
                if n
            )
    return rows


@dataclass
class ModelTotals:
    """Summed counts of one model and release, as the repository's GROUP BYs give them."""

    model: str
    release_id: int | None
    devices: int = 0
    windows: int = 0
    requests: int = 0
    inferences: int = 0
    errors: int = 0
    input_errors: int = 0
    latency: dict[int, int] = field(default_factory=dict)
    predictions: dict[str, int] = field(default_factory=dict)
    feedback: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    """(attribute, group, label, predicted, count); attribute OVERALL for every feedback."""


def _quantile(counts: list[int], q: float) -> float | None:
    value = histogram_quantile(counts, q)
    return None if value is None or value == float("inf") else value


def latency_summary(buckets: Mapping[int, int]) -> LatencySummary:
    counts = [0] * LATENCY_BUCKETS
    for i, n in buckets.items():
        if not 0 <= i < LATENCY_BUCKETS:
            raise ValueError(f"latency bucket {i} is outside the {LATENCY_BUCKETS} buckets")
        counts[i] += n
    return LatencySummary(
        edges_ms=list(LATENCY_EDGES_MS),
        counts=counts,
        p50_ms=_quantile(counts, 0.50),
        p95_ms=_quantile(counts, 0.95),
        p99_ms=_quantile(counts, 0.99),
    )


def _confusion(cells: Iterable[tuple[str, str, int]]) -> list[ConfusionCount]:
    return [
        ConfusionCount(label=lb, predicted=p, count=n)
        for lb, p, n in sorted(cells, key=lambda c: (c[0], c[1]))
    ]


def _feedback_summary(cells: list[tuple[str, str, str, str, int]]) -> FeedbackSummary:
    overall = [(lb, p, n) for a, _g, lb, p, n in cells if a == OVERALL]
    per_group: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
    for a, g, lb, p, n in cells:
        if a != OVERALL:
            per_group.setdefault((a, g), []).append((lb, p, n))
    groups = []
    for (a, g), group_cells in sorted(per_group.items()):
        seen, right = correct_count(group_cells)
        groups.append(
            GroupSummary(
                attribute=a,
                group=g,
                count=seen,
                correct=right,
                accuracy=accuracy(group_cells),
                confusion=_confusion(group_cells),
            )
        )
    seen, right = correct_count(overall)
    return FeedbackSummary(
        count=seen,
        correct=right,
        accuracy=accuracy(overall),
        confusion=_confusion(overall),
        groups=groups,
    )


def model_summary(t: ModelTotals) -> ModelSummary:
    return ModelSummary(
        model=t.model,
        release_id=t.release_id,
        devices=t.devices,
        windows=t.windows,
        requests=t.requests,
        inferences=t.inferences,
        errors=t.errors,
        input_errors=t.input_errors,
        error_rate=t.errors / t.requests if t.requests else None,
        latency=latency_summary(t.latency),
        predictions=dict(sorted(t.predictions.items())),
        feedback=_feedback_summary(t.feedback),
    )
