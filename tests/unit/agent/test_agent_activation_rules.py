"""The pure rules of safe activation: health verdicts, the token bucket, the journal's
file format, release budgets, the free-disk check. No I/O beyond tmp_path."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from agent_fakes import OnnxModel, make_manifest
from hypothesis import given
from hypothesis import strategies as st

from farpoint.agent import payloads
from farpoint.agent.bandwidth import TokenBucket, read_size
from farpoint.agent.health import InferenceCounter, WindowCounts, judge, nearest_rank
from farpoint.agent.journal import (
    MAX_REMEMBERED,
    Journal,
    RolledBack,
    load_journal,
    save_journal,
)
from farpoint.agent.runtime import latency_budget
from farpoint.agent.slots import ReleaseRejected, check_free_disk
from farpoint.agent.state import CurrentRelease, StateError

POLICY: payloads.HealthPolicy = {
    "window_s": 60,
    "max_error_rate": 0.1,
    "min_requests": 10,
    "max_latency_p95_ms": 5.0,
    "max_crashes": 1,
}


def _counts(
    requests: int = 0, failures: int = 0, p95: float | None = None, crashes: int = 0
) -> WindowCounts:
    return WindowCounts(requests, failures, p95, crashes)


def test_a_window_is_watched_until_it_ends_then_healthy() -> None:
    assert judge(POLICY, _counts(), now=10, ends_at=60).state == "watching"
    assert judge(POLICY, _counts(50, 1, 2.0), now=59.9, ends_at=60).state == "watching"
    assert judge(POLICY, _counts(50, 1, 2.0), now=60, ends_at=60).state == "healthy"
    # a device nobody called commits: nothing went wrong that it could see
    assert judge(POLICY, _counts(), now=60, ends_at=60).state == "healthy"


def test_error_rate_and_latency_are_judged_once_min_requests_arrived() -> None:
    few = judge(POLICY, _counts(9, 9, 100.0), now=10, ends_at=60)
    assert few.state == "watching"  # 9 of 9 failed, but 9 requests say too little
    errors = judge(POLICY, _counts(10, 2, 1.0), now=10, ends_at=60)
    assert errors.state == "unhealthy"
    assert errors.reason == (
        "2 of 10 predict requests failed in the health window: error rate 0.200 is over "
        "the limit of 0.1"
    )
    assert judge(POLICY, _counts(10, 1, 1.0), now=10, ends_at=60).state == "watching"  # = limit
    slow = judge(POLICY, _counts(10, 0, 5.5), now=10, ends_at=60)
    assert slow.state == "unhealthy" and slow.reason is not None
    assert slow.reason.startswith("latency p95 of 5.500 ms over 10 predict requests")
    no_limit: payloads.HealthPolicy = {**POLICY, "max_latency_p95_ms": None}
    assert judge(no_limit, _counts(10, 0, 1e9), now=60, ends_at=60).state == "healthy"


def test_restarts_over_the_limit_are_unhealthy_at_once() -> None:
    assert judge(POLICY, _counts(crashes=1), now=10, ends_at=60).state == "watching"
    verdict = judge(POLICY, _counts(crashes=2), now=10, ends_at=60)
    assert verdict.state == "unhealthy"
    assert verdict.reason == "the agent restarted 2 times in the health window (at most 1 allowed)"


def test_the_counter_keeps_failures_out_of_the_latencies() -> None:
    counter = InferenceCounter()
    for ms in (1.0, 2.0, 3.0):
        counter.record(ms / 1000, failed=False)
    counter.record(10.0, failed=True)  # a failure's time says nothing about serving latency
    counts = counter.counts(crashes=1)
    assert (counts.requests, counts.failures, counts.crashes) == (4, 1, 1)
    assert counts.latency_p95_ms == pytest.approx(3.0)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_nearest_rank_matches_numpy(values: list[float]) -> None:
    assert nearest_rank(values, 95) == float(
        np.percentile(np.array(values), 95, method="inverted_cdf")
    )


class _FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        self.now += seconds


@given(st.lists(st.integers(1, 70_000), min_size=1, max_size=60), st.integers(1_000, 10**6))
def test_the_token_bucket_holds_the_average_rate(chunks: list[int], rate: int) -> None:
    t = _FakeTime()
    bucket = TokenBucket(rate, clock=t.clock, sleep=t.sleep)
    for n in chunks:
        bucket.take(n)
    total = sum(chunks)
    # everything beyond the first burst waits for its tokens; nothing waits longer
    assert t.slept == pytest.approx(max(0.0, (total - bucket.burst) / rate), abs=1e-6)


def test_the_token_bucket_refills_while_the_download_is_idle() -> None:
    t = _FakeTime()
    bucket = TokenBucket(1000, burst=1000, clock=t.clock, sleep=t.sleep)
    bucket.take(1000)
    t.now += 5.0  # idle: refills to the burst, not beyond
    bucket.take(1000)
    assert t.slept == 0.0
    bucket.take(500)
    assert t.slept == pytest.approx(0.5)


def test_reads_are_small_enough_to_pace_a_slow_limit() -> None:
    assert read_size(None) == 1 << 16
    assert read_size(8000) == 1024
    assert read_size(160_000) == 10_000
    with pytest.raises(ValueError, match="positive"):
        TokenBucket(0)


def _current(slot: str, release_id: int) -> CurrentRelease:
    digest = f"sha256:{release_id:064x}"
    return CurrentRelease("churn", slot, release_id, digest, "sha256:" + "b" * 64, "churn@1")


def test_the_journal_survives_a_round_trip_and_remembers_a_bounded_history(
    tmp_path: Path,
) -> None:
    journal = Journal(
        model="churn",
        release_id=2,
        manifest_digest="sha256:" + "2" * 64,
        rollout_id=9,
        step="switched",
        previous=_current("slot-a", 1),
        previous_committed=True,
        target=_current("slot-b", 2),
        health=POLICY,
        switched_at=1000.0,
        window_end=1060.0,
        crashes=1,
    )
    for i in range(MAX_REMEMBERED + 5):
        journal = journal.remember(RolledBack(i, "sha256:x", i % 3 or None, "why"))
    journal = journal.remember(RolledBack(4, "sha256:x", 1, "again"))  # replaces, not adds
    save_journal(tmp_path, journal)
    loaded = load_journal(tmp_path)
    assert loaded == journal
    assert len(loaded.rolled_back) == MAX_REMEMBERED
    assert loaded.rolled_back[-1].reason == "again"
    assert loaded.rolled_back_under(4, "sha256:x", 1) is not None
    assert loaded.rolled_back_under(4, "sha256:x", 2) is None  # another rollout: a new try
    assert load_journal(tmp_path / "nothing-here") is None


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d.update(step="flying"), "unknown step 'flying'"),
        (lambda d: d.pop("release_id"), "release_id"),
        (lambda d: d["previous"].update(slot="slot-c"), "unknown slot"),
        (lambda d: d.update(rollout_id="9"), "integer"),
    ],
)
def test_an_unreadable_journal_names_what_is_wrong(tmp_path: Path, edit: Any, words: str) -> None:
    journal = Journal(
        "churn", 2, "sha256:" + "2" * 64, 9, "downloading", _current("slot-a", 1), True
    )
    doc = journal.to_json()
    edit(doc)
    (tmp_path / "journal.json").write_text(json.dumps(doc))
    with pytest.raises(StateError, match=words):
        load_journal(tmp_path)


def test_the_budgets_of_a_manifest_are_checked(model_a: OnnxModel) -> None:
    good = make_manifest(1, model_a)
    good["budgets"] = {"latency_p95_ms": {"default": 5, "x86_64": 2.5, "jetson-orin.v2": 9}}
    manifest = payloads.parse_manifest(good)
    assert manifest["budgets"] == {
        "latency_p95_ms": {"default": 5.0, "x86_64": 2.5, "jetson-orin.v2": 9.0}
    }
    assert latency_budget(manifest, "x86_64") == ("x86_64", 2.5)
    assert latency_budget(manifest, "aarch64") == ("default", 5.0)
    del manifest["budgets"]["latency_p95_ms"]["default"]
    assert latency_budget(manifest, "aarch64") is None
    assert "budgets" not in payloads.parse_manifest(make_manifest(1, model_a))
    for budgets, words in [
        ({"latency_p95_ms": {"default": 0}}, "positive number"),
        ({"latency_p95_ms": {"default": True}}, "positive number"),
        ({"latency_p95_ms": {"default": float("inf")}}, "positive number"),
        ({"latency_p95_ms": {"../etc": 1}}, "not a hardware profile name"),
        ({"latency_p95_ms": {f"p{i}": 1 for i in range(17)}}, "at most 16"),
        ({"latency_p95_ms": [1]}, "expected an object"),
        ({"memory_mb": {"default": 1}}, "unknown budget 'memory_mb'"),
        ("fast", "expected a JSON object"),
    ]:
        with pytest.raises(payloads.PayloadError, match=words):
            payloads.parse_manifest({**good, "budgets": budgets})


def test_the_free_disk_check_names_the_numbers(tmp_path: Path) -> None:
    check_free_disk(tmp_path, 1000, lambda p: 1000 + (16 << 20))
    with pytest.raises(ReleaseRejected) as info:
        check_free_disk(tmp_path, 400 << 20, lambda p: 420 << 20)
    margin = 40 << 20  # 10 % of the model, over the 16 MiB floor
    assert str(info.value) == (
        f"not enough free disk to download the model: it needs {400 << 20} B plus a margin "
        f"of {margin} B, and the state directory's filesystem has {420 << 20} B free"
    )


def test_the_agent_and_the_server_agree_on_budget_names() -> None:
    wire = pytest.importorskip("farpoint.wire.releases")
    assert payloads.PROFILE_PATTERN == wire.PROFILE_PATTERN
    assert payloads.MAX_BUDGET_PROFILES == wire.MAX_BUDGET_PROFILES


def test_the_journal_steps_cover_what_the_contract_names() -> None:
    from farpoint.agent.journal import STEPS, Step

    assert set(STEPS) == set(typing.get_args(Step))
    assert {"downloading", "installed", "switched", "committed", "rolled_back"} <= set(STEPS)
