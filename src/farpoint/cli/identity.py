"""`farpoint me`, `farpoint team ...`, `farpoint user ...`, `farpoint token ...`."""

from __future__ import annotations

from typing import Annotated

import typer

from farpoint.cli import render
from farpoint.cli.params import Json, parse_duration
from farpoint.cli.session import client
from farpoint.wire.common import Role
from farpoint.wire.identity import TokenOut

__all__ = ["me", "team_app", "token_app", "user_app"]

team_app = typer.Typer(help="Teams own datasets and group users.", no_args_is_help=True)
user_app = typer.Typer(help="People and service accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (bearer tokens carrying roles).", no_args_is_help=True)

RolesOpt = Annotated[
    list[Role] | None,
    typer.Option("--role", help="A role to hold; repeat for several.", show_default=False),
]


def me(ctx: typer.Context, as_json: Json = False) -> None:
    """Who the token belongs to, with its roles and teams."""
    who = client(ctx).me()
    if as_json:
        render.emit_json(who)
        return
    render.fields(
        who.user,
        [
            ("kind", who.kind),
            ("roles", who.roles),
            ("teams", who.teams),
            ("token", who.token_id),
            ("expires", who.expires_at),
        ],
    )


@team_app.command("create")
def team_create(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Create a team (admin)."""
    team = client(ctx).create_team(name)
    if as_json:
        render.emit_json(team)
        return
    render.console.print(f"created team {team.name} (id {team.id})", markup=False)


@team_app.command("add-member")
def team_add_member(ctx: typer.Context, team: str, user: str) -> None:
    """Add a user to a team (admin): the team's datasets become theirs to read and change."""
    client(ctx).add_team_member(team, user)
    render.console.print(f"{user} is now a member of team {team}", markup=False)


@team_app.command("list")
def team_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List the teams."""
    teams = client(ctx).list_teams()
    if as_json:
        render.emit_json(teams)
        return
    render.table(
        ["id", "name", "created"], ((t.id, t.name, t.created_at) for t in teams), title="teams"
    )


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    name: str,
    roles: RolesOpt = None,
    teams: Annotated[
        list[str] | None, typer.Option("--team", help="A team to join; repeat for several.")
    ] = None,
    service: Annotated[
        bool, typer.Option("--service", help="A service account (for CI), not a person.")
    ] = False,
    email: Annotated[str | None, typer.Option(help="Contact address.")] = None,
    as_json: Json = False,
) -> None:
    """Create a user holding one or more roles (admin)."""
    if not roles:
        raise typer.BadParameter("give at least one --role", param_hint="--role")
    user = client(ctx).create_user(
        name, roles, teams or (), kind="service" if service else "person", email=email
    )
    if as_json:
        render.emit_json(user)
        return
    render.console.print(
        f"created {user.kind} {user.name} (id {user.id}) with roles {render.cell(user.roles)}",
        markup=False,
    )


@user_app.command("list")
def user_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List users and service accounts (admin)."""
    users = client(ctx).list_users()
    if as_json:
        render.emit_json(users)
        return
    render.table(
        ["id", "name", "kind", "roles", "teams", "email", "created"],
        ((u.id, u.name, u.kind, u.roles, u.teams, u.email, u.created_at) for u in users),
        title="users",
    )


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    user: str,
    roles: RolesOpt = None,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="Lifetime: 12h, 30d, 52w...")
    ] = "30d",
    description: Annotated[str, typer.Option(help="What the token is for.")] = "",
    as_json: Json = False,
) -> None:
    """Issue a token for USER (admin); the secret is shown this once."""
    created = client(ctx).create_token(
        user, roles or None, parse_duration(expires_in), description=description
    )
    if as_json:
        render.emit_json(created)
        return
    render.fields(
        f"token {created.id} for {created.user}",
        [("roles", created.roles), ("expires", created.expires_at)],
    )
    render.note("The secret, shown this once (the server keeps only its hash):")
    typer.echo(created.token)  # alone on its line, so it can be copied whole


def _token_rows(tokens: list[TokenOut]) -> list[tuple[object, ...]]:
    return [
        (t.id, t.user, t.roles, t.description, t.expires_at, t.revoked_at, t.created_at)
        for t in tokens
    ]


@token_app.command("list")
def token_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List tokens, revoked ones included (admin)."""
    tokens = client(ctx).list_tokens()
    if as_json:
        render.emit_json(tokens)
        return
    render.table(
        ["id", "user", "roles", "description", "expires", "revoked", "created"],
        _token_rows(tokens),
        title="tokens",
    )


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: int) -> None:
    """Revoke a token at once (admin, or the token's owner)."""
    client(ctx).revoke_token(token_id)
    render.console.print(f"revoked token {token_id}", markup=False)
