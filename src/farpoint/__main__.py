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
    app(args=args, prog_name="farpoint")


if __name__ == "__main__":
    main()
