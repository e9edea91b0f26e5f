"""Drift between two histograms over the same bins, computed from counts alone.

The server compares a release's reference profile with counts a device sent, and a
dataset version's profile with another's; neither side ever needs the raw values. The
counting rule (`bin_index`) lives here too, in pure Python, so a device counts into a
profile's frozen edges exactly as `farpoint.ml.profile.count_into_bins` does with numpy.

Conventions (see docs/data.md): PSI < 0.1 no change, 0.1 to 0.2 moderate, >= 0.2
significant.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Sequence

__all__ = [
    "PSI_MODERATE",
    "PSI_SIGNIFICANT",
    "bin_counts",
    "bin_index",
    "chi_square",
    "js_distance",
    "psi",
    "psi_verdict",
]

PSI_MODERATE = 0.1
"""PSI from which a shift is called moderate."""

PSI_SIGNIFICANT = 0.2
"""PSI from which a shift is called significant."""

_EPS = 1e-15
_TINY = 1e-300


def bin_index(edges: Sequence[float], value: float) -> int:
    """The bin of `value` over `edges`: len(edges) + 1 bins, bin i holds
    edges[i-1] <= value < edges[i]; bin 0 is everything below edges[0] and the last bin
    everything at or above edges[-1] (the tails are open, so no value is ever lost)."""
    return bisect.bisect_right(edges, value)


def bin_counts(edges: Sequence[float], values: Iterable[float | None]) -> list[int]:
    """Counts of `values` per bin of `edges` (see `bin_index`); None and NaN are skipped,
    since a profile reports them apart from the histogram."""
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValueError("bin edges must be strictly increasing")
    counts = [0] * (len(edges) + 1)
    for value in values:
        if value is None or value != value:
            continue
        counts[bisect.bisect_right(edges, value)] += 1
    return counts


def _proportions(
    expected: Sequence[float], actual: Sequence[float]
) -> tuple[list[float], list[float]]:
    if len(expected) != len(actual):
        raise ValueError(
            f"counts must be over the same bins: {len(expected)} bins against {len(actual)}"
        )
    if any(c < 0 for c in expected) or any(c < 0 for c in actual):
        raise ValueError("counts must not be negative")
    total_e, total_a = math.fsum(expected), math.fsum(actual)
    if total_e <= 0 or total_a <= 0:
        raise ValueError("both histograms need at least one observation")
    return [c / total_e for c in expected], [c / total_a for c in actual]


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = 1e-4) -> float:
    """Population stability index sum((a - e) * ln(a / e)) over bin proportions.

    An empty bin's proportion is replaced by `epsilon` (without renormalising), so a bin
    that empties or fills contributes a large but finite term.
    """
    if epsilon <= 0:
        raise ValueError("epsilon must be positive")
    e, a = _proportions(expected, actual)
    total = 0.0
    for pe, pa in zip(e, a, strict=True):
        pe, pa = pe or epsilon, pa or epsilon
        total += (pa - pe) * math.log(pa / pe)
    return total


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen-Shannon distance (the square root of the divergence, base 2), in [0, 1]."""
    pp, qq = _proportions(p, q)
    divergence = 0.0
    for a, b in zip(pp, qq, strict=True):
        m = (a + b) / 2
        if a > 0:
            divergence += a * math.log2(a / m) / 2
        if b > 0:
            divergence += b * math.log2(b / m) / 2
    return min(1.0, math.sqrt(max(0.0, divergence)))


def chi_square(p: Sequence[float], q: Sequence[float]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two histograms: (statistic, p-value).

    Both are samples, so this is the 2 x k contingency test (scipy's `chi2_contingency`
    without continuity correction), not a goodness of fit against fixed proportions.
    Bins empty on both sides are dropped; fewer than two bins left gives (0.0, 1.0).
    """
    _proportions(p, q)
    kept = [(a, b) for a, b in zip(p, q, strict=True) if a + b > 0]
    if len(kept) < 2:
        return 0.0, 1.0
    total_p = math.fsum(a for a, _ in kept)
    total_q = math.fsum(b for _, b in kept)
    total = total_p + total_q
    statistic = 0.0
    for a, b in kept:
        column = a + b
        exp_a, exp_b = total_p * column / total, total_q * column / total
        statistic += (a - exp_a) ** 2 / exp_a + (b - exp_b) ** 2 / exp_b
    return statistic, _gamma_q((len(kept) - 1) / 2, statistic / 2)


def psi_verdict(value: float) -> str:
    """ "none", "moderate" or "significant", by the PSI conventions."""
    if value >= PSI_SIGNIFICANT:
        return "significant"
    if value >= PSI_MODERATE:
        return "moderate"
    return "none"


def _gamma_q(a: float, x: float) -> float:
    """Regularised upper incomplete gamma Q(a, x), the chi-square survival function at
    2x with 2a degrees of freedom (Numerical Recipes' series and continued fraction)."""
    if x <= 0:
        return 1.0
    log_front = -x + a * math.log(x) - math.lgamma(a)
    # The series converges fast below a + 1 and the continued fraction above; each is
    # used where Q is not the difference of two nearly equal numbers.
    if x < a + 1:
        return max(0.0, 1.0 - _gamma_p_series(a, x, log_front))
    return min(1.0, _gamma_q_fraction(a, x, log_front))


def _max_iterations(a: float) -> int:
    return 1000 + int(20 * math.sqrt(a))


def _gamma_p_series(a: float, x: float, log_front: float) -> float:
    term = total = 1.0 / a
    n = a
    for _ in range(_max_iterations(a)):
        n += 1
        term *= x / n
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(log_front)


def _gamma_q_fraction(a: float, x: float, log_front: float) -> float:
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _max_iterations(a)):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < _EPS:
            break
    return math.exp(log_front) * h
