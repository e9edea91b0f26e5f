"""deploy/: the Containerfile and the systemd unit run commands the agent's CLI accepts,
with paths and ports that agree with each other (no container runtime needed here)."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from farpoint.agent.cli import build_parser

DEPLOY = Path(__file__).parents[2] / "deploy"
pytestmark = pytest.mark.timeout(60)


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def _one(instructions: list[tuple[str, str]], name: str) -> str:
    found = [rest for word, rest in instructions if word == name]
    assert len(found) == 1, f"expected one {name}, found {found}"
    return found[0]


def _agent_argv(words: list[str]) -> list[str]:
    """The arguments after `farpoint agent` (the unit names the executable's path)."""
    assert Path(words[0]).name == "farpoint" and words[1] == "agent", words
    return words[2:]


def test_the_containerfile_runs_the_agent_as_its_cli_expects() -> None:
    steps = _instructions(DEPLOY / "Containerfile")
    entry = json.loads(_one(steps, "ENTRYPOINT"))
    cmd = json.loads(_one(steps, "CMD"))
    args = build_parser().parse_args(_agent_argv([*entry, *cmd]))
    assert args.command == "run"
    volume = json.loads(_one(steps, "VOLUME"))
    assert volume == [str(args.state_dir)]
    assert _one(steps, "WORKDIR") == str(args.state_dir)
    assert _one(steps, "EXPOSE") == str(args.port)
    assert args.key_max_age_days and args.host == "0.0.0.0"

    # a non-root user made for it, owning the state volume
    user = _one(steps, "USER")
    assert user not in ("root", "0")
    run = _one(steps, "RUN")
    assert "--uid 10001" in run and f" {user}" in run
    assert f"chown {user}:{user} {args.state_dir}" in run
    # the base install is all a device needs: no client or server extras by default
    assert 'pip install "farpoint${FARPOINT_EXTRAS}==${FARPOINT_VERSION}"' in run
    assert ("ARG", "FARPOINT_EXTRAS=") in steps


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_containerfile_healthcheck_probes_the_local_api() -> None:
    from farpoint.agent.local_api import LocalApi
    from farpoint.agent.registry import Registry
    from farpoint.agent.telemetry import InferenceStats

    steps = _instructions(DEPLOY / "Containerfile")
    health = _one(steps, "HEALTHCHECK")
    probe = json.loads(health[health.index("CMD") + 3 :].strip())
    cmd = json.loads(_one(steps, "CMD"))
    port = cmd[cmd.index("--port") + 1]
    assert probe[0] == "python" and f"127.0.0.1:{port}/v1/health" in probe[2]

    api = LocalApi(Registry(), InferenceStats(), "127.0.0.1", 0)
    api.start()
    try:
        # the probe as written, pointed at a real local API, succeeds...
        live = probe[2].replace(f":{port}/", f":{api.port}/")
        assert subprocess.run([sys.executable, "-c", live], timeout=30).returncode == 0
    finally:
        api.stop()
    # ...and fails where nothing answers
    dead = probe[2].replace(f":{port}/", f":{_free_port()}/")
    assert (
        subprocess.run([sys.executable, "-c", dead], capture_output=True, timeout=30).returncode
        != 0
    )


def _unit(path: Path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_the_systemd_unit_runs_the_agent_as_its_cli_expects() -> None:
    unit_file = DEPLOY / "farpoint-agent.service"
    unit = _unit(unit_file)
    [exec_start] = unit["ExecStart"]
    args = build_parser().parse_args(_agent_argv(shlex.split(exec_start)))
    assert args.command == "run"
    assert str(args.state_dir) == "/var/lib/" + unit["StateDirectory"][0]
    assert str(args.state_dir) in unit["ReadWritePaths"][0].split()
    assert args.host == "127.0.0.1" and unit["User"] == ["farpoint"]
    # the options its comments suggest exist too
    comments = unit_file.read_text()
    extra = "--mqtt-url mqtts://broker.example:8883 --poll-wait 0 --poll-interval 300"
    assert extra in comments
    more = build_parser().parse_args(_agent_argv(shlex.split(exec_start)) + shlex.split(extra))
    assert more.mqtt_url and more.poll_interval == 300
    rotate = build_parser().parse_args(["rotate-key", "--state-dir", str(args.state_dir)])
    assert rotate.command == "rotate-key"
