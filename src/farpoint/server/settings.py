"""Server configuration from `FARPOINT_*` environment variables, read when asked."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings"]


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _path(env: dict[str, str], name: str) -> Path | None:
    raw = env.get(name)
    return Path(raw).resolve() if raw else None


@dataclass(frozen=True)
class Settings:
    home: Path = field(default_factory=lambda: Path(".farpoint").resolve())
    database_url: str = ""
    """Empty means the embedded default: SQLite in WAL mode under `home`."""
    blob_dir: Path | None = None
    max_upload_bytes: int = 256 * 1024 * 1024
    max_model_bytes: int = 512 * 1024 * 1024
    device_online_s: int = 90
    """A device that has not checked in for this long is shown offline."""
    long_poll_max_s: int = 60
    audit_checkpoint_interval_s: int = 60
    """The server signs the audit head at most this often (and on demand)."""
    director_expiry_s: int = 3600
    """Lifetime of each device's director metadata; it is re-signed at half of it."""
    rollout_tick_s: float = 5.0
    retention_sweep_s: float = 3600.0
    """How often the server purges dataset rows past their retention; 0 turns it off."""
    """The rollout controller's timer (pending timeouts); 0 turns the timer off."""
    auto_migrate: bool = True
    """Apply migrations at start (embedded default); production runs `farpoint db upgrade`."""
    tls_cert: Path | None = None
    """PEM certificate chain to serve HTTPS with (`farpoint server`); with `tls_key`."""
    tls_key: Path | None = None
    tls_ca: Path | None = None
    """PEM certificate of the CA that issued `tls_cert`: served at GET /api/v1/tls/ca.pem
    and named (its sha256) by every enrollment token, so devices pin it."""
    mqtt_url: str = ""
    """`mqtt://[user:password@]host[:port]` (or `mqtts://`): publish sync pushes there."""
    request_threads: int = 0
    """Threads that run blocking request work (database reads); 0 picks by database: 8 on
    SQLite, whose queries never wait on a network, so more threads only fight over the
    GIL; 40 (anyio's default) on PostgreSQL, where they wait on round trips."""

    @property
    def effective_request_threads(self) -> int:
        if self.request_threads > 0:
            return self.request_threads
        return 8 if self.effective_database_url.startswith("sqlite") else 40

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'farpoint.db'}"

    @property
    def effective_blob_dir(self) -> Path:
        return self.blob_dir or self.home / "blobs"

    @property
    def key_dir(self) -> Path:
        return self.home / "keys"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = dict(os.environ if env is None else env)
        home = Path(e.get("FARPOINT_HOME") or ".farpoint").resolve()
        blob = e.get("FARPOINT_BLOB_DIR")
        return cls(
            home=home,
            database_url=e.get("FARPOINT_DATABASE_URL", ""),
            blob_dir=Path(blob).resolve() if blob else None,
            max_upload_bytes=_int(e, "FARPOINT_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_model_bytes=_int(e, "FARPOINT_MAX_MODEL_BYTES", cls.max_model_bytes),
            device_online_s=_int(e, "FARPOINT_DEVICE_ONLINE_S", cls.device_online_s),
            long_poll_max_s=_int(e, "FARPOINT_LONG_POLL_MAX_S", cls.long_poll_max_s),
            audit_checkpoint_interval_s=_int(
                e, "FARPOINT_AUDIT_CHECKPOINT_INTERVAL_S", cls.audit_checkpoint_interval_s
            ),
            director_expiry_s=_int(e, "FARPOINT_DIRECTOR_EXPIRY_S", cls.director_expiry_s),
            rollout_tick_s=float(_int(e, "FARPOINT_ROLLOUT_TICK_S", 5)),
            retention_sweep_s=float(_int(e, "FARPOINT_RETENTION_SWEEP_S", 3600)),
            auto_migrate=e.get("FARPOINT_AUTO_MIGRATE", "1") not in ("0", "false", "no"),
            tls_cert=_path(e, "FARPOINT_TLS_CERT"),
            tls_key=_path(e, "FARPOINT_TLS_KEY"),
            tls_ca=_path(e, "FARPOINT_TLS_CA"),
            mqtt_url=e.get("FARPOINT_MQTT_URL", ""),
            request_threads=_int(e, "FARPOINT_REQUEST_THREADS", cls.request_threads),
        )
