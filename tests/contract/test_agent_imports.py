"""The device agent stays skinny: importing all of it pulls in nothing heavy."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import farpoint.agent

FORBIDDEN = {
    "pandas",
    "sklearn",
    "pydantic",
    "httpx",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "yaml",
    "nicegui",
    "farpoint.server",
    "farpoint.ml",
    "farpoint.wire",
}


def _agent_modules() -> list[str]:
    names = [f"farpoint.agent.{m.name}" for m in pkgutil.iter_modules(farpoint.agent.__path__)]
    assert "farpoint.agent.cli" in names
    return ["farpoint.agent", *sorted(names)]


def _imported_after(statement: str) -> set[str]:
    code = f"{statement}; import sys, json; print(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(json.loads(proc.stdout.strip().splitlines()[-1]))


def _offending(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)}


def test_importing_every_agent_module_pulls_in_nothing_forbidden() -> None:
    modules = _imported_after("import " + ", ".join(_agent_modules()))
    assert _offending(modules) == set()


def test_the_agent_command_line_does_not_import_onnxruntime() -> None:
    # enrollment must stay light; onnxruntime loads only with the first model
    modules = _imported_after("import farpoint.agent.cli, farpoint.agent.loop")
    assert "onnxruntime" not in modules
    assert _offending(modules) == set()
