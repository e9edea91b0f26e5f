"""The rules a data contract can state, and its YAML form: one line per column that a
data scientist edits (`contract_to_yaml`), parsed back with errors that name the key,
the value and the line (`parse_contract`). See `farpoint.ml.contract`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from farpoint.core.errors import ValidationFailed

__all__ = ["CATEGORICAL", "NUMERIC", "RULE_KEYS", "TYPES", "contract_to_yaml", "parse_contract"]

TYPES = (
    "bool",
    "int64",
    "float64",
    "string",
    "date32[day]",
    "timestamp[us]",
    "timestamp[us, tz=UTC]",
)
NUMERIC = ("int64", "float64")
CATEGORICAL = ("string", "int64")

RULE_KEYS = ("type", "nullable", "min", "max", "allowed", "unique")
"""Rules per column, in the order the YAML states them."""
_TOP_KEYS = ("columns", "strict")
_HOW_TO_SET = "edit and upload with `farpoint dataset contract set`"


def _flow(value: Any) -> str:
    """One YAML flow scalar or collection, on one line, quoted where YAML needs it."""
    import yaml

    text: str = yaml.safe_dump(
        [value], default_flow_style=True, sort_keys=False, width=2**30, allow_unicode=True
    )
    return text.strip()[1:-1]


def contract_to_yaml(
    contract: Mapping[str, Any], *, dataset: str | None = None, source: str | None = None
) -> str:
    """The YAML a data scientist edits: a header comment and one line per column."""
    if dataset and source:
        header = f"# Contract of dataset {dataset} (inferred from {source}; {_HOW_TO_SET})"
    elif dataset:
        header = f"# Contract of dataset {dataset} ({_HOW_TO_SET})"
    else:
        header = f"# Data contract ({_HOW_TO_SET})"
    lines = [
        header,
        "# Per column: type, nullable, min/max (int64, float64), allowed (string, int64),",
        "# unique. Every new version of the dataset is validated against these rules.",
        "columns:",
    ]
    for name, rules in contract["columns"].items():
        ordered = {k: rules[k] for k in RULE_KEYS if k in rules}
        lines.append(f"  {_flow(name)}: {_flow(ordered)}")
    strict = bool(contract.get("strict", True))
    note = "columns not named here are refused" if strict else "other columns are accepted"
    lines.append(f"strict: {'true' if strict else 'false'}   # {note}")
    return "\n".join(lines) + "\n"


def _line(node: Any) -> str:
    mark = getattr(node, "start_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def _key_lines(root: Any) -> dict[tuple[str, ...], str]:
    """`(key path) -> " (line N)"` from the YAML node tree, for error messages."""
    import yaml

    lines: dict[tuple[str, ...], str] = {}
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, value_node in root.value:
        top = str(key_node.value)
        lines[(top,)] = _line(key_node)
        if top != "columns" or not isinstance(value_node, yaml.MappingNode):
            continue
        for col_key, col_value in value_node.value:
            name = str(col_key.value)
            if ("columns", name) in lines:
                # YAML would quietly keep the last one; an edit was probably lost.
                first = lines[("columns", name)].strip(" ()").removeprefix("line ")
                raise ValidationFailed(
                    f"column {name!r} appears twice, at lines {first} and "
                    f"{col_key.start_mark.line + 1}: keep one"
                )
            lines[("columns", name)] = _line(col_key)
            if isinstance(col_value, yaml.MappingNode):
                for rule_key, rule_value in col_value.value:
                    where = ("columns", name, str(rule_key.value))
                    if where in lines:
                        raise ValidationFailed(
                            f"rule {rule_key.value!r} of column {name!r} is given twice"
                            f"{_line(rule_key)}"
                        )
                    lines[where] = _line(rule_value)
    return lines


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def parse_contract(text: str) -> dict[str, Any]:
    """The normalised contract from its YAML; ValidationFailed names the bad key, value
    and line."""
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValidationFailed(f"contract is not valid YAML: {exc}") from exc
    at = _key_lines(root)
    if not isinstance(doc, dict):
        raise ValidationFailed("a contract must be a YAML mapping with a 'columns' mapping")
    for key in doc:
        if key not in _TOP_KEYS:
            raise ValidationFailed(
                f"unknown contract key {key!r}{at.get((str(key),), '')}; allowed: {list(_TOP_KEYS)}"
            )
    columns = doc.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ValidationFailed(
            "contract 'columns' must be a mapping of each column's name to its rules"
            f"{at.get(('columns',), '')}, such as 'age: {{type: int64, nullable: false}}'"
        )
    strict = doc.get("strict", True)
    if not isinstance(strict, bool):
        raise ValidationFailed(
            f"contract 'strict'{at.get(('strict',), '')} must be true or false, got {strict!r}"
        )
    return {
        "columns": {name: _parse_rules(name, rules, at) for name, rules in columns.items()},
        "strict": strict,
    }


def _parse_rules(name: Any, rules: Any, at: dict[tuple[str, ...], str]) -> dict[str, Any]:
    where = at.get(("columns", str(name)), "")
    if not isinstance(name, str):
        raise ValidationFailed(
            f"column name {name!r}{where} must be a string: quote it, as in '\"{name}\":'"
        )
    if not isinstance(rules, dict):
        raise ValidationFailed(
            f"column {name!r}{where} must be a mapping of rules, such as "
            "{type: int64, nullable: false}"
        )

    def bad(key: str, message: str) -> ValidationFailed:
        line = at.get(("columns", name, key), where)
        return ValidationFailed(f"{key!r} of column {name!r}{line}: {message}", column=name)

    for key in rules:
        if key not in RULE_KEYS:
            line = at.get(("columns", name, str(key)), where)
            raise ValidationFailed(
                f"unknown rule {key!r} for column {name!r}{line}; rules: {list(RULE_KEYS)}",
                column=name,
            )
    dtype = rules.get("type")
    if dtype is None:
        raise ValidationFailed(f"column {name!r}{where} needs a 'type', one of {list(TYPES)}")
    if dtype not in TYPES:
        raise bad("type", f"unknown type {dtype!r}; types: {list(TYPES)}")
    out: dict[str, Any] = {"type": dtype, "nullable": rules.get("nullable", False)}
    if not isinstance(out["nullable"], bool):
        raise bad("nullable", f"must be true or false, got {out['nullable']!r}")
    for key in ("min", "max"):
        if key in rules:
            if dtype not in NUMERIC:
                raise bad(key, f"ranges apply to {list(NUMERIC)} columns, not {dtype}")
            if not _is_number(rules[key]):
                raise bad(key, f"must be a finite number, got {rules[key]!r}")
            out[key] = rules[key]
    if "min" in out and "max" in out and out["min"] > out["max"]:
        raise bad("max", f"max {out['max']!r} is below min {out['min']!r}")
    if "allowed" in rules:
        out["allowed"] = _parse_allowed(dtype, rules["allowed"], bad)
    if "unique" in rules:
        if not isinstance(rules["unique"], bool):
            raise bad("unique", f"must be true or false, got {rules['unique']!r}")
        if rules["unique"]:
            out["unique"] = True
    return out


def _parse_allowed(dtype: str, allowed: Any, bad: Any) -> list[Any]:
    if dtype not in CATEGORICAL:
        raise bad("allowed", f"allowed values apply to {list(CATEGORICAL)} columns, not {dtype}")
    if not isinstance(allowed, list) or not allowed:
        raise bad("allowed", f"must be a non-empty list such as [a, b], got {allowed!r}")
    for value in allowed:
        if dtype == "string" and not isinstance(value, str):
            raise bad("allowed", f"{value!r} is not a string: quote it, as in '{value}'")
        if dtype == "int64" and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad("allowed", f"{value!r} is not an integer")
    seen: set[Any] = set()
    for value in allowed:
        if value in seen:
            raise bad("allowed", f"{value!r} is listed twice")
        seen.add(value)
    return list(allowed)
