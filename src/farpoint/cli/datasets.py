"""`farpoint dataset ...`: upload, list, inspect and label dataset versions.

The governance commands (quality, profile, classify, contract, erase...) live in
`cli/data_governance.py` and register on the same `dataset_app`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref, parse_pairs
from farpoint.cli.session import client
from farpoint.wire.datasets import DatasetVersionOut, QualitySummary

__all__ = [
    "FailOn",
    "Ref",
    "dataset_app",
    "plural",
    "quality_failed",
    "quality_line",
    "review_hint",
]

dataset_app = typer.Typer(help="Governed datasets and their versions.", no_args_is_help=True)

RoleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        help="COLUMN=ROLE (feature, label, protected, pii, id, timestamp, ignored); repeat.",
        show_default=False,
    ),
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--type",
        help="COLUMN=TYPE forcing a CSV column's type (bool, int64, float64, string, date32, "
        "timestamp[us], timestamp[us, tz=UTC]), e.g. --type zip=string to keep leading "
        "zeros; repeat.",
        show_default=False,
    ),
]
Ref = Annotated[
    str, typer.Argument(help="NAME@VERSION (NAME alone: the latest).", callback=check_ref)
]


class FailOn(StrEnum):
    """The lowest severity of a failed quality check that fails the command."""

    ERROR = "error"
    WARNING = "warning"


def quality_failed(q: QualitySummary | None, fail_on: FailOn | None) -> bool:
    """Whether checks of `fail_on` severity or worse failed (never without `fail_on`)."""
    if fail_on is None or q is None:
        return False
    return not q.passed or q.errors > 0 or (fail_on is FailOn.WARNING and q.warnings > 0)


def plural(n: int, word: str) -> str:
    """`1 error`, `2 errors`."""
    return f"{n} {word}" + ("" if n == 1 else "s")


def quality_line(v: DatasetVersionOut) -> Text:
    """`✓ passed · 0 errors, 2 warnings` in the colour of the worst failure."""
    q = v.quality
    if q is None:
        return Text("no quality report (registered before reports existed)", style="dim")
    counts = f"{plural(q.errors, 'error')}, {plural(q.warnings, 'warning')}"
    if not q.passed or q.errors:
        return Text(f"{render.FAIL} failed · {counts}", style="red")
    if q.warnings:
        return Text(f"{render.PASS} passed · {counts}", style="yellow")
    return Text(f"{render.PASS} passed · {counts}", style="green")


def review_hint(v: DatasetVersionOut) -> list[str]:
    """What to type to review the columns proposed as PII, protected or identifiers."""
    if not v.pending_classification:
        return []
    accept = " ".join(f"--accept {c}" for c in v.pending_classification)
    return [
        f"see why:       farpoint dataset classify {v.ref}",
        f"accept them:   farpoint dataset classify {v.ref} {accept}",
        f"or reject:     farpoint dataset classify {v.ref} --reject COLUMN",
    ]


def _roles(pairs: list[str] | None, roles_file: Path | None) -> dict[str, str]:
    roles: dict[str, str] = {}
    if roles_file is not None:
        try:
            loaded = json.loads(roles_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(
                f"cannot read {roles_file}: {exc}", param_hint="--roles-file"
            ) from exc
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise typer.BadParameter(
                f'{roles_file} must hold a JSON object of column → role, like {{"age": "feature"}}',
                param_hint="--roles-file",
            )
        roles.update(loaded)
    roles.update(parse_pairs(pairs, "--role"))  # the command line wins over the file
    return roles


def _rows_state(v: DatasetVersionOut) -> Text:
    if not v.rows_available:
        why = v.purge_reason or "purged"
        return Text(f"purged ({why}, {render.when(v.purged_at)}); metadata kept", style="red")
    text = "stored"
    if v.erased_rows:
        text += f", {v.erased_rows} erased since registration (no longer match the digest)"
    if v.expires_at is not None:
        text += f", expire {render.when(v.expires_at)}"
    return Text(text, style="yellow" if v.erased_rows else "")


def _derivation(v: DatasetVersionOut) -> str | None:
    if v.parent is None:
        return None
    transform = dict(v.transform or {})
    kind = transform.pop("kind", "derived")
    return f"{kind} of {v.parent}" + (f" ({render.pairs(transform)})" if transform else "")


def _schema_change(c: dict[str, object]) -> str:
    """One change from the previous version's columns, as a person would say it."""
    kind, column, old, new = c.get("change"), c.get("column"), c.get("old"), c.get("new")
    if kind == "added":
        return f"+ {column} ({new})"
    if kind == "removed":
        return f"- {column} ({old})"
    if kind == "type_changed":
        return f"{column}: {old} → {new}"
    if kind == "nullability_changed":
        return f"{column}: {'now has nulls' if new else 'no nulls now'}"
    return "columns reordered"


