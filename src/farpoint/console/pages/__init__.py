"""One module per role view; each `register()`s its page when the console is mounted."""

from __future__ import annotations

from importlib import import_module

__all__ = ["register_all"]

_VIEWS = (
    "data_science",
    "dataset_detail",
    "ai_engineering",
    "mlops",
    "app_developer",
    "it_ops",
    "business",
    "admin",
    "release_trace",
    "rollout",
)


def register_all() -> None:
    for name in _VIEWS:
        import_module(f"{__name__}.{name}").register()
