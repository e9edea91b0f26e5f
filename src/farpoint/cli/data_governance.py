"""`farpoint dataset quality|profile|classify|contract|compare`: what a dataset version's
rows are worth: its quality checks, column statistics, personal-data review, contract and
drift. (Pseudonymization, retention, erasure and lineage are in cli/data_privacy.py.)

Registered on `dataset_app` (cli/datasets.py) when cli/main.py imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.datasets import FailOn, Ref, dataset_app
from farpoint.cli.params import Json
from farpoint.cli.session import client
from farpoint.wire.datasets import ClassificationOut, QualityOut

__all__ = ["contract_app", "failed_checks", "sparkline"]

contract_app = typer.Typer(
    help="The dataset's contract: the rules each new version is checked against, as YAML.",
    no_args_is_help=True,
)
dataset_app.add_typer(contract_app, name="contract")

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}
_VERDICT_STYLE = {
    "significant": "red",
    "type_changed": "red",
    "moderate": "yellow",
    "none": "green",
    "added": "cyan",
    "removed": "cyan",
    "not_compared": "dim",
}
_VERDICT_WORDS = {
    "none": "no drift",
    "type_changed": "type changed",
    "not_compared": "not compared",
}
_ROLE_STYLE = {"pii": "red", "protected": "yellow", "label": "green", "id": "dim"}
_BARS = "▁▂▃▄▅▆▇█"
_CHANGE_KEYS = ("column", "change", "kind")

Name = Annotated[str, typer.Argument(help="The dataset's name.")]


# -- quality -------------------------------------------------------------------------------


def failed_checks(report: dict[str, Any], fail_on: FailOn) -> list[dict[str, Any]]:
    """The failed checks of `fail_on` severity or worse."""
    worst = _SEVERITY_ORDER[fail_on.value]
    return [
        c
        for c in report.get("checks", [])
        if not c.get("passed", True) and _SEVERITY_ORDER.get(c.get("severity", ""), 9) <= worst
    ]


def _check_order(c: dict[str, Any]) -> tuple[bool, int, str, str]:
    return (
        bool(c.get("passed", True)),
        _SEVERITY_ORDER.get(str(c.get("severity")), 9),
        str(c.get("column") or ""),
        str(c.get("check") or ""),
    )


def _check_rows(checks: list[dict[str, Any]]) -> Table:
    grid = Table("", "check", "column", "severity", "value", "threshold")
    grid.header_style = "bold"
    for c in sorted(checks, key=_check_order):
        passed = bool(c.get("passed", True))
        severity = str(c.get("severity") or "-")
        style = "green" if passed else _SEVERITY_STYLE.get(severity, "")
        grid.add_row(
            Text(render.PASS if passed else render.FAIL, style=style),
            Text(str(c.get("check") or "-")),
            Text(render.cell(c.get("column")) if c.get("column") else "(table)"),
            Text(severity, style="dim" if passed else style),
            Text(render.cell(c.get("value"))),
            Text(render.cell(c.get("threshold"))),
        )
    return grid


def _why(checks: list[dict[str, Any]]) -> None:
    """One line per failed check saying what is wrong: wider than any table cell."""
    for c in sorted(checks, key=_check_order):
        if c.get("passed", True):
            continue
        severity = str(c.get("severity") or "-")
        where = f" on {c['column']}" if c.get("column") else ""
        render.console.print(
            Text(f"{render.FAIL} {c.get('check')}{where} ({severity}): {c.get('detail') or ''}"),
            style=_SEVERITY_STYLE.get(severity, ""),
        )


def _validation(q: QualityOut) -> None:
    v = q.validation
    contract = f"contract version {q.contract_version}" if q.contract_version else "no contract"
    if v is None:
        render.console.print(Text(f"{contract}: not validated", style="dim"))
        return
    failures = v.get("failures") or []
    rows = v.get("rows_checked")
    checked = f" over {rows:,} rows" if isinstance(rows, int) else ""
    if v.get("passed", not failures):
        render.console.print(Text(f"{render.PASS} {contract}: every rule holds{checked}", "green"))
        return
    render.console.print(
        Text(f"{render.FAIL} {contract}: {len(failures)} rule(s) broken{checked}", "red")
    )
    render.table(
        ["column", "rule", "rows", "examples", "detail"],
        (
            (
                f.get("column") or "(table)",
                f.get("check", "-"),
                f.get("failure_count"),
                _examples(f.get("examples") or []),
                f.get("detail"),
            )
            for f in failures
        ),
    )


def _examples(examples: list[Any]) -> str:
    shown = []
    for e in examples[:3]:
        if isinstance(e, dict):
            # Schema failures have no row; redacted examples (sensitive columns) no value.
            where = "" if e.get("row") is None else f"row {e['row']}"
            value = repr(e["value"]) if "value" in e else ""
            shown.append(": ".join(x for x in (where, value) if x) or "-")
        else:
            shown.append(repr(e))
    more = len(examples) - len(shown)
    return "; ".join(shown) + (f" (+{more})" if more > 0 else "") if shown else "-"


@dataset_app.command("quality")
def quality(
    ctx: typer.Context,
    ref: Ref,
    fail_on: Annotated[
        FailOn,
        typer.Option(
            "--fail-on",
            help="The lowest severity of failed check that exits 1.",
            case_sensitive=False,
        ),
    ] = FailOn.ERROR,
    as_json: Json = False,
) -> None:
    """Quality checks of a dataset version, failed first, and the contract's verdict.

    Exit codes, so CI pipelines can gate on it: 0 no check of --fail-on severity (error
    by default) or worse failed; 1 one did, or the request was refused; 2 cannot reach
    the server.
    """
    q = client(ctx).get_quality(ref)
    # The report's own verdict counts too: it fails on error checks whatever --fail-on says.
    failed = bool(failed_checks(q.report, fail_on)) or q.report.get("passed") is False
    if as_json:
        render.emit_json(q)
    else:
        checks = q.report.get("checks") or []
        render.console.print(Text(q.ref, style="bold"))
        if checks:
            render.console.print(_check_rows(checks))
            _why(checks)
        _validation(q)
        errors, warnings = q.report.get("errors", 0), q.report.get("warnings", 0)
        verdict = f"{errors} error(s), {warnings} warning(s) across {len(checks)} checks"
        if failed:
            render.console.print(Text(f"{render.FAIL} {verdict}", style="red bold"))
        else:
            style = "yellow" if warnings else "green"
            render.console.print(Text(f"{render.PASS} {verdict}", style=style))
    if failed:
        raise typer.Exit(1)


# -- profile -------------------------------------------------------------------------------


def sparkline(counts: list[int]) -> str:
    """`▁▃█▅▁`: one bar per bin, scaled to the fullest."""
    top = max(counts, default=0)
    if not top:
        return "▁" * len(counts)
    steps = len(_BARS) - 1
    return "".join(_BARS[min(steps, round(c / top * steps))] for c in counts)


def _values(stats: dict[str, Any]) -> str:
    """What a column's values look like, in one cell."""
    if stats.get("redacted") or stats.get("private"):
        return "(withheld)"
    if stats.get("kind") == "boolean":
        return f"true {stats.get('true_count', 0):,} · false {stats.get('false_count', 0):,}"
    top = stats.get("top")
    if top:
        shown = ", ".join(f"{t['value']} ({t['count']:,})" for t in top[:4])
        return shown + (f" +{len(top) - 4} more" if len(top) > 4 else "")
    if stats.get("kind") == "temporal":
        return f"{stats.get('min', '-')} … {stats.get('max', '-')}"
    parts = [f"{k} {render.cell(stats[k])}" for k in ("min", "mean", "max") if k in stats]
    return " · ".join(parts) or "-"


