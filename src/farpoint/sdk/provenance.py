"""What the SDK records about a training run: its code, its environment, its estimator."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from farpoint.wire.models import CodeRef

__all__ = ["ENVIRONMENT_PACKAGES", "code_ref", "environment", "estimator_flavor", "plain"]

ENVIRONMENT_PACKAGES = (
    "numpy",
    "pandas",
    "scikit-learn",
    "skl2onnx",
    "onnx",
    "onnxruntime",
    "farpoint",
)
_FLAVOR_MAX = 200


def _git(code_dir: Path, *args: str) -> str | None:
    """Output of one git command in `code_dir`, or None when git cannot answer."""
    try:
        done = subprocess.run(
            ["git", "-C", str(code_dir), *args],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout


def _without_credentials(url: str) -> str:
    # A remote such as https://user:token@host/repo.git must not end up in the record.
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.netloc or "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def code_ref(code_dir: str | Path = ".") -> CodeRef:
    """The git commit, dirty flag and origin of `code_dir`; empty when it is not a work tree."""
    where = Path(code_dir)
    inside = _git(where, "rev-parse", "--is-inside-work-tree")
    if inside is None or inside.strip() != "true":
        return CodeRef()
    head = _git(where, "rev-parse", "HEAD")
    status = _git(where, "status", "--porcelain")
    remote = _git(where, "config", "--get", "remote.origin.url")
    commit = head.strip() if head else ""
    origin = remote.strip() if remote else ""
    return CodeRef(
        git_commit=commit or None,  # None in a repository without commits
        dirty=bool(status.strip()) if status is not None else None,
        repository=_without_credentials(origin) if origin else None,
    )


def environment(packages: tuple[str, ...] = ENVIRONMENT_PACKAGES) -> dict[str, str]:
    """Versions of the packages that shape a model, those installed, plus Python's."""
    found: dict[str, str] = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _estimator_name(est: Any) -> str:
    if isinstance(est, str):  # "passthrough" or "drop" inside pipelines
        return est
    name = type(est).__name__
    steps = getattr(est, "steps", None)
    if isinstance(steps, list) and steps:
        inner = [_estimator_name(step[1]) for step in steps if isinstance(step, tuple)]
        return f"{name}({', '.join(inner)})"
    transformers = getattr(est, "transformers", None)
    if isinstance(transformers, list) and transformers:
        parts = [
            _estimator_name(t[1])
            for t in transformers
            if isinstance(t, tuple) and len(t) >= 2 and t[1] != "drop"
        ]
        return f"{name}({', '.join(parts)})"
    return name


def estimator_flavor(model: Any) -> str:
    """A readable name for an estimator: `Pipeline(StandardScaler, LogisticRegression)`."""
    flavor = _estimator_name(model)
    if len(flavor) > _FLAVOR_MAX:
        flavor = flavor[: _FLAVOR_MAX - 1] + "…"
    return flavor


def plain(value: Any) -> Any:
    """`value` with numpy scalars and arrays turned into Python ones, for JSON."""
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and not isinstance(value, str | bytes):
        return plain(tolist())
    return value
