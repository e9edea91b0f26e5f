"""A server home made ready in the test process (trust initialized, an admin) for the
identity end-to-end tests; the `farpoint server` process then opens the same database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from release_fixtures import make_release
from tuf_fixtures import ensure_trust

__all__ = ["env_for", "prepare", "release_of"]


def prepare(home: Path) -> tuple[Any, str]:
    """The server's home with trust initialized and an admin, made in this process (the
    server process then opens the same database and keys)."""
    from farpoint.server.app import create_app
    from farpoint.server.identity.service import bootstrap_admin
    from farpoint.server.settings import Settings

    app = create_app(Settings(home=home))
    ensure_trust(app)
    with app.state.ctx.db.session() as s:
        admin = bootstrap_admin(s, "root", 3600).token
    return app, admin


def env_for(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARPOINT_")}
    env["FARPOINT_HOME"] = str(home)
    env.update(extra)
    return env


def release_of(app: Any, model: str = "vitals") -> Any:
    """A release inserted in the server's database (no trust needed to roll it out)."""
    return make_release(app, model)