def _nulls(stats: dict[str, Any]) -> str:
    n = stats.get("null_count")
    if n is None:
        return "-"
    return f"{n:,} ({stats.get('null_rate', 0):.1%})" if n else "0"


def _distinct(stats: dict[str, Any]) -> str:
    n = stats.get("distinct")
    if n is None:
        return "-"
    return f"{n:,}" if stats.get("distinct_exact", True) else f"≥ {n:,}"


@dataset_app.command("profile")
def profile(ctx: typer.Context, ref: Ref, as_json: Json = False) -> None:
    """Per-column statistics of a dataset version, with a sparkline of each histogram.

    The histogram edges were frozen when the version was registered: later versions and
    devices count into the same bins, which is how drift is measured. Values of PII and
    identifier columns are never shown, only counts."""
    sdk = client(ctx)
    version = sdk.get_dataset_version(ref)
    found = sdk.get_profile(version.ref)
    if as_json:
        render.emit_json(found)
        return
    grid = Table("column", "type", "role", "nulls", "distinct", "values", "histogram")
    grid.header_style = "bold"
    grid.columns[-1].no_wrap = True  # a cut sparkline would read as a different shape
    for name, stats in (found.get("columns") or {}).items():
        hist = stats.get("histogram") or {}
        # The version's roles, not the profile's: a review may have changed them since.
        role = render.cell(version.roles.get(name, stats.get("role")))
        grid.add_row(
            Text(name),
            Text(str(stats.get("dtype", "-"))),
            Text(role, style=_ROLE_STYLE.get(role, "")),
            _nulls(stats),
            _distinct(stats),
            Text(_values(stats), style="dim" if stats.get("redacted") else ""),
            Text(sparkline(hist.get("counts") or []), style="cyan"),
        )
    render.console.print(Text(f"{version.ref} · {version.row_count:,} rows", style="bold"))
    render.console.print(grid)


