"""Run the server process: build the app, mount the console, listen."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["run_server"]


def run_server(*, host: str, port: int, port_file: Path | None, console: bool) -> None:
    import uvicorn

    from farpoint.server.app import create_app
    from farpoint.server.settings import Settings

    settings = Settings.from_env()
    app = create_app(settings)
    if console:
        from farpoint.console import mount

        mount(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    # Listen before publishing the port: early connections wait in the backlog for uvicorn.
    sock.listen(2048)
    bound = sock.getsockname()[1]
    if port_file is not None:
        tmp = port_file.with_suffix(".tmp")
        tmp.write_text(str(bound))
        os.replace(tmp, port_file)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=75,
        timeout_graceful_shutdown=3,  # held long-polls must not delay a stop
    )
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
