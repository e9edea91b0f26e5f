"""`farpoint trust ...`: the offline root of trust (keys kept away from the server)."""

from __future__ import annotations

import typer

trust_app = typer.Typer(
    help="Root of trust: offline keys, key bindings, trust policy.", no_args_is_help=True
)
