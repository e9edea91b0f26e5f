"""The pure rollout decisions: batch plans, verdicts, the next action, per-device answers."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.server.rollouts.rules import (
    Assignment,
    BatchSplit,
    Governing,
    Standing,
    Tally,
    batch_verdict,
    classify,
    device_phase,
    first_with_release,
    need_healthy,
    next_action,
    order_devices,
    phase_counts,
    plan_batches,
    resolve_in_fleet,
    share,
)

splits = st.one_of(
    st.none(),
    st.builds(BatchSplit, count=st.integers(1, 40)),
    st.builds(BatchSplit, size=st.integers(1, 40)),
    st.builds(BatchSplit, percent=st.floats(0.5, 100)),
)


# -- plans ------------------------------------------------------------------------------


def test_plans_of_each_strategy():
    assert plan_batches(10, "all-at-once") == [10]
    assert plan_batches(10, "canary", canary_count=1) == [1, 9]
    assert plan_batches(10, "canary", canary_count=2, split=BatchSplit(count=3)) == [2, 3, 3, 2]
    assert plan_batches(10, "canary", canary_percent=10, split=BatchSplit(size=4)) == [1, 4, 4, 1]
    assert plan_batches(10, "batches", split=BatchSplit(percent=25)) == [3, 3, 3, 1]
    assert plan_batches(3, "batches", split=BatchSplit(count=5)) == [1, 1, 1]
    assert plan_batches(1, "canary", canary_count=5, split=BatchSplit(count=2)) == [1]
    assert plan_batches(0, "canary", canary_count=1) == []
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_batches(3, "yolo")


def test_a_percent_share_rounds_up_and_never_picks_nobody():
    assert share(1000, 10) == 100
    assert share(10, 0.1) == 1
    assert share(10, 33.3) == 4
    assert share(7, 100) == 7
    assert share(0, 50) == 0
    # 0.7 × 10 is 7.000000000000001 in floats; it is still 7 devices.
    assert share(10, 70) == 7


@given(
    st.integers(0, 500),
    st.sampled_from(["all-at-once", "canary", "batches"]),
    st.one_of(st.integers(1, 50), st.floats(0.1, 100)),
    splits,
)
def test_every_plan_covers_every_device_once_without_empty_batches(n, strategy, canary, split):
    if strategy == "batches" and split is None:
        split = BatchSplit(count=1)
    count = canary if isinstance(canary, int) else None
    percent = canary if isinstance(canary, float) else None
    sizes = plan_batches(n, strategy, canary_count=count, canary_percent=percent, split=split)
    assert sum(sizes) == n
    assert all(size > 0 for size in sizes)
    if strategy == "all-at-once":
        assert len(sizes) == min(n, 1)
    if split is not None and split.size is not None and strategy == "batches":
        assert all(size <= split.size for size in sizes)
    if split is not None and split.count is not None and strategy == "batches":
        assert len(sizes) == min(split.count, n)
        assert max(sizes, default=0) - min(sizes, default=0) <= 1


def test_the_canary_selector_orders_its_matches_first_then_by_name():
    devices = [
        ("1", "delta", {"ring": "canary"}),
        ("2", "alpha", {}),
        ("3", "bravo", {"ring": "canary"}),
        ("4", "charlie", {"ring": "late"}),
    ]
    assert order_devices(devices, {"ring": "canary"}) == ["3", "1", "2", "4"]
    assert order_devices(devices, {}) == ["2", "3", "4", "1"]


# -- verdicts ---------------------------------------------------------------------------


def test_healthy_means_committed_unless_there_is_no_window():
    assert classify("active", True, False, 60) == "healthy"
    assert classify("active", False, False, 60) == "in_progress"
    assert classify("active", False, False, 0) == "healthy"
    assert classify("rolled_back", False, True, 60) == "failed"
    assert classify("downloading", False, True, 60) == "timed_out"
    assert classify("pending", False, False, 60) == "in_progress"


@given(st.integers(0, 1000), st.floats(0, 1))
def test_the_healthy_count_needed_is_the_smallest_that_reaches_the_threshold(n, threshold):
    need = need_healthy(n, threshold)
    exact = max(1, math.ceil(Fraction(threshold) * n))
    # Within float noise of the exact answer, and never more than one above it.
    assert need in (exact, exact - 1) and need >= 1
    assert need <= max(n, 1)


def test_batch_verdicts():
    assert batch_verdict(Tally(healthy=3), 1.0) == "succeeded"
    assert batch_verdict(Tally(healthy=2, in_progress=1), 1.0) == "waiting"
    assert batch_verdict(Tally(healthy=2, failed=1), 1.0) == "failed"
    assert batch_verdict(Tally(healthy=1, failed=1, in_progress=2), 0.5) == "waiting"
    assert batch_verdict(Tally(healthy=2, failed=1, in_progress=1), 0.5) == "succeeded"
    # Silent devices are counted out, but at least one device must be healthy.
    assert batch_verdict(Tally(healthy=1, timed_out=2), 1.0) == "succeeded"
    assert batch_verdict(Tally(timed_out=3), 1.0) == "waiting"
    assert batch_verdict(Tally(failed=1, timed_out=2), 1.0) == "failed"
    assert batch_verdict(Tally(), 0.0) == "waiting"


@given(
    st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.integers(0, 20), st.floats(0, 1)
)
def test_a_verdict_never_contradicts_itself(healthy, failed, timed_out, in_progress, threshold):
    t = Tally(healthy, failed, timed_out, in_progress)
    verdict = batch_verdict(t, threshold)
    need = need_healthy(t.size - timed_out, threshold)
    assert (verdict == "succeeded") == (healthy >= need)
    if verdict == "failed":
        assert failed > 0 and healthy + in_progress < need
    # More healthy devices never make a succeeded batch fail or wait.
    if verdict == "succeeded":
        assert batch_verdict(Tally(healthy + 1, failed, timed_out, in_progress), threshold) == (
            "succeeded"
        )


def _standing(**kw):
    base = {
        "state": "running",
        "current_batch": 0,
        "batch_count": 3,
        "tally": Tally(in_progress=2),
        "failures": 0,
        "max_failures": 0,
        "success_threshold": 1.0,
        "approve_between_batches": False,
        "rollback_on_failure": True,
    }
    return Standing(**{**base, **kw})


def test_next_actions():
    assert next_action(_standing()).kind == "wait"
    assert next_action(_standing(tally=Tally(healthy=2))).kind == "start_next"
    gated = next_action(_standing(tally=Tally(healthy=2), approve_between_batches=True))
    assert (gated.kind, gated.reason) == ("await_approval", "awaiting approval of batch 1")
    last = _standing(current_batch=2, tally=Tally(healthy=2), approve_between_batches=True)
    assert next_action(last).kind == "succeed"
    assert next_action(_standing(batch_count=0, current_batch=-1)).kind == "succeed"
    assert next_action(_standing(current_batch=-1)).kind == "start_next"
    assert next_action(_standing(state="paused", tally=Tally(healthy=2))).kind == "wait"
    for done in ("succeeded", "failed", "rolled_back", "aborted"):
        assert next_action(_standing(state=done, failures=9)).kind == "wait"


def test_failure_stops_even_a_paused_rollout_and_says_why():
    over = next_action(_standing(state="paused", failures=2, max_failures=1))
    assert over.kind == "roll_back"
    assert over.reason == "2 failed or rolled-back device(s) exceed max_failures 1"
    stuck = next_action(_standing(tally=Tally(healthy=1, failed=1), failures=1, max_failures=1))
    assert stuck.kind == "roll_back" and "batch 0 can no longer reach" in stuck.reason
    kept = next_action(_standing(failures=1, rollback_on_failure=False))
    assert kept.kind == "fail"


def test_phase_counts_list_every_phase():
    counts = phase_counts(["active", "active", "failed"])
    assert counts["active"] == 2 and counts["failed"] == 1 and counts["pending"] == 0
    assert sum(counts.values()) == 3 and len(counts) == 7


# -- a device's report and what a fleet gives it ----------------------------------------


def test_only_reports_on_the_rollouts_release_count():
    assert device_phase(5, 7, 6, "active", True, 4) == ("pending", False)
    assert device_phase(5, 7, 7, "installing", False, 5) == ("installing", False)
    assert device_phase(5, 7, 7, "active", True, None) == ("active", True)
    # A rollback under an older rollout is an old attempt: the new rollout gets a new try.
    assert device_phase(5, 7, 7, "rolled_back", False, 4) == ("pending", False)
    assert device_phase(5, 7, 7, "rolled_back", False, 5) == ("rolled_back", False)
    # Already serving the release healthily from an earlier rollout counts.
    assert device_phase(5, 7, 7, "active", True, 4) == ("active", True)
    assert device_phase(5, 7, 7, "failed", True, 5) == ("failed", False)


G = Governing(
    id=9,
    state="running",
    to_release_id=3,
    from_release_id=2,
    from_rollout_id=8,
    batch_count=3,
    current_batch=1,
)


def test_what_a_fleet_gives_a_device():
    assert resolve_in_fleet(3, None, None).release_id == 3
    started = resolve_in_fleet(3, G, Assignment(1, 3, 2, 8))
    assert (started.release_id, started.rollout_id, started.batch) == (3, 9, 1)
    waiting = resolve_in_fleet(3, G, Assignment(2, None, 1, 7))
    assert (waiting.release_id, waiting.rollout_id) == (1, 7), "its own previous release"
    assert "waiting in batch 2" in waiting.why
    stopped = Governing(**{**G.__dict__, "state": "aborted"})
    assert "never started (aborted)" in resolve_in_fleet(3, stopped, Assignment(2, None, 1, 7)).why
    back = resolve_in_fleet(3, G, Assignment(0, None, 1, 7))
    assert (back.release_id, back.rollout_id) == (1, 7) and "returned" in back.why
    joined = resolve_in_fleet(3, G, None)
    assert (joined.release_id, joined.rollout_id) == (2, 8), "before the last batch starts"
    last = Governing(**{**G.__dict__, "current_batch": 2})
    assert resolve_in_fleet(3, last, None).release_id == 3
    failed = Governing(**{**G.__dict__, "current_batch": 2, "state": "failed"})
    assert resolve_in_fleet(3, failed, None).release_id == 2


def test_precedence_falls_through_fleets_that_give_nothing_yet():
    nothing = resolve_in_fleet(3, Governing(**{**G.__dict__, "from_release_id": None}), None)
    something = resolve_in_fleet(5, None, None)
    assert first_with_release([nothing, something]) == 1
    assert first_with_release([something, nothing]) == 0
    assert first_with_release([nothing]) is None
