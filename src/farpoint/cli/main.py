"""The root of the `farpoint` command: global options, error handling, command groups.

Other packages add their commands here (`app.command()` / `app.add_typer()`); every
command gets the same treatment of errors: a refused request prints
`error: <title>: <detail>` and exits 1, an unreachable server exits 2.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from farpoint.cli import data_governance as _data_governance  # noqa: F401 (its commands)
from farpoint.cli import data_privacy as _data_privacy  # noqa: F401 (its commands)
from farpoint.cli import render
from farpoint.cli.audit import audit_app
from farpoint.cli.datasets import dataset_app
from farpoint.cli.devices import device_app, fleet_app
from farpoint.cli.identity import me, team_app, token_app, user_app
from farpoint.cli.models import model_app, run_app
from farpoint.cli.policies import evaluate, policy_app
from farpoint.cli.releases import release_app, verify
from farpoint.cli.rollouts import rollout_app
from farpoint.cli.session import Session
from farpoint.cli.telemetry import device_telemetry, telemetry_app
from farpoint.cli.trace import trace
from farpoint.cli.trust import approve, attestation_app, keys_app
from farpoint.cli.trust_admin import trust_app
from farpoint.core.errors import FarpointError
from farpoint.sdk import Client, ServerUnreachable
from farpoint.sdk.client import DEFAULT_URL

__all__ = ["EXIT_REFUSED", "EXIT_UNREACHABLE", "app", "make_client"]

EXIT_REFUSED = 1
"""A request was refused (4xx/5xx), a gate failed, or a rollout failed."""
EXIT_UNREACHABLE = 2
"""The server could not be reached (click also uses 2 for a wrong command line)."""


def make_client(server: str, token: str | None) -> Client:
    """The SDK client commands use; tests replace this to inject a transport."""
    return Client(server, token)


class _FarpointGroup(TyperGroup):
    """Turns expected errors from any command into one line on stderr and an exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ServerUnreachable as exc:
            render.error(exc.detail)
            raise typer.Exit(EXIT_UNREACHABLE) from None
        except FarpointError as exc:
            title = exc.extra.get("title") or exc.title
            render.error(f"{title}: {exc.detail}")
            raise typer.Exit(EXIT_REFUSED) from None
        except ValidationError as exc:  # a wire model refused what was typed
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            render.error(f"Invalid input: {where}: {first['msg']}")
            raise typer.Exit(EXIT_REFUSED) from None


app = typer.Typer(
    name="farpoint",
    cls=_FarpointGroup,
    no_args_is_help=True,
    help="Farpoint: take models from data to the farthest edge, with a chain of trust.",
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option("--server", envvar="FARPOINT_URL", help="The Farpoint server's URL."),
    ] = DEFAULT_URL,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="FARPOINT_TOKEN", help="API token.", show_default=False),
    ] = None,
) -> None:
    # Looked up at call time so tests can swap `make_client`.
    ctx.obj = Session(server=server, token=token, connect=lambda s, t: make_client(s, t))


app.command("me")(me)
app.add_typer(team_app, name="team")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(dataset_app, name="dataset")
app.add_typer(run_app, name="run")
app.add_typer(model_app, name="model")
app.add_typer(policy_app, name="policy")
app.command("evaluate")(evaluate)
app.command("approve")(approve)
app.command("trace")(trace)
app.add_typer(release_app, name="release")
device_app.command("telemetry")(device_telemetry)
app.add_typer(device_app, name="device")
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(fleet_app, name="fleet")
app.add_typer(rollout_app, name="rollout")
app.add_typer(keys_app, name="keys")
app.add_typer(attestation_app, name="attestation")
app.add_typer(audit_app, name="audit")
app.add_typer(trust_app, name="trust")
app.command("verify")(verify)
