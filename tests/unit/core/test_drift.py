"""Drift from counts agrees with scipy, the reference implementation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farpoint.core.drift import (
    bin_counts,
    bin_index,
    chi_square,
    js_distance,
    psi,
    psi_verdict,
)

scipy_special = pytest.importorskip("scipy.special")
scipy_stats = pytest.importorskip("scipy.stats")
scipy_distance = pytest.importorskip("scipy.spatial.distance")

count = st.integers(min_value=0, max_value=10_000)


@st.composite
def histogram_pairs(draw: st.DrawFn, min_bins: int = 1) -> tuple[list[int], list[int]]:
    bins = draw(st.integers(min_value=min_bins, max_value=30))
    p = draw(st.lists(count, min_size=bins, max_size=bins).filter(lambda c: sum(c) > 0))
    q = draw(st.lists(count, min_size=bins, max_size=bins).filter(lambda c: sum(c) > 0))
    return p, q


@given(histogram_pairs(), st.sampled_from([1e-6, 1e-4, 1e-2]))
def test_psi_is_the_symmetric_kl_divergence_of_smoothed_proportions(
    pair: tuple[list[int], list[int]], epsilon: float
) -> None:
    p, q = pair
    e = [c / sum(p) or epsilon for c in p]
    a = [c / sum(q) or epsilon for c in q]
    reference = sum(scipy_special.rel_entr(a, e) + scipy_special.rel_entr(e, a))
    assert psi(p, q, epsilon) == pytest.approx(reference, rel=1e-9, abs=1e-12)
    assert psi(p, q, epsilon) >= 0


@given(histogram_pairs())
def test_js_distance_matches_scipy_base_2(pair: tuple[list[int], list[int]]) -> None:
    p, q = pair
    reference = scipy_distance.jensenshannon(p, q, base=2)
    value = js_distance(p, q)
    assert value == pytest.approx(reference, abs=1e-7)
    assert 0.0 <= value <= 1.0


@settings(max_examples=300)
@given(histogram_pairs(min_bins=2))
def test_chi_square_matches_scipy_contingency(pair: tuple[list[int], list[int]]) -> None:
    p, q = pair
    kept = [(a, b) for a, b in zip(p, q, strict=True) if a + b > 0]
    statistic, p_value = chi_square(p, q)
    if len(kept) < 2:
        assert (statistic, p_value) == (0.0, 1.0)
        return
    table = [[a for a, _ in kept], [b for _, b in kept]]
    ref_stat, ref_p, _, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert statistic == pytest.approx(ref_stat, rel=1e-9, abs=1e-9)
    assert p_value == pytest.approx(ref_p, rel=1e-7, abs=1e-300)


@given(
    st.floats(min_value=0.05, max_value=5_000),
    st.floats(min_value=0.0, max_value=20_000),
)
def test_chi_square_p_value_is_the_regularised_gamma_function(dof2: float, x: float) -> None:
    # Reached through the private helper: the test pins the special function itself over a
    # wider range of degrees of freedom than histograms produce.
    from farpoint.core.drift import _gamma_q

    assert _gamma_q(dof2, x) == pytest.approx(
        scipy_special.gammaincc(dof2, x), rel=1e-8, abs=1e-300
    )


def test_identical_histograms_show_no_drift() -> None:
    counts = [10, 40, 30, 20]
    assert psi(counts, counts) == 0.0
    assert js_distance(counts, counts) == 0.0
    assert chi_square(counts, counts) == (0.0, 1.0)
    assert psi([1, 4, 3, 2], [100, 400, 300, 200]) == pytest.approx(0.0)


def test_shifted_histograms_are_significant() -> None:
    before = [50, 30, 15, 5, 0]
    after = [5, 15, 30, 50, 10]
    value = psi(before, after)
    assert value > 0.2 and psi_verdict(value) == "significant"
    assert js_distance(before, after) > 0.3
    assert chi_square(before, after)[1] < 1e-6


def test_disjoint_histograms_have_js_distance_one() -> None:
    assert js_distance([5, 0], [0, 7]) == pytest.approx(1.0)


def test_verdict_thresholds_follow_the_conventions() -> None:
    assert psi_verdict(0.0) == "none"
    assert psi_verdict(0.0999) == "none"
    assert psi_verdict(0.1) == "moderate"
    assert psi_verdict(0.1999) == "moderate"
    assert psi_verdict(0.2) == "significant"


@pytest.mark.parametrize("fn", [psi, js_distance, chi_square])
def test_counts_over_different_bins_are_refused(fn: object) -> None:
    with pytest.raises(ValueError, match="same bins"):
        fn([1, 2, 3], [1, 2])  # type: ignore[operator]


@pytest.mark.parametrize("fn", [psi, js_distance, chi_square])
def test_empty_or_negative_histograms_are_refused(fn: object) -> None:
    with pytest.raises(ValueError, match="at least one observation"):
        fn([0, 0], [1, 2])  # type: ignore[operator]
    with pytest.raises(ValueError, match="negative"):
        fn([-1, 2], [1, 2])  # type: ignore[operator]


def test_bins_are_closed_below_with_open_tails() -> None:
    edges = [0.0, 1.0, 2.0]
    assert [bin_index(edges, v) for v in (-5, 0.0, 0.5, 1.0, 1.999, 2.0, 1e9)] == [
        0,
        1,
        1,
        2,
        2,
        3,
        3,
    ]
    assert bin_counts(edges, [-math.inf, 0.0, None, math.nan, 2.0, math.inf]) == [1, 1, 0, 2]


def test_bin_edges_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        bin_counts([1.0, 1.0], [1.0])
