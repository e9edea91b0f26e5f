"""Policy YAML: the gates an evaluation must pass."""

from __future__ import annotations

import math
from typing import Any

from farpoint.core.errors import ValidationFailed
from farpoint.core.gates import metric_key

__all__ = [
    "DEFAULT_POLICY_YAML",
    "FAIRNESS_METRICS",
    "METRICS",
    "PERFORMANCE_METRICS",
    "parse_policy",
]

PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
FAIRNESS_METRICS = ("demographic_parity_difference",)
METRICS = PERFORMANCE_METRICS + FAIRNESS_METRICS

_TOP_KEYS = {"gates"}
_GATE_KEYS = {"metric", "attribute", "min", "max", "name"}

DEFAULT_POLICY_YAML = """\
# Farpoint default policy: every gate must pass before a model can be approved.
gates:
  - metric: roc_auc
    min: 0.75
  # Deterioration models exist to catch deteriorations: miss at most half of them.
  - metric: recall
    min: 0.5
  - metric: demographic_parity_difference
    attribute: sex
    max: 0.1
"""


def _line(node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def _key_lines(root: Any) -> dict[tuple[int, str], str]:
    """`(gate index, key) -> " (line N)"` from the YAML node tree, for error messages."""
    import yaml

    lines: dict[tuple[int, str], str] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        if key_node.value == "gates" and isinstance(value_node, yaml.SequenceNode):
            lines[(-1, "gates")] = _line(key_node)
            for i, item in enumerate(value_node.value):
                lines[(i, "")] = _line(item)
                if isinstance(item, yaml.MappingNode):
                    for k, _ in item.value:
                        lines[(i, str(k.value))] = _line(k)
        else:
            lines[(-1, str(key_node.value))] = _line(key_node)
    return lines


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationFailed(f"{where} must be a finite number, got {value!r}")
    return float(value)


def parse_policy(text: str) -> dict[str, Any]:
    """The normalized policy `{"gates": [...]}`; ValidationFailed names the bad key and line."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"policy is not valid YAML: {exc}") from exc
    lines = _key_lines(root)

    if not isinstance(doc, dict):
        raise ValidationFailed("policy must be a YAML mapping with a 'gates' list")
    for key in doc:
        if key not in _TOP_KEYS:
            raise ValidationFailed(
                f"unknown policy key {key!r}{lines.get((-1, str(key)), '')}; "
                f"allowed: {sorted(_TOP_KEYS)}"
            )
    gates = doc.get("gates")
    if not isinstance(gates, list) or not gates:
        raise ValidationFailed(
            f"policy 'gates' must be a non-empty list{lines.get((-1, 'gates'), '')}"
        )

    normalized: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, gate in enumerate(gates):
        at = lines.get((i, ""), "")
        where = f"gate {i + 1}{at}"
        if not isinstance(gate, dict):
            raise ValidationFailed(f"{where} must be a mapping with 'metric' and 'min' or 'max'")
        for key in gate:
            if key not in _GATE_KEYS:
                raise ValidationFailed(
                    f"unknown key {key!r} in gate {i + 1}{lines.get((i, str(key)), at)}; "
                    f"allowed: {sorted(_GATE_KEYS)}"
                )
        metric = gate.get("metric")
        if metric not in METRICS:
            raise ValidationFailed(
                f"unknown metric {metric!r} in gate {i + 1}{lines.get((i, 'metric'), at)}; "
                f"known metrics: {list(METRICS)}"
            )
        attribute = gate.get("attribute")
        if metric in FAIRNESS_METRICS:
            if not isinstance(attribute, str) or not attribute:
                raise ValidationFailed(
                    f"{where}: {metric} needs 'attribute', the protected column to compare"
                )
        elif attribute is not None:
            raise ValidationFailed(
                f"{where}: 'attribute' applies only to fairness metrics {list(FAIRNESS_METRICS)}"
                f", not {metric}"
            )
        has_min, has_max = "min" in gate, "max" in gate
        if has_min == has_max:
            raise ValidationFailed(f"{where}: give exactly one of 'min' or 'max' for {metric}")
        bound = "min" if has_min else "max"
        threshold = _number(gate[bound], f"'{bound}' in {where}")
        key = metric_key(metric, attribute)
        op = ">=" if has_min else "<="
        name = gate.get("name", f"{key} {op} {threshold:g}")
        if not isinstance(name, str) or not name.strip():
            raise ValidationFailed(f"'name' in {where} must be a non-empty string")
        if name in names:
            raise ValidationFailed(f"{where}: another gate is already named {name!r}")
        names.add(name)
        normalized.append(
            {
                "name": name,
                "metric": metric,
                "attribute": attribute,
                "min": threshold if has_min else None,
                "max": None if has_min else threshold,
            }
        )
    return {"gates": normalized}
