"""Policy YAML: the gates an evaluation must pass."""

from __future__ import annotations

import math
from typing import Any

from farpoint.core.errors import ValidationFailed
from farpoint.core.gates import metric_key

__all__ = [
    "DATA_DEFAULTS",
    "DEFAULT_POLICY_YAML",
    "FAIRNESS_METRICS",
    "METRICS",
    "PERFORMANCE_METRICS",
    "data_rules",
    "parse_policy",
]

PERFORMANCE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
FAIRNESS_METRICS = ("demographic_parity_difference",)
METRICS = PERFORMANCE_METRICS + FAIRNESS_METRICS

_TOP_KEYS = {"gates", "data"}
_DATA_KEYS = {"block_on", "allow_checks", "allow_protected_features"}
_SEVERITIES = ("error", "warning", "none")

DATA_DEFAULTS: dict[str, Any] = {
    "block_on": "error",
    "allow_checks": [],
    "allow_protected_features": [],
}
"""What applies to training data when a policy has no `data:` section (or none is named):
a failed quality check of severity error blocks registering a model trained on the data,
and no protected attribute may be a model input."""
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
    out: dict[str, Any] = {"gates": normalized}
    if "data" in doc:
        out["data"] = _parse_data(doc["data"], lines.get((-1, "data"), ""))
    return out


def _names(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
        raise ValidationFailed(f"{where} must be a list of names")
    return sorted(set(value))


def _parse_data(section: Any, at: str) -> dict[str, Any]:
    """The `data:` section: which quality failures of training data block a model."""
    if not isinstance(section, dict):
        raise ValidationFailed(f"policy 'data'{at} must be a mapping with {sorted(_DATA_KEYS)}")
    for key in section:
        if key not in _DATA_KEYS:
            raise ValidationFailed(
                f"unknown key {key!r} in policy 'data'{at}; allowed: {sorted(_DATA_KEYS)}"
            )
    block_on = section.get("block_on", DATA_DEFAULTS["block_on"])
    if block_on not in _SEVERITIES:
        raise ValidationFailed(
            f"'block_on' in policy 'data'{at} must be one of {list(_SEVERITIES)}: failed "
            f"checks of that severity or worse block a model; got {block_on!r}"
        )
    return {
        "block_on": block_on,
        "allow_checks": _names(section.get("allow_checks", []), f"'allow_checks'{at}"),
        "allow_protected_features": _names(
            section.get("allow_protected_features", []), f"'allow_protected_features'{at}"
        ),
    }


def data_rules(spec: dict[str, Any] | None) -> dict[str, Any]:
    """The data rules of a normalized policy, the defaults where it has none."""
    return dict((spec or {}).get("data") or DATA_DEFAULTS)
