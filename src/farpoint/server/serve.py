"""Run the server process: build the app, mount the console, listen."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["run_server"]


def run_server(
    *,
    host: str,
    port: int,
    port_file: Path | None,
    console: bool,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    """Serve until stopped; HTTPS when a certificate and key are given (options or
    FARPOINT_TLS_CERT/FARPOINT_TLS_KEY). Bad TLS files fail here, before anything listens."""
    import dataclasses

    import uvicorn

    from farpoint.server.app import create_app
    from farpoint.server.settings import Settings
    from farpoint.server.tls import tls_files

    settings = Settings.from_env()
    if tls_cert is not None or tls_key is not None:
        settings = dataclasses.replace(
            settings,
            tls_cert=tls_cert.resolve() if tls_cert else settings.tls_cert,
            tls_key=tls_key.resolve() if tls_key else settings.tls_key,
        )
    files = tls_files(settings)
    if files is not None:  # the console pins this certificate when it calls its own API
        os.environ["FARPOINT_TLS_CERT"] = str(files.cert)
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
        ssl_certfile=str(files.cert) if files else None,
        ssl_keyfile=str(files.key) if files else None,
    )
    server = uvicorn.Server(config)
    _tune_gc()
    server.run(sockets=[sock])


def _tune_gc() -> None:
    """Fewer, cheaper collections for a long-running server holding a fleet's connections.

    With 10,000 devices kept alive the heap holds some 650,000 tracked objects, and each
    full collection stopped every request for about 0.45 s every 10 to 20 s (seen with a
    `gc.callbacks` timer during benchmarks/fleet_scale.py): a pause that sets the p99.
    What start-up built is frozen out of the collector; the young generation is collected
    every 20,000 new containers instead of 700, and the full collection comes about a
    hundred times less often. Reference counting still frees all but cyclic garbage at once."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 50)
