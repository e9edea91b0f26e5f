"""The web console: one NiceGUI view per role, served under `/console`, speaking the API.

`mount(app)` is called once, by the `farpoint server` process: NiceGUI keeps one
process-wide app, and its pages register globally.
"""

from __future__ import annotations

from fastapi import FastAPI

__all__ = ["MOUNT_PATH", "mount"]

MOUNT_PATH = "/console"
_mounted = False


def mount(app: FastAPI) -> None:
    """Serve the console on `app` under /console."""
    global _mounted
    if _mounted:
        raise RuntimeError("the console is mounted once per process (NiceGUI is process-wide)")
    from nicegui import ui

    from farpoint.console import layout, pages
    from farpoint.console.session import prepare_storage

    secret = prepare_storage()
    layout.register()
    pages.register_all()
    ui.run_with(
        app,
        mount_path=MOUNT_PATH,
        storage_secret=secret,
        title="Farpoint",
        favicon="🛰",
        show_welcome_message=False,
        reconnect_timeout=10.0,
    )
    _mounted = True
