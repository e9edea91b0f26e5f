"""The pure rules: fleet selection, precedence between fleets, the state's etag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from farpoint.server.fleets.rules import FleetTarget, candidates_by_model, selects, state_etag

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def desired_models(labels, targets):
    """The first candidate per model: the fleet that decides when it gives a release."""
    return [ts[0] for ts in candidates_by_model(labels, targets).values()]


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
    a = {"model": "a", "release_id": 1, "rollout_id": None}
    b = {"model": "b", "release_id": 2, "rollout_id": 4}
    assert state_etag([a, b]) == state_etag([b, a])
    assert state_etag([a, b]) != state_etag([a])
    assert state_etag([a]) != state_etag([{**a, "rollout_id": 5}]), "rollout ids are covered"
    assert state_etag([a]) != state_etag([a], {"id": 3}), "so is a diagnostics request"
    assert len(state_etag([])) == 64


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3)),
        min_size=1,
        max_size=6,
        unique_by=lambda x: x[0],
    ),
    st.randoms(),
)
def test_precedence_is_newest_then_name_whatever_the_row_order(fleets, rnd):
    targets = [target(name, i, at) for i, (name, at) in enumerate(fleets)]
    shuffled = targets[:]
    rnd.shuffle(shuffled)
    ordered = candidates_by_model({}, shuffled)["vitals"]
    assert ordered == sorted(targets, key=lambda t: (-t.set_at.timestamp(), t.fleet))
