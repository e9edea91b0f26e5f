"""The agent's counters: windows, readings since a time, and the records they make."""

from __future__ import annotations

import json
import typing
from datetime import UTC, datetime

import pytest

from farpoint.agent import telemetry
from farpoint.agent.telemetry import (
    MAX_FEEDBACK_CELLS,
    MAX_PREDICTED_LABELS,
    OTHER_LABEL,
    FeedbackRefused,
    InferenceStats,
    pack_windows,
)
from farpoint.core.telemetry import LATENCY_BUCKETS, LATENCY_EDGES_MS, latency_bucket


class _Clock:
    def __init__(self, t: float = 5000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _stats(history_s: int = 3600) -> tuple[InferenceStats, _Clock]:
    clock = _Clock()
    return InferenceStats(clock=clock, history_s=history_s), clock


def test_a_window_counts_requests_rows_failures_input_errors_latency_and_labels() -> None:
    stats, _ = _stats()
    stats.record_prediction("churn", 7, 0.0004, ["1", "0", "1"])
    stats.record_prediction("churn", 7, 0.003, ["0"])
    stats.record_failure("churn", 7)
    stats.record_input_error("churn", 7)
    [(model, w)] = stats.close_window()
    assert model == "churn"
    assert (w["release_id"], w["requests"], w["inferences"]) == (7, 4, 4)
    assert (w["errors"], w["input_errors"]) == (1, 1)
    expected = [0] * LATENCY_BUCKETS
    expected[latency_bucket(0.4)] += 1
    expected[latency_bucket(3.0)] += 1
    assert w["latency_ms"] == expected
    assert w["predictions"] == {"1": 2, "0": 2}
    # the next window starts from nothing; the totals go on
    assert stats.close_window() == []
    assert stats.totals("churn").requests == 4
    assert stats.snapshot()["churn"]["inferences"] == 4


def test_two_releases_of_a_model_in_one_window_are_counted_apart() -> None:
    stats, _ = _stats()
    stats.record_prediction("churn", 1, 0.001, ["0"])
    stats.record_prediction("churn", 2, 0.001, ["1", "1"])
    windows = stats.close_window()
    assert sorted((m, w["release_id"], w["inferences"]) for m, w in windows) == [
        ("churn", 1, 1),
        ("churn", 2, 2),
    ]
    records = pack_windows(windows, "a", "b", {"cpu_percent": 1.0}, 60_000)
    # a record names each model once: the switch makes two records of the same interval
    assert len(records) == 2
    assert [list(r["models"]) for r in records] == [["churn"], ["churn"]]
    assert records[0]["resources"] == {"cpu_percent": 1.0} and records[1]["resources"] == {}


def test_records_are_split_to_fit_the_size_they_are_given() -> None:
    stats, _ = _stats()
    for i in range(20):
        stats.record_prediction(f"model-{i:02d}", 1, 0.001, [f"label-{j}" for j in range(30)])
    windows = stats.close_window()
    records = pack_windows(windows, "s", "e", {}, 4000)
    assert len(records) > 1
    assert all(len(json.dumps(r, separators=(",", ":"))) + 16 <= 4000 for r in records)
    assert sorted(m for r in records for m in r["models"]) == [f"model-{i:02d}" for i in range(20)]
    # nothing counted still makes one record: resources, while the device idles
    assert pack_windows([], "s", "e", {"rss_bytes": 1}, 4000) == [
        {"start": "s", "end": "e", "models": {}, "resources": {"rss_bytes": 1}}
    ]


def test_predicted_labels_are_bounded_per_window() -> None:
    stats, _ = _stats()
    stats.record_prediction("m", 1, 0.001, [str(i) for i in range(MAX_PREDICTED_LABELS + 10)])
    [(_, w)] = stats.close_window()
    assert len(w["predictions"]) == MAX_PREDICTED_LABELS
    assert w["predictions"][OTHER_LABEL] == 11
    assert sum(w["predictions"].values()) == MAX_PREDICTED_LABELS + 10 == w["inferences"]


def test_feedback_cells_are_bounded_per_window_and_the_next_window_takes_more() -> None:
    stats, _ = _stats()
    groups = [(f"a{i}", f"g{g}") for i in range(8) for g in range(16)]
    # one overall cell (true 1, predicted 1), then one cell per new group
    for name, group in groups[: MAX_FEEDBACK_CELLS - 1]:
        stats.record_feedback("m", 1, "1", "1", {name: group})
    name, group = groups[MAX_FEEDBACK_CELLS - 1]
    with pytest.raises(FeedbackRefused) as refused:
        stats.record_feedback("m", 1, "1", "1", {name: group})
    assert refused.value.retry_later and "try again" in refused.value.detail
    stats.record_feedback("m", 1, "1", "1", {"a0": "g0"})  # a cell it holds: counted
    [(_, w)] = stats.close_window()
    assert len(w["feedback"]) + len(w["confusion"]) == MAX_FEEDBACK_CELLS
    assert w["confusion"] == [{"label": "1", "predicted": "1", "count": MAX_FEEDBACK_CELLS}]
    stats.record_feedback("m", 1, "1", "1", {name: group})  # a new window has room
    with pytest.raises(FeedbackRefused) as too_many:
        stats.record_feedback("m", 1, "1", "1", {"ninth": "x"})
    assert not too_many.value.retry_later and "at most 8" in too_many.value.detail


def test_since_reads_one_release_from_a_time_on() -> None:
    stats, clock = _stats()
    stats.record_prediction("churn", 1, 0.001, ["0"])
    clock.t += 10
    t0 = stats.now()
    stats.record_prediction("churn", 1, 0.001, ["0"])  # same second, the old release
    stats.record_prediction("churn", 2, 0.0002, ["1"])
    clock.t += 1
    stats.record_failure("churn", 2)
    stats.record_input_error("churn", 2)
    stats.record_prediction("churn", 2, 0.0003, ["1"])
    new = stats.since("churn", t0, release_id=2)
    assert (new.requests, new.inferences, new.errors, new.input_errors) == (4, 2, 1, 1)
    assert new.error_rate == 0.25 and new.complete
    assert new.latency_p95_ms == pytest.approx(0.3)  # exact: every request is kept
    both = stats.since("churn", t0)
    assert both.requests == 5
    assert stats.since("churn", t0 + 1, release_id=2).requests == 3
    assert stats.since("fraud", t0).requests == 0
    # totals and their differences are exact over any distance
    mark = stats.totals("churn", 2)
    stats.record_prediction("churn", 2, 0.004, ["1"])
    delta = stats.totals("churn", 2).minus(mark)
    assert (delta.requests, delta.inferences) == (1, 1)
    assert delta.latency_p95_ms == LATENCY_EDGES_MS[latency_bucket(4.0)]


def test_since_says_when_it_was_asked_beyond_its_history() -> None:
    stats, clock = _stats(history_s=60)
    t0 = stats.now()
    stats.record_prediction("churn", 1, 0.001, ["0"])
    clock.t += 30
    assert stats.since("churn", t0).complete  # the agent's whole life is kept
    clock.t += 100
    stats.record_prediction("churn", 1, 0.001, ["0"])
    late = stats.since("churn", t0)
    assert not late.complete and late.requests == 1
    assert stats.since("churn", clock.t - 30).complete


def test_the_older_record_call_still_counts() -> None:
    stats, _ = _stats()
    stats.record("churn", 5, 0.002, error=False)
    stats.record("churn", 0, None, error=True)
    snap = stats.snapshot()["churn"]
    assert (snap["requests"], snap["inferences"], snap["errors"]) == (2, 5, 1)
    assert snap["latency_p50_ms"] == pytest.approx(2.0)


# The record shapes mirror farpoint.wire.telemetry; the tests (not the agent) may import it.


@pytest.mark.parametrize(
    ("ours", "wire_name"),
    [
        (telemetry.ConfusionCount, "ConfusionCount"),
        (telemetry.FeedbackCount, "FeedbackCount"),
        (telemetry.ModelWindow, "ModelWindow"),
        (telemetry.TelemetryWindow, "TelemetryWindow"),
    ],
)
def test_agent_records_have_the_wire_models_fields(ours: type, wire_name: str) -> None:
    wire = pytest.importorskip("farpoint.wire.telemetry")
    assert set(typing.get_type_hints(ours)) == set(getattr(wire, wire_name).model_fields)


def test_what_the_agent_records_validates_as_the_wire_models() -> None:
    wire = pytest.importorskip("farpoint.wire.telemetry")
    stats, _ = _stats()
    stats.record_prediction("churn", 7, 0.0004, ["1", "0"])
    stats.record_failure("churn", 7)
    stats.record_feedback("churn", 7, "1", "0", {"sex": "F"})
    stats.record_feedback("other", None, "a", "a", {})
    now = datetime.now(UTC).isoformat()
    records = pack_windows(stats.close_window(), now, now, {"cpu_percent": 0.5}, 60_000)
    assert len(records) == 1
    records[0]["seq"] = 0
    parsed = wire.TelemetryWindow.model_validate_json(json.dumps(records[0]))
    churn = parsed.models["churn"]
    assert (churn.requests, churn.errors, churn.inferences) == (2, 1, 2)
    assert [(f.attribute, f.group, f.label, f.predicted) for f in churn.feedback] == [
        ("sex", "F", "1", "0")
    ]
    assert parsed.models["other"].requests == 0 and parsed.models["other"].latency_ms == []
