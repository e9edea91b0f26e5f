"""The agent runs where only `pip install farpoint` (the base dependencies) is installed.

The process starts with an import guard (a `sitecustomize`) that refuses every top-level
module outside the standard library and the closure of farpoint's base requirements, as
they would be missing on a device; then it must enroll-free start, verify, activate and
serve a release end to end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from agent_fakes import FakeControlPlane, OnnxModel

pytestmark = pytest.mark.timeout(60)

GUARD = r"""
import importlib.abc
import importlib.metadata as md
import os
import re
import sys
import tomllib


def _closure(dist, seen, reqs=None):
    for req in md.requires(dist) or [] if reqs is None else reqs:
        if "extra ==" in req:
            continue
        name = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            _closure(name, seen)
        except md.PackageNotFoundError:
            pass
    return seen


# pyproject.toml is the truth; an editable install's metadata may predate its last edit
with open(os.environ["FARPOINT_PYPROJECT"], "rb") as _f:
    _DECLARED = tomllib.load(_f)["project"]["dependencies"]
_BASE = _closure("farpoint", set(), _DECLARED)
_ALLOWED = set(sys.stdlib_module_names) | {"farpoint", "sitecustomize"}
for _top, _dists in md.packages_distributions().items():
    if any(d.lower().replace("_", "-") in _BASE for d in _dists):
        _ALLOWED.add(_top)


_DEVICE_PACKAGES = ("agent", "core", "__main__")


class _OnlyBaseDependencies(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top not in _ALLOWED:
            raise ModuleNotFoundError(f"{top} is not a base dependency of farpoint", name=top)
        parts = fullname.split(".")
        if parts[0] == "farpoint" and len(parts) > 1 and parts[1] not in _DEVICE_PACKAGES:
            raise ModuleNotFoundError(f"{fullname} is not used on a device", name=fullname)
        return None


sys.meta_path.insert(0, _OnlyBaseDependencies())
"""


def test_agent_serves_a_release_with_only_base_dependencies(
    control_plane: FakeControlPlane, enrolled: Path, model_a: OnnxModel, tmp_path: Path
) -> None:
    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(guard_dir), *sys.path[1:]]),
        FARPOINT_PYPROJECT=str(Path(__file__).parents[3] / "pyproject.toml"),
    )

    # The guard works: a client-extra module cannot be imported under it.
    probe = subprocess.run(
        [sys.executable, "-c", "import pydantic"], env=env, capture_output=True, text=True
    )
    assert probe.returncode != 0 and "not a base dependency" in probe.stderr

    control_plane.deploy(control_plane.release(1, model_a))
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "farpoint", "agent", "run", "--state-dir", str(enrolled),
         "--port-file", str(port_file), "--poll-wait", "1", "--heartbeat-s", "1",
         "--parent-pid", str(os.getpid())],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "the agent never wrote its port file"
            time.sleep(0.05)
        port = int(port_file.read_text())
        control_plane.wait_for(lambda c: "active" in c.phases("churn", 1), timeout_s=30)
        body = json.dumps({"rows": model_a.rows}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/churn:predict", data=body)
        with urllib.request.urlopen(req, timeout=10) as resp:
            doc = json.loads(resp.read())
        assert [p["label"] for p in doc["predictions"]] == model_a.labels
    except AssertionError:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        raise AssertionError(err.decode()[-3000:]) from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
