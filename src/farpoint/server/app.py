"""create_app(settings): the one place that wires the control plane together."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, FastAPI

import farpoint
from farpoint.server import migrate
from farpoint.server.attestations.router import router as attestations_router
from farpoint.server.audit.router import router as audit_router
from farpoint.server.blobs.store import BlobStore
from farpoint.server.context import AppContext
from farpoint.server.datasets.retention import RetentionTimer
from farpoint.server.datasets.router import router as datasets_router
from farpoint.server.db import Database
from farpoint.server.devices.router import router as devices_router
from farpoint.server.errors import install_error_handlers
from farpoint.server.evaluations.router import router as evaluations_router
from farpoint.server.fleets.router import router as fleets_router
from farpoint.server.identity.router import router as identity_router
from farpoint.server.keys.router import router as keys_router
from farpoint.server.models.router import router as models_router
from farpoint.server.releases.router import router as releases_router
from farpoint.server.rollouts.controller import RolloutController
from farpoint.server.rollouts.router import router as rollouts_router
from farpoint.server.settings import Settings
from farpoint.server.signing import load_or_create_signing_key
from farpoint.server.telemetry.router import router as telemetry_router
from farpoint.server.trace.router import router as trace_router
from farpoint.server.tuf.router import router as tuf_router

__all__ = ["build_api", "create_app"]


def create_app(
    settings: Settings | None = None, *, clock: Callable[[], float] = time.time
) -> FastAPI:
    settings = settings or Settings.from_env()
    settings.home.mkdir(parents=True, exist_ok=True)
    db = Database(settings.effective_database_url)
    if settings.auto_migrate:
        migrate.upgrade(db.engine)
    ctx = AppContext(
        settings=settings,
        db=db,
        blobs=BlobStore(settings.effective_blob_dir),
        signing_key=load_or_create_signing_key(settings.key_dir),
        clock=clock,
    )

    rollout_controller = RolloutController(ctx, settings.rollout_tick_s)
    retention_timer = RetentionTimer(ctx, settings.retention_sweep_s)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = (
            settings.effective_request_threads
        )
        ctx.notifier.bind(asyncio.get_running_loop())
        rollout_controller.start()
        retention_timer.start()
        ctx.notifier.start_push(settings.mqtt_url)
        yield
        ctx.notifier.close()
        await rollout_controller.stop()
        await retention_timer.stop()
        ctx.device_writes.close()
        db.dispose()

    app = FastAPI(
        title="Farpoint",
        version=farpoint.__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
        **_no_telemetry(),
    )
    app.state.ctx = ctx
    app.state.rollout_controller = rollout_controller
    install_error_handlers(app)

    app.include_router(build_api())
    return app


def _no_telemetry() -> dict[str, Any]:
    """FastAPI releases with built-in OpenTelemetry look up the global providers on every
    request (a few percent of a device poll); Farpoint exports none, so it is turned off
    where the option exists."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def build_api() -> APIRouter:
    """Every route of `/api/v1`, from each room's router."""
    api = APIRouter(prefix="/api/v1")

    @api.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": farpoint.__version__}

    # Routes are matched in this order, one by one: the devices' frequent requests
    # (polls, reports, metadata) come first so matching them is short.
    for router in (
        devices_router,  # before fleets_router: /devices/self/... stays the device's
        tuf_router,
        identity_router,
        datasets_router,
        models_router,
        evaluations_router,
        releases_router,
        fleets_router,
        rollouts_router,
        keys_router,
        attestations_router,
        audit_router,
        trace_router,
        telemetry_router,
    ):
        api.include_router(router)
    return api
