"""`farpoint dataset ...`: upload, list, inspect and label dataset versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref, parse_pairs
from farpoint.cli.session import client
from farpoint.wire.datasets import DatasetVersionOut

__all__ = ["dataset_app"]

dataset_app = typer.Typer(help="Governed datasets and their versions.", no_args_is_help=True)

RoleOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--role",
        help="COLUMN=ROLE (feature, label, protected, pii, id, timestamp, ignored); repeat.",
        show_default=False,
    ),
]
Ref = Annotated[
    str, typer.Argument(help="NAME@VERSION (NAME alone: the latest).", callback=check_ref)
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


def _show_version(v: DatasetVersionOut) -> None:
    columns = Table("column", "type", "nullable", "role", header_style="bold")
    for c in v.columns:
        role = v.roles.get(c.name)
        columns.add_row(
            Text(c.name), c.dtype, "yes" if c.nullable else "no", Text(render.cell(role))
        )
    render.fields(
        v.ref,
        [
            ("rows", v.row_count),
            ("size", f"{v.size_bytes} bytes"),
            ("digest", v.digest),
            ("source", v.source_filename),
            ("created", f"{render.when(v.created_at)} by {v.created_by}"),
        ],
        footer=columns,
    )


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
    as_json: Json = False,
) -> None:
    """Upload FILE as the next version of dataset NAME."""
    version = client(ctx).upload_dataset(name, file, roles=_roles(roles, roles_file), team=team)
    if as_json:
        render.emit_json(version)
        return
    _show_version(version)


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
    """Show a dataset version: schema, column roles, digest."""
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