# -- classification ------------------------------------------------------------------------


def _show_classification(c: ClassificationOut) -> None:
    if not c.findings:
        render.console.print(
            Text(f"{c.ref}: no column looks like PII, a protected attribute or an identifier")
        )
        return
    grid = Table("column", "proposed", "kind", "confidence", "status", "role now", "evidence")
    grid.header_style = "bold"
    for f in c.findings:
        status_style = {"proposed": "yellow", "accepted": "green", "rejected": "dim"}[f.status]
        status = f.status + (f" by {f.reviewed_by}" if f.reviewed_by else "")
        grid.add_row(
            Text(f.column),
            Text(f.role, style="red" if f.role == "pii" else ""),
            Text(f.kind),
            f"{f.confidence:.0%}",
            Text(status, style=status_style),
            Text(render.cell(c.roles.get(f.column))),
            Text(f"{f.evidence} ({f.source})"),
        )
    render.console.print(Text(c.ref, style="bold"))
    render.console.print(grid)
    pending = [f.column for f in c.findings if f.status == "proposed"]
    if pending:
        accept = " ".join(f"--accept {p}" for p in pending)
        render.console.print(
            Text(f"to accept: farpoint dataset classify {c.ref} {accept}", style="yellow")
        )


@dataset_app.command("classify")
def classify(
    ctx: typer.Context,
    ref: Ref,
    accept: Annotated[
        list[str] | None,
        typer.Option("--accept", help="Give COLUMN its proposed role; repeat.", metavar="COLUMN"),
    ] = None,
    reject: Annotated[
        list[str] | None,
        typer.Option("--reject", help="Keep COLUMN's role; repeat.", metavar="COLUMN"),
    ] = None,
    as_json: Json = False,
) -> None:
    """Review the columns proposed as PII, protected attributes or identifiers.

    Without --accept or --reject, lists the proposals with their evidence."""
    sdk = client(ctx)
    if accept or reject:
        # Review the version the user saw, even if another is uploaded meanwhile.
        ref = sdk.get_dataset_version(ref).ref
        out = sdk.review_classification(ref, accept=accept or (), reject=reject or ())
    else:
        out = sdk.get_classification(ref)
    if as_json:
        render.emit_json(out)
        return
    _show_classification(out)


# -- contract ------------------------------------------------------------------------------