def _show_version(v: DatasetVersionOut) -> None:
    pending = set(v.pending_classification)
    columns = Table("column", "type", "nullable", "role", header_style="bold")
    for c in v.columns:
        role = Text(render.cell(v.roles.get(c.name)))
        if c.name in pending:
            role.append(" · review pending", style="yellow")
        columns.add_row(Text(c.name), c.dtype, "yes" if c.nullable else "no", role)
    items: list[tuple[str, object]] = [
        ("rows", v.row_count),
        ("size", f"{v.size_bytes} bytes"),
        ("digest", v.digest),
        ("source", f"{v.source_filename} ({v.source_format})"),
    ]
    derivation = _derivation(v)
    if derivation:
        items.append(("derived", derivation))
    items += [
        ("created", f"{render.when(v.created_at)} by {v.created_by}"),
        ("quality", quality_line(v)),
        ("contract", "-" if v.contract_version is None else f"version {v.contract_version}"),
        ("stored rows", _rows_state(v)),
    ]
    if v.schema_changes:
        items.append(("schema", "; ".join(_schema_change(c) for c in v.schema_changes)))
    elif v.schema_changes == [] and v.version > 1:
        items.append(("schema", f"same columns as {v.dataset}@{v.version - 1}"))
    if pending:
        items.append(("to review", Text(", ".join(sorted(pending)), style="yellow")))
    render.fields(v.ref, items, footer=columns)
    hints = review_hint(v)
    if hints:
        render.console.print(
            Text(
                f"{len(pending)} column(s) look like PII, protected attributes or identifiers "
                "and nobody has reviewed them yet:",
                style="yellow",
            )
        )
        for line in hints:
            render.console.print(Text("  " + line))


@dataset_app.command("upload")
def upload(
    ctx: typer.Context,
    name: str,
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="CSV or Parquet.")
    ],
    roles: RoleOpt = None,
    roles_file: Annotated[
        Path | None,
        typer.Option("--roles-file", exists=True, dir_okay=False, help="JSON column → role."),
    ] = None,
    team: Annotated[str | None, typer.Option(help="The team that owns the dataset.")] = None,
    types: TypeOpt = None,
    fail_on: Annotated[
        FailOn | None,
        typer.Option(
            "--fail-on",
            help="Exit 1 (after registering) when quality checks of this severity or worse "
            "failed. Default: never.",
            case_sensitive=False,
            show_default=False,
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Upload FILE as the next version of dataset NAME.

    The version is registered whatever its quality; its report and the columns proposed
    as PII or protected are printed. Exit codes: 0 registered; 1 refused, or quality
    checks failed at the --fail-on severity; 2 cannot reach the server.
    """
    version = client(ctx).upload_dataset(
        name,
        file,
        roles=_roles(roles, roles_file),
        team=team,
        types=parse_pairs(types, "--type"),
    )
    if as_json:
        render.emit_json(version)
    else:
        _show_version(version)
    if quality_failed(version.quality, fail_on):
        render.error(
            f"{version.ref} is registered, but quality checks of severity {fail_on} or worse "
            f"failed; see `farpoint dataset quality {version.ref}`"
        )
        raise typer.Exit(1)


@dataset_app.command("list")
def dataset_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List datasets."""
    datasets = client(ctx).list_datasets()
    if as_json:
        render.emit_json(datasets)
        return
    render.table(
        ["name", "team", "latest", "created"],
        ((d.name, d.team, d.latest_version, d.created_at) for d in datasets),
        title="datasets",
    )


@dataset_app.command("versions")
def versions(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """List the versions of dataset NAME."""
    found = client(ctx).list_dataset_versions(name)
    if as_json:
        render.emit_json(found)
        return
    render.table(
        ["ref", "rows", "columns", "size", "digest", "by", "created"],
        (
            (
                v.ref,
                v.row_count,
                len(v.columns),
                v.size_bytes,
                render.short(v.digest),
                v.created_by,
                v.created_at,
            )
            for v in found
        ),
        title=f"versions of {name}",
    )


@dataset_app.command("show")
def show(ctx: typer.Context, ref: Ref, as_json: Json = False) -> None:
    """Show a dataset version: schema, column roles, digest, quality, where its rows are."""
    version = client(ctx).get_dataset_version(ref)
    if as_json:
        render.emit_json(version)
        return
    _show_version(version)


@dataset_app.command("roles")
def roles(
    ctx: typer.Context,
    ref: Ref,
    role: RoleOpt = None,
    roles_file: Annotated[
        Path | None,
        typer.Option("--roles-file", exists=True, dir_okay=False, help="JSON column → role."),
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Drop the roles of columns not named here.")
    ] = False,
    as_json: Json = False,
) -> None:
    """Change the column roles of a dataset version (other columns keep theirs)."""
    wanted = _roles(role, roles_file)
    if not wanted:
        raise typer.BadParameter("give at least one --role COLUMN=ROLE", param_hint="--role")
    api = client(ctx)
    if not replace:
        current = api.get_dataset_version(ref)
        wanted = {**{k: str(v) for k, v in current.roles.items()}, **wanted}
        ref = current.ref  # the same version even if another is uploaded meanwhile
    version = api.set_column_roles(ref, wanted)
    if as_json:
        render.emit_json(version)
        return
    _show_version(version)
