"""The `farpoint` command.

On a device only the base dependencies exist, so `farpoint agent ...` is dispatched to the
agent's own small command line before anything from the client extras is imported.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "agent":
        from farpoint.agent.cli import main as agent_main

        raise SystemExit(agent_main(args[1:]))
    try:
        from farpoint.cli.main import app
    except ImportError as exc:  # pragma: no cover - depends on the install
        sys.stderr.write(
            f"farpoint: the client tools need the [client] extra ({exc}).\n"
            "Install them with: pip install 'farpoint[client]'\n"
        )
        raise SystemExit(2) from exc
    if _server_extra_installed():
        from farpoint.examples.demo import register as register_demo
        from farpoint.server.cli import register

        register(app)
        register_demo(app)
    app(args=args, prog_name="farpoint")


def _server_extra_installed() -> bool:
    """The server commands exist only where `farpoint[server]` is installed."""
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("fastapi", "sqlalchemy", "uvicorn"))


if __name__ == "__main__":
    main()
