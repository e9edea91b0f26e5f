"""Commands that run next to the database: `farpoint server`, `farpoint db`, `farpoint admin`.

The client CLI speaks only HTTP; these are added to it when the server extra is installed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
admin_app = typer.Typer(
    help="Bootstrap administration (runs next to the database).", no_args_is_help=True
)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; 0 picks a free one.")] = 8750,
    port_file: Annotated[
        Path | None, typer.Option(help="Write the bound port here (for scripts and tests).")
    ] = None,
    console: Annotated[bool, typer.Option(help="Serve the web console at /console.")] = True,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (chain) to serve HTTPS with; or FARPOINT_TLS_CERT."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="Its PEM private key; or FARPOINT_TLS_KEY.")
    ] = None,
) -> None:
    """Run the control plane (API, console, device endpoints) on the configured store.

    With a TLS certificate it serves HTTPS; FARPOINT_TLS_CA names the CA that issued it,
    which devices pin (its sha256 is in every enrollment token).
    """
    from farpoint.server.serve import run_server
    from farpoint.server.tls import TlsConfigError

    try:
        run_server(
            host=host,
            port=port,
            port_file=port_file,
            console=console,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
    except TlsConfigError as exc:
        typer.echo(f"farpoint server: {exc}", err=True)
        raise typer.Exit(2) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the database migrations (FARPOINT_DATABASE_URL, or SQLite under FARPOINT_HOME)."""
    from farpoint.server import migrate
    from farpoint.server.db import Database
    from farpoint.server.settings import Settings

    settings = Settings.from_env()
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    typer.echo(f"database is at the latest schema: {_safe_url(settings.effective_database_url)}")


@admin_app.command("init")
def admin_init(
    name: Annotated[str, typer.Option(help="The first admin's user name.")] = "admin",
    expires_in_days: Annotated[int, typer.Option(help="Token lifetime in days.")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Create the first admin on an empty database and print its token (once)."""
    from farpoint.core.errors import FarpointError
    from farpoint.server import migrate
    from farpoint.server.db import Database
    from farpoint.server.identity.service import bootstrap_admin
    from farpoint.server.settings import Settings

    settings = Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    migrate.upgrade(db.engine)
    try:
        with db.session() as s:
            created = bootstrap_admin(s, name, expires_in_days * 24 * 3600)
    except FarpointError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps({"user": name, "token": created.token}))
    else:
        typer.echo(f"created admin {name!r}; its token (shown once):\n{created.token}")
        typer.echo(f"export FARPOINT_TOKEN={created.token}")


def _safe_url(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def register(app: typer.Typer) -> None:
    app.command("server")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(admin_app, name="admin")
