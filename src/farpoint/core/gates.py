"""Evaluation gates: compare computed metrics with a policy's thresholds (pure, stdlib only)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["check_gates", "metric_key"]


def metric_key(metric: str, attribute: str | None) -> str:
    """The key a metric is stored under: `roc_auc` or `demographic_parity_difference[sex]`."""
    return f"{metric}[{attribute}]" if attribute else metric


def _fmt(value: float) -> str:
    # Enough digits to see why a close call went the way it did, without float noise.
    return f"{value:.4g}"


def _check_one(gate: Mapping[str, Any], metrics: Mapping[str, float]) -> dict[str, Any]:
    key = metric_key(str(gate["metric"]), gate.get("attribute"))
    if gate.get("min") is not None:
        op, threshold = ">=", float(gate["min"])
    elif gate.get("max") is not None:
        op, threshold = "<=", float(gate["max"])
    else:
        raise ValueError(f"gate on {key!r} has neither a min nor a max")
    name = str(gate.get("name") or f"{key} {op} {_fmt(threshold)}")

    raw = metrics.get(key)
    value = None if raw is None else float(raw)
    if value is None:
        passed, reason = False, f"metric {key} was not computed"
    elif math.isnan(value):
        # None, not NaN, in the result: it travels as JSON, which has no NaN.
        value = None
        passed, reason = False, f"metric {key} is undefined (NaN)"
    elif op == ">=":
        passed = value >= threshold
        if passed:
            reason = f"{key} {_fmt(value)} >= {_fmt(threshold)}"
        else:
            reason = f"{key} {_fmt(value)} is below the minimum {_fmt(threshold)}"
    else:
        passed = value <= threshold
        if passed:
            reason = f"{key} {_fmt(value)} <= {_fmt(threshold)}"
        else:
            reason = f"{key} {_fmt(value)} exceeds the maximum {_fmt(threshold)}"
    return {
        "name": name,
        "metric": key,
        "op": op,
        "threshold": threshold,
        "value": value,
        "passed": passed,
        "reason": reason,
    }


def check_gates(gates: list[dict[str, Any]], metrics: Mapping[str, float]) -> list[dict[str, Any]]:
    """One result per gate, in order; a missing or NaN metric fails its gate."""
    return [_check_one(gate, metrics) for gate in gates]
