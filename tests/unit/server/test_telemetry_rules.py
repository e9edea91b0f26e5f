"""Pure rules of the telemetry room: summaries from summed counts, rows from records."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from farpoint.core.telemetry import LATENCY_BUCKETS
from farpoint.server.telemetry import rules
from farpoint.wire.telemetry import TelemetryWindow


def test_a_quantile_above_the_last_edge_is_null_and_the_last_count_says_so() -> None:
    s = rules.latency_summary({LATENCY_BUCKETS - 1: 3, 0: 1})
    assert s.counts[-1] == 3 and s.p50_ms is None and s.p99_ms is None
    assert rules.latency_summary({}).p50_ms is None
    with pytest.raises(ValueError, match="outside"):
        rules.latency_summary({LATENCY_BUCKETS: 1})


def test_feedback_cells_become_overall_and_per_group_accuracy() -> None:
    t = rules.ModelTotals(
        model="m",
        release_id=1,
        requests=4,
        errors=1,
        feedback=[
            (rules.OVERALL, "", "1", "1", 3),
            (rules.OVERALL, "", "0", "1", 1),
            ("sex", "F", "1", "1", 2),
            ("sex", "F", "0", "1", 1),
            ("sex", "M", "1", "1", 1),
        ],
    )
    out = rules.model_summary(t)
    assert out.error_rate == 0.25
    assert (out.feedback.count, out.feedback.correct, out.feedback.accuracy) == (4, 3, 0.75)
    by_group = {(g.attribute, g.group): (g.count, g.correct) for g in out.feedback.groups}
    assert by_group == {("sex", "F"): (3, 2), ("sex", "M"): (1, 1)}


def test_records_become_narrow_rows_and_overall_cells_keep_apart_from_groups() -> None:
    w = TelemetryWindow.model_validate(
        {
            "seq": 4,
            "start": "2026-12-01T00:00:00Z",
            "end": "2026-12-01T00:01:00Z",
            "models": {
                "m": {
                    "release_id": 2,
                    "requests": 2,
                    "latency_ms": [0, 2] + [0] * (LATENCY_BUCKETS - 2),
                    "predictions": {"a": 2, "b": 0},
                    "feedback": [
                        {"attribute": "sex", "group": "", "label": "a", "predicted": "a",
                         "count": 1}
                    ],
                    "confusion": [{"label": "a", "predicted": "a", "count": 1}],
                }
            },
        }
    )  # fmt: skip
    rows = rules.rows_of("dev", [w], datetime.now(UTC))
    assert [(r["seq"], r["model"]) for r in rows.models] == [(4, "m")]
    assert [(r["bucket"], r["count"]) for r in rows.latency] == [(1, 2)]
    assert [r["label"] for r in rows.predictions] == ["a"]  # zero counts are not stored
    assert sorted((r["attribute"], r["group_name"]) for r in rows.feedback) == [
        ("", ""),
        ("sex", ""),
    ]
