"""Comparing two profiles of a dataset (`farpoint.ml.profile`): per-column drift over
frozen bins or categories, with a verdict a person can act on."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from farpoint.core.drift import chi_square, js_distance, psi, psi_verdict

__all__ = ["FORMAT", "NOISE_P_VALUE", "compare_profiles", "edges_fingerprint"]

FORMAT = 1
"""Format of profiles and of their comparisons."""
NOISE_P_VALUE = 0.05
"""`compare_profiles` calls no shift where the chi-square p-value is at least this."""


def edges_fingerprint(profile: Mapping[str, Any]) -> str:
    """sha256 over every column's histogram edges: counts made against one profile's
    edges are only comparable with that profile."""
    edges = {
        name: col["histogram"]["edges"]
        for name, col in profile.get("columns", {}).items()
        if col.get("histogram")
    }
    return hashlib.sha256(json.dumps(edges, sort_keys=True).encode()).hexdigest()


def _category_counts(col: Mapping[str, Any]) -> dict[Any, int] | None:
    if col.get("kind") == "boolean":
        return {False: col["false_count"], True: col["true_count"]}
    if "top" in col:
        counts = {json.dumps(t["value"]): t["count"] for t in col["top"]}
        if col.get("other_count"):
            counts["\0other"] = col["other_count"]
        return counts
    return None


def compare_profiles(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Per-column comparison of two profiles: presence, dtype, null rate, mean shift in
    units of the old std, PSI / JS distance / chi-square and a verdict (PSI < 0.1 none,
    0.1 to 0.2 moderate, >= 0.2 significant; none where the chi-square p-value is at
    least NOISE_P_VALUE, as small versions differ by chance).

    Numeric and temporal distributions are compared over the OLD profile's frozen bins,
    so `new` must have been made with `profile_parquet(..., reference=old)`; categorical
    and boolean ones over the union of both profiles' categories (exact while each lists
    all its categories, i.e. up to TOP_CATEGORIES; otherwise the rest pool in "other").
    """
    old_cols, new_cols = old.get("columns", {}), new.get("columns", {})
    ref = new.get("reference") or {}
    ref_counts = ref.get("counts", {}) if ref.get("edges_sha256") == edges_fingerprint(old) else {}
    out: dict[str, Any] = {}
    for name in list(old_cols) + [n for n in new_cols if n not in old_cols]:
        a, b = old_cols.get(name), new_cols.get(name)
        entry: dict[str, Any] = {"in_old": a is not None, "in_new": b is not None}
        if a is None or b is None:
            entry["verdict"] = "added" if a is None else "removed"
            out[name] = entry
            continue
        entry.update(
            dtype_old=a["dtype"],
            dtype_new=b["dtype"],
            dtype_changed=a["dtype"] != b["dtype"],
            null_rate_old=a["null_rate"],
            null_rate_new=b["null_rate"],
            null_rate_change=b["null_rate"] - a["null_rate"],
            mean_shift_std=(
                (b["mean"] - a["mean"]) / a["std"]
                if a.get("std") and b.get("mean") is not None and a.get("mean") is not None
                else None
            ),
        )
        expected: list[int] | None = None
        actual: list[int] | None = None
        basis = None
        a_hist, b_hist = a.get("histogram"), b.get("histogram")
        if a_hist and name in ref_counts:
            expected, actual, basis = a_hist["counts"], ref_counts[name], "reference_bins"
        elif a_hist and b_hist and a_hist["edges"] == b_hist["edges"]:
            expected, actual, basis = a_hist["counts"], b_hist["counts"], "same_bins"
        else:
            ca, cb = _category_counts(a), _category_counts(b)
            if ca is not None and cb is not None:
                keys = list(ca) + [k for k in cb if k not in ca]
                expected, actual = [ca.get(k, 0) for k in keys], [cb.get(k, 0) for k in keys]
                basis = "categories"
        entry.update(psi=None, js_distance=None, chi_square_p=None, basis=basis)
        if expected and actual and sum(expected) > 0 and sum(actual) > 0:
            entry["psi"] = psi(expected, actual)
            entry["js_distance"] = js_distance(expected, actual)
            entry["chi_square_p"] = chi_square(expected, actual)[1]
        if entry["dtype_changed"]:
            entry["verdict"] = "type_changed"
        elif entry["psi"] is not None:
            # PSI grows with sampling noise on small versions; a difference the chi-square
            # test cannot tell from noise is not called a shift.
            noise = entry["chi_square_p"] >= NOISE_P_VALUE
            entry["verdict"] = "none" if noise else psi_verdict(entry["psi"])
        else:
            entry["verdict"] = "not_compared"
        out[name] = entry
    summary = {
        verdict: [n for n, e in out.items() if e["verdict"] == verdict]
        for verdict in ("significant", "moderate", "added", "removed", "type_changed")
    }
    return {"format": FORMAT, "columns": out, "summary": summary}
