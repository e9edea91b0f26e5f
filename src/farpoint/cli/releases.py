"""`farpoint release ...`: signed, deployable packages of evaluated model versions."""

from __future__ import annotations

from typing import Annotated

import typer

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref
from farpoint.cli.session import client
from farpoint.wire.releases import ReleaseOut

__all__ = ["release_app"]

release_app = typer.Typer(help="Signed releases of model versions.", no_args_is_help=True)


def _show(r: ReleaseOut) -> None:
    render.fields(
        f"release {r.id}: {r.model_ref}",
        [
            ("model digest", r.model_digest),
            ("manifest digest", r.manifest_digest),
            ("evaluation", r.evaluation_id),
            ("signed by key", r.key_id),
            ("created", f"{render.when(r.created_at)} by {r.created_by}"),
        ],
    )


@release_app.command("create")
def release_create(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option("--model", help="Model version, NAME@VERSION.", callback=check_ref)
    ],
    evaluation: Annotated[
        int | None,
        typer.Option("--evaluation", help="The passed evaluation to cite; the latest otherwise."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Package and sign a model version that passed its evaluation."""
    release = client(ctx).create_release(model, evaluation)
    if as_json:
        render.emit_json(release)
        return
    _show(release)


@release_app.command("list")
def release_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List releases."""
    releases = client(ctx).list_releases()
    if as_json:
        render.emit_json(releases)
        return
    render.table(
        ["id", "model", "evaluation", "manifest", "by", "created"],
        (
            (
                r.id,
                r.model_ref,
                r.evaluation_id,
                render.short(r.manifest_digest),
                r.created_by,
                r.created_at,
            )
            for r in releases
        ),
        title="releases",
    )


@release_app.command("show")
def release_show(ctx: typer.Context, release_id: int, as_json: Json = False) -> None:
    """Show a release: digests, evaluation, signing key."""
    release = client(ctx).get_release(release_id)
    if as_json:
        render.emit_json(release)
        return
    _show(release)
