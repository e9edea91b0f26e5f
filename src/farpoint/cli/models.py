"""`farpoint run ...` and `farpoint model ...`: training runs and model versions."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref
from farpoint.cli.session import client
from farpoint.wire.models import CodeRef, ModelVersionOut

__all__ = ["model_app", "run_app"]

run_app = typer.Typer(help="Recorded training runs.", no_args_is_help=True)
model_app = typer.Typer(help="Registered models and their versions.", no_args_is_help=True)


def _code(code: CodeRef) -> str:
    if code.git_commit is None:
        return "-"
    return code.git_commit[:10] + (" (dirty)" if code.dirty else "")


@run_app.command("list")
def run_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List training runs."""
    runs = client(ctx).list_runs()
    if as_json:
        render.emit_json(runs)
        return
    render.table(
        ["id", "name", "metrics", "datasets", "commit", "by", "created"],
        (
            (r.id, r.name, r.metrics, r.datasets, _code(r.code), r.created_by, r.created_at)
            for r in runs
        ),
        title="runs",
    )


@run_app.command("show")
def run_show(ctx: typer.Context, run_id: int, as_json: Json = False) -> None:
    """Show a training run: parameters, metrics, code and environment."""
    run = client(ctx).get_run(run_id)
    if as_json:
        render.emit_json(run)
        return
    render.fields(
        f"run {run.id} {run.name}".strip(),
        [
            ("params", run.params),
            ("metrics", run.metrics),
            ("datasets", run.datasets),
            ("commit", _code(run.code)),
            ("repository", run.code.repository),
            ("environment", run.environment),
            ("created", f"{render.when(run.created_at)} by {run.created_by}"),
        ],
    )


@model_app.command("list")
def model_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List registered models."""
    models = client(ctx).list_models()
    if as_json:
        render.emit_json(models)
        return
    render.table(
        ["name", "latest", "created"],
        ((m.name, m.latest_version, m.created_at) for m in models),
        title="models",
    )


@model_app.command("versions")
def model_versions(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """List the versions of model NAME."""
    found = client(ctx).list_model_versions(name)
    if as_json:
        render.emit_json(found)
        return
    render.table(
        ["ref", "status", "flavor", "size", "run", "digest", "by", "created"],
        (
            (
                v.ref,
                v.status,
                v.flavor,
                v.size_bytes,
                v.run_id,
                render.short(v.digest),
                v.created_by,
                v.created_at,
            )
            for v in found
        ),
        title=f"versions of {name}",
    )


def _signature(v: ModelVersionOut) -> Table:
    grid = Table("", "tensor", "type", "shape", header_style="bold", title="signature")
    for kind, specs in (("in", v.signature.inputs), ("out", v.signature.outputs)):
        for spec in specs:
            shape = "[" + ", ".join("?" if d is None else str(d) for d in spec.shape) + "]"
            grid.add_row(kind, Text(spec.name), spec.dtype, Text(shape))
    return grid


@model_app.command("show")
def model_show(
    ctx: typer.Context,
    ref: Annotated[
        str, typer.Argument(help="NAME@VERSION (NAME alone: the latest).", callback=check_ref)
    ],
    as_json: Json = False,
) -> None:
    """Show a model version: status, signature, parity, provenance."""
    v = client(ctx).get_model_version(ref)
    if as_json:
        render.emit_json(v)
        return
    render.fields(
        v.ref,
        [
            ("status", v.status),
            ("framework", f"{v.framework} {v.flavor}".strip()),
            ("label", v.label_column),
            ("classes", v.classes),
            ("parity", v.parity),
            ("run", v.run_id),
            ("datasets", v.datasets),
            ("data rules", v.data_policy or "the defaults (docs/data.md)"),
            ("size", f"{v.size_bytes} bytes"),
            ("digest", v.digest),
            ("created", f"{render.when(v.created_at)} by {v.created_by}"),
        ],
        footer=_signature(v),
    )
