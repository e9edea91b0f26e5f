"""How one dataset version's columns look in the console: its quality checks, missing
values, per-column histograms over the frozen bins, and drift since the previous version.
Drawn by the dataset page (pages/dataset_detail.py)."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping
from typing import Any

from nicegui import ui

from farpoint.console.widgets import ROLE_COLOURS, empty_state, num, section
from farpoint.console.widgets import table as plain_table
from farpoint.wire.datasets import QualityOut, VersionComparison

__all__ = [
    "SEVERITY_COLOURS",
    "VERDICT_COLOURS",
    "bin_labels",
    "drift_section",
    "plural",
    "profile_section",
    "quality_section",
]

SEVERITY_COLOURS = {"error": "negative", "warning": "orange-8", "info": "grey-6"}
"""Quasar colours of a failed check by severity; a passed check is green."""
VERDICT_COLOURS = {
    "significant": "negative",
    "type_changed": "negative",
    "moderate": "orange-8",
    "none": "positive",
    "added": "blue-7",
    "removed": "blue-7",
    "not_compared": "grey-6",
}
_VERDICT_WORDS = {
    "none": "no drift",
    "type_changed": "type changed",
    "not_compared": "not compared",
}
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_BIN_START_JS = "v => v.startsWith('[') ? v.slice(1, v.indexOf(',')) : v"
_CHARTS = 60
"""Column histograms drawn at most; `farpoint dataset profile` shows every column."""


def plural(n: int, word: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {word}" + ("" if n == 1 else "s")


# -- quality -------------------------------------------------------------------------------


def _check_rows(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def order(c: dict[str, Any]) -> tuple[bool, int, str]:
        severity = _SEVERITY_ORDER.get(str(c.get("severity")), 9)
        return bool(c.get("passed", True)), severity, str(c.get("column") or "")

    rows = []
    for i, c in enumerate(sorted(checks, key=order)):
        passed = bool(c.get("passed", True))
        severity = str(c.get("severity") or "info")
        rows.append(
            {
                "id": i,
                "mark": "✓" if passed else "✗",
                "check": c.get("check") or "",
                "column": c.get("column") or "(whole table)",
                "severity": severity,
                "tone": "positive" if passed else SEVERITY_COLOURS.get(severity, "grey-6"),
                "value": _cell(c.get("value")),
                "threshold": _cell(c.get("threshold")),
                "detail": c.get("detail") or "",
            }
        )
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return num(value)
    return str(value)


def quality_section(q: QualityOut | None, profile: dict[str, Any] | None, problem: str) -> None:
    """The checks (failed ones first, passed ones folded), the contract's failures with
    examples, and missing values per column; `problem` says why there is no report."""
    section("Quality", "every check, failed first; red fails the version, orange warns")
    if q is None:
        empty_state(f"No quality report: {problem or 'not available'}")
        return
    rows = _check_rows(q.report.get("checks") or [])
    failed = [r for r in rows if r["mark"] == "✗"]
    passed = [r for r in rows if r["mark"] == "✓"]
    if failed:
        _checks_table(failed).classes("quality-table")
    else:
        ui.label(f"✓ All {len(passed)} checks passed.").classes("text-positive text-body1")
    if passed and failed:
        # What passed matters less than what failed: it stays one click away.
        with ui.expansion(f"{len(passed)} checks passed", icon="check").classes(
            "w-full passed-checks"
        ):
            _checks_table(passed)
    _validation(q)
    _missing_chart(profile)


def _checks_table(rows: list[dict[str, Any]]) -> ui.table:
    t = plain_table(
        [("mark", ""), ("check", "Check"), ("column", "Column"), ("severity", "Severity"),
         ("value", "Value"), ("threshold", "Threshold"), ("detail", "Detail")],
        rows,
        key="id",
    )  # fmt: skip
    t.add_slot(
        "body-cell-severity",
        '<q-td :props="props"><q-badge :color="props.row.tone" :label="props.value" /></q-td>',
    )
    t.add_slot(
        "body-cell-mark",
        '<q-td :props="props" :class="\'text-\' + props.row.tone">{{ props.value }}</q-td>',
    )
    return t


def _validation(q: QualityOut) -> None:
    v = q.validation
    if not v:
        return
    failures = v.get("failures") or []
    contract = f"contract version {q.contract_version}"
    if not failures:
        ui.label(f"✓ Every rule of {contract} holds.").classes("text-positive text-body2")
        return
    ui.label(f"✗ {len(failures)} rule(s) of {contract} broken").classes(
        "text-negative text-body2 text-weight-medium"
    )
    plain_table(
        [
            ("column", "Column"),
            ("rule", "Rule"),
            ("rows", "Rows"),
            ("examples", "Examples"),
            ("detail", "Detail"),
        ],
        [
            {
                "id": i,
                "column": f.get("column") or "(whole table)",
                "rule": f.get("check", ""),
                "rows": _cell(f.get("failure_count")),
                "examples": _examples(f.get("examples") or []),
                "detail": f.get("detail") or "",
            }
            for i, f in enumerate(failures)
        ],
        key="id",
    )


def _examples(examples: list[Any]) -> str:
    shown = []
    for e in examples[:3]:
        if isinstance(e, dict):
            # Schema failures have no row; examples of sensitive columns have no value.
            where = "" if e.get("row") is None else f"row {e['row']}"
            value = repr(e["value"]) if "value" in e else ""
            shown.append(": ".join(x for x in (where, value) if x))
    return "; ".join(x for x in shown if x)


def _missing_chart(profile: dict[str, Any] | None) -> None:
    columns = (profile or {}).get("columns") or {}
    if not columns:
        return
    names = list(columns)
    rates = [round(100 * float(columns[n].get("null_rate") or 0), 2) for n in names]
    if not any(rates):
        ui.label("No value is missing in any column.").classes("text-body2 text-grey-8 mt-2")
        return
    ui.label("Missing values per column (% of rows)").classes("text-caption text-grey-8 mt-2")
    ui.echart(
        {
            "grid": {"left": 48, "right": 16, "top": 16, "bottom": 72},
            "tooltip": {"trigger": "axis"},
            "xAxis": {"type": "category", "data": names, "axisLabel": {"rotate": 30}},
            "yAxis": {"type": "value", "min": 0},
            "series": [
                {
                    "type": "bar",
                    "name": "missing %",
                    "data": [
                        {"value": r, "itemStyle": {"color": "#c62828" if r else "#9e9e9e"}}
                        for r in rates
                    ],
                }
            ],
        }
    ).classes("w-full h-44 missing-chart")


# -- profile -------------------------------------------------------------------------------


def _edge_text(x: float, unit: str | None) -> str:
    if unit == "days since 1970-01-01":
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(x))).isoformat()
    if unit and unit.endswith("since 1970-01-01"):
        per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}.get(unit.split()[0], 1)
        moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=x / per_second)
        return moment.strftime("%Y-%m-%d %H:%M")
    return num(x)


def bin_labels(edges: list[float], unit: str | None = None) -> list[str]:
    """A label per bin over `edges` (len(edges) + 1 bins, open tails, see core.drift):
    `< a`, `[a, b)`, ..., `≥ z`; `5` for the one-integer bins of a small integer range."""
    if not edges:
        return []
    one_per_integer = unit is None and all(
        float(b) - float(a) == 1 and float(a).is_integer() for a, b in itertools.pairwise(edges)
    )
    text = [_edge_text(e, unit) for e in edges]
    middle = [
        text[i] if one_per_integer else f"[{text[i]}, {text[i + 1]})" for i in range(len(edges) - 1)
    ]
    return [f"< {text[0]}", *middle, f"≥ {text[-1]}"]


def _histogram(stats: dict[str, Any]) -> tuple[list[str], list[int]] | None:
    hist = stats.get("histogram")
    if isinstance(hist, dict) and hist.get("edges") and hist.get("counts"):
        labels, counts = bin_labels(hist["edges"], hist.get("unit")), list(hist["counts"])
        # The open tails are usually empty: drop them then, keep them when they hold values.
        if counts and counts[-1] == 0:
            labels, counts = labels[:-1], counts[:-1]
        if counts and counts[0] == 0:
            labels, counts = labels[1:], counts[1:]
        return labels, counts
    if stats.get("kind") == "boolean":
        return ["false", "true"], [stats.get("false_count", 0), stats.get("true_count", 0)]
    top = stats.get("top")
    if top:
        labels = [str(t["value"]) for t in top[:20]]
        counts = [int(t["count"]) for t in top[:20]]
        if stats.get("other_count"):
            labels.append("(others)")
            counts.append(int(stats["other_count"]))
        return labels, counts
    return None


def _summary(stats: dict[str, Any]) -> str:
    parts = [f"{stats.get('null_count', 0):,} missing"]
    if stats.get("distinct") is not None:
        approx = "" if stats.get("distinct_exact", True) else "≥ "
        parts.append(f"{approx}{stats['distinct']:,} distinct")
    if stats.get("redacted") or stats.get("private"):
        return " · ".join(parts)
    if stats.get("kind") == "numeric":
        parts += [f"{k} {num(stats.get(k))}" for k in ("min", "mean", "max") if k in stats]
    elif stats.get("kind") == "temporal":
        parts.append(f"{stats.get('min')} … {stats.get('max')}")
    return " · ".join(parts)


def _redacted_because(role: str) -> str:
    if role in ("pii", "id"):
        return f"redacted: values of {role} columns never leave the rows, only counts"
    # The server keeps the values of a column proposed as PII out of the profile from the
    # start, and a later rejection does not bring them back.
    return "redacted: proposed as PII at registration, so its values stayed out"


def profile_section(
    profile: dict[str, Any] | None, roles: Mapping[str, str], ref: str, problem: str
) -> None:
    """A card per column: type, current role, counts, and a histogram over the frozen bins
    (or the top categories); values of sensitive columns are never drawn."""
    section(
        "Profile",
        "one histogram per column, over bin edges frozen at registration: later versions "
        "and devices count into the same bins",
    )
    columns = (profile or {}).get("columns") or {}
    if not columns:
        empty_state(f"No profile: {problem or 'not available'}")
        return
    with ui.grid(columns=3).classes("w-full gap-3"):
        for name, stats in list(columns.items())[:_CHARTS]:
            # The version's roles, not the profile's: a review may have changed them since.
            _profile_card(name, stats, str(roles.get(name, stats.get("role", "feature"))))
    if len(columns) > _CHARTS:
        ui.label(f"{len(columns) - _CHARTS} more columns: farpoint dataset profile {ref}").classes(
            "text-caption text-grey-7"
        )


def _profile_card(name: str, stats: dict[str, Any], role: str) -> None:
    with ui.card().props("flat bordered").classes("gap-1 profile-card"):
        with ui.row().classes("items-center gap-2 no-wrap"):
            ui.label(name).classes("text-subtitle2 text-weight-bold")
            ui.label(str(stats.get("dtype", ""))).classes("text-caption text-grey-7")
            ui.space()
            ui.chip(role, color=ROLE_COLOURS.get(role, "grey-7"), text_color="white").props(
                "dense square"
            )
        ui.label(_summary(stats)).classes("text-caption text-grey-8")
        if stats.get("redacted"):
            ui.label(_redacted_because(role)).classes("text-caption text-red-8 redacted h-36")
            return
        drawn = _histogram(stats)
        if drawn is None:
            ui.label("no histogram for this type").classes("text-caption text-grey-6 h-36")
        else:
            _bars(*drawn)


def _bars(labels: list[str], counts: list[int]) -> None:
    ui.echart(
        {
            "grid": {"left": 40, "right": 8, "top": 8, "bottom": 56},
            "tooltip": {"trigger": "axis"},
            "xAxis": {
                "type": "category",
                "data": labels,
                # The axis shows where each bin starts; the tooltip names the whole bin.
                "axisLabel": {
                    "rotate": 40,
                    "fontSize": 9,
                    "hideOverlap": True,
                    ":formatter": _BIN_START_JS,
                },
            },
            "yAxis": {"type": "value", "minInterval": 1, "axisLabel": {"fontSize": 9}},
            "series": [{"type": "bar", "data": counts, "barCategoryGap": "8%"}],
        }
    ).classes("w-full h-36 histogram")


def drift_section(cmp: VersionComparison | None, first: bool, problem: str) -> None:
    """Drift per column from the previous version, with its verdict; `first` when there is
    no previous version."""
    section(
        "Drift since the previous version",
        "PSI under 0.1 is no drift, 0.2 and over significant; a change a chi-square test "
        "cannot tell from chance (p ≥ 0.05) is no drift either",
    )
    if first:
        ui.label("This is the first version: nothing to compare with.").classes(
            "text-body2 text-grey-8"
        )
        return
    if cmp is None:
        empty_state(f"Not compared: {problem or 'not available'}")
        return
    ui.label(f"{cmp.old} → {cmp.new}").classes("text-body2 font-mono")
    for change in cmp.schema_changes:
        ui.label("schema: " + ", ".join(f"{k} {v}" for k, v in change.items())).classes(
            "text-body2 text-orange-9"
        )
    rows = []
    for column, e in cmp.columns.items():
        e = e if isinstance(e, dict) else {}
        verdict = str(e.get("verdict", ""))
        shift = e.get("mean_shift_std")
        rows.append(
            {
                "column": column,
                "null": "—" if "null_rate_old" not in e
                else f"{e['null_rate_old']:.1%} → {e.get('null_rate_new', 0):.1%}",
                "shift": "—" if shift is None else f"{shift:+.2f} σ",
                "psi": _score(e.get("psi")),
                "js": _score(e.get("js_distance")),
                "p": _score(e.get("chi_square_p")),
                "verdict": _VERDICT_WORDS.get(verdict, verdict),
                "tone": VERDICT_COLOURS.get(verdict, "grey-6"),
            }
        )  # fmt: skip
    t = plain_table(
        [("column", "Column"), ("null", "Missing"), ("shift", "Mean shift"), ("psi", "PSI"),
         ("js", "JS distance"), ("p", "Chance (p)"), ("verdict", "Verdict")],
        rows,
        key="column",
    )  # fmt: skip
    t.classes("drift-table")
    t.add_slot(
        "body-cell-verdict",
        '<q-td :props="props"><q-badge :color="props.row.tone" :label="props.value" /></q-td>',
    )


def _score(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"