@contract_app.command("show")
def contract_show(
    ctx: typer.Context,
    name: Name,
    version: Annotated[
        int | None, typer.Option("--version", min=1, help="A past version (default: the latest).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Print the contract as YAML: redirect it to a file, edit, then `contract set`."""
    c = client(ctx).get_contract(name, version)
    if as_json:
        render.emit_json(c)
        return
    render.note(f"# {name} contract version {c.version} ({c.source}), by {c.created_by}")
    typer.echo(c.yaml if c.yaml.endswith("\n") else c.yaml + "\n", nl=False)


@contract_app.command("set")
def contract_set(
    ctx: typer.Context,
    name: Name,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="The YAML file.")
    ],
    as_json: Json = False,
) -> None:
    """Make FILE the next contract version.

    Versions uploaded from then on are validated against it."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}", param_hint="FILE") from exc
    c = client(ctx).set_contract(name, text)
    if as_json:
        render.emit_json(c)
        return
    render.console.print(
        Text(f"{render.PASS} {name}: contract version {c.version}, from {file.name}", "green")
    )
    render.console.print(
        Text("versions uploaded from now on are validated against it", style="dim")
    )


# -- compare -------------------------------------------------------------------------------


def _verdict(word: str) -> Text:
    return Text(_VERDICT_WORDS.get(word, word), style=_VERDICT_STYLE.get(word, "yellow"))


def _score(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}"


def _drift_row(column: str, d: dict[str, Any]) -> list[Text]:
    if not (d.get("in_old", True) and d.get("in_new", True)):
        return [Text(column), *(Text("-") for _ in range(6)), _verdict(str(d.get("verdict")))]
    dtype = str(d.get("dtype_old", "-"))
    if d.get("dtype_changed"):
        dtype += f" → {d.get('dtype_new')}"
    nulls = f"{d.get('null_rate_old', 0):.1%}"
    if d.get("null_rate_change"):
        nulls += f" → {d.get('null_rate_new', 0):.1%}"
    shift = d.get("mean_shift_std")
    return [
        Text(column),
        Text(dtype, style="red" if d.get("dtype_changed") else ""),
        Text(nulls, style="yellow" if d.get("null_rate_change") else ""),
        Text("-" if shift is None else f"{shift:+.2f} σ"),
        Text(_score(d.get("psi"))),
        Text(_score(d.get("js_distance"))),
        Text(_score(d.get("chi_square_p"))),
        _verdict(str(d.get("verdict"))),
    ]


@dataset_app.command("compare")
def compare(
    ctx: typer.Context,
    name: Name,
    old: Annotated[int, typer.Argument(min=1, help="The older version number.")],
    new: Annotated[int, typer.Argument(min=1, help="The newer version number.")],
    as_json: Json = False,
) -> None:
    """Schema changes and per-column drift from version OLD to NEW of dataset NAME.

    Numeric columns are compared over OLD's frozen bins, categories over both versions'
    categories: PSI under 0.1 is no drift, 0.1 to 0.2 moderate, 0.2 and over significant,
    except where a chi-square test cannot tell the change from chance (p >= 0.05). The
    mean shift is in units of OLD's standard deviation."""
    cmp = client(ctx).compare_dataset_versions(name, old, new)
    if as_json:
        render.emit_json(cmp)
        return
    render.console.print(Text(f"{cmp.old} → {cmp.new}", style="bold"))
    if cmp.schema_changes:
        render.table(
            ["column", "change", "detail"],
            (
                (
                    ch.get("column", "-"),
                    ch.get("change", ch.get("kind", "-")),
                    render.pairs({k: v for k, v in ch.items() if k not in _CHANGE_KEYS}),
                )
                for ch in cmp.schema_changes
            ),
            title="schema changes",
        )
    else:
        render.console.print(Text("schema: unchanged", style="green"))
    grid = Table("column", "type", "null rate", "mean shift", "PSI", "JS", "chance p", "verdict")
    grid.header_style = "bold"
    for column, d in cmp.columns.items():
        grid.add_row(*_drift_row(column, d if isinstance(d, dict) else {}))
    render.console.print(grid)
