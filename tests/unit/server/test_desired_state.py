"""The pure rules: fleet selection, precedence between fleets, rollout state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from farpoint.server.fleets.rules import (
    FleetTarget,
    desired_models,
    phase_on_release,
    rollout_progress,
    rollout_state,
    selects,
    state_etag,
    target_dict,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def target(
    fleet: str, release: int, at: int, model: str = "vitals", **selector: str
) -> FleetTarget:
    return FleetTarget(
        fleet=fleet,
        selector=selector,
        model=model,
        release_id=release,
        manifest_digest=f"sha256:{release:064x}",
        model_digest=f"sha256:{release + 1000:064x}",
        set_at=T0 + timedelta(seconds=at),
    )


def test_selector_needs_every_label_to_match():
    assert selects({}, {"site": "icu"})
    assert selects({"site": "icu"}, {"site": "icu", "floor": "2"})
    assert not selects({"site": "icu", "floor": "3"}, {"site": "icu", "floor": "2"})
    assert not selects({"site": "icu"}, {})


def test_unselected_fleets_are_ignored():
    chosen = desired_models({"site": "er"}, [target("icu", 1, 0, site="icu")])
    assert chosen == []


def test_most_recently_set_release_wins_whatever_the_order():
    broad = target("all", 1, at=10)
    narrow = target("icu", 2, at=20, site="icu")
    for targets in ([broad, narrow], [narrow, broad]):
        [winner] = desired_models({"site": "icu"}, targets)
        assert (winner.fleet, winner.release_id) == ("icu", 2)
    later_broad = target("all", 3, at=30)
    [winner] = desired_models({"site": "icu"}, [narrow, later_broad])
    assert (winner.fleet, winner.release_id) == ("all", 3)


def test_equal_times_go_to_the_fleet_name_that_sorts_first():
    targets = [target("b-fleet", 2, at=5), target("a-fleet", 1, at=5), target("ab", 3, at=5)]
    for order in (targets, targets[::-1]):
        [winner] = desired_models({}, order)
        assert winner.fleet == "a-fleet"


def test_each_model_is_decided_on_its_own_and_sorted_by_name():
    targets = [
        target("all", 1, at=1, model="vitals"),
        target("icu", 2, at=2, model="deterioration", site="icu"),
        target("icu", 3, at=0, model="vitals", site="icu"),
    ]
    chosen = desired_models({"site": "icu"}, targets)
    assert [(t.model, t.release_id) for t in chosen] == [("deterioration", 2), ("vitals", 1)]


def test_etag_depends_on_content_not_order():
    a = target_dict(target("all", 1, at=0, model="a"))
    b = target_dict(target("all", 2, at=0, model="b"))
    assert state_etag([a, b]) == state_etag([b, a])
    assert state_etag([a, b]) != state_etag([a])
    assert len(state_etag([])) == 64


def test_phase_counts_only_on_the_target_release():
    assert phase_on_release(None, None, 7) == "pending"
    assert phase_on_release(6, "active", 7) == "pending"
    assert phase_on_release(7, "installing", 7) == "installing"


def test_rollout_state():
    assert rollout_state([]) == "succeeded"
    assert rollout_state(["active", "active"]) == "succeeded"
    assert rollout_state(["active", "downloading"]) == "running"
    assert rollout_state(["active", "failed"]) == "failed"
    assert rollout_state(["failed", "pending"]) == "running"
    assert rollout_state(["rolled_back", "active"]) == "failed"


def test_progress_lists_every_phase():
    progress = rollout_progress(["active", "active", "failed"])
    assert progress["active"] == 2 and progress["failed"] == 1 and progress["pending"] == 0
    assert sum(progress.values()) == 3
