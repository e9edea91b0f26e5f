"""The connection a command uses: the root options and one SDK client per invocation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import typer

from farpoint.sdk import Client

__all__ = ["Session", "client"]


@dataclass
class Session:
    """What the root callback learned (`--server`, `--token`) and how to connect."""

    server: str
    token: str | None
    connect: Callable[[str, str | None], Client]
    _client: Client | None = field(default=None, repr=False)


def client(ctx: typer.Context) -> Client:
    """The SDK client of this invocation, opened once and closed when the command ends."""
    root = ctx.find_root()
    session = root.obj
    if not isinstance(session, Session):  # a sub-app run without the root callback
        raise RuntimeError("farpoint commands must run under farpoint.cli.main.app")
    if session._client is None:
        session._client = root.with_resource(session.connect(session.server, session.token))
    return session._client
