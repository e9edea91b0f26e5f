"""Child processes for the demo and the end-to-end tests: a server and agents on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Child",
    "farpoint_command",
    "start_agent",
    "start_server",
    "stop_all",
    "wait_for_file",
]


def farpoint_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "farpoint", *args]


@dataclass
class Child:
    """A child process in its own session, with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    def terminate(self) -> None:
        """Ask the child's process group to stop (SIGTERM); `stop` waits for it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def _spawn(name: str, cmd: Sequence[str], env: dict[str, str], log: Path) -> Child:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            list(cmd),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Child(name, proc, log)


def wait_for_file(path: Path, child: Child, timeout: float) -> str:
    """Wait until `path` exists (a port file); fail with the child's log if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            text = path.read_text().strip()
            if text:
                return text
        if child.proc.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with code {child.proc.returncode}:\n{child.tail()}"
            )
        time.sleep(0.05)
    raise TimeoutError(f"{child.name} did not start within {timeout} s:\n{child.tail()}")


def start_server(
    home: Path,
    env: dict[str, str] | None = None,
    *,
    console: bool = True,
    port: int = 0,
    host: str = "127.0.0.1",
) -> tuple[Child, str]:
    """Start `farpoint server` on loopback; returns the child and its base URL."""
    port_file = home / "server.port"
    port_file.unlink(missing_ok=True)
    full_env = dict(os.environ if env is None else env)
    full_env["FARPOINT_HOME"] = str(home)
    args = ["server", "--host", host, "--port", str(port), "--port-file", str(port_file)]
    if not console:
        args.append("--no-console")
    child = _spawn("server", farpoint_command(*args), full_env, home / "logs" / "server.log")
    bound = wait_for_file(port_file, child, timeout=60)
    return child, f"http://{host}:{bound}"


def start_agent(
    state_dir: Path,
    *,
    poll_wait: int = 20,
    heartbeat_s: int = 5,
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
) -> tuple[Child, int]:
    """Start `farpoint agent run` for an enrolled state directory; returns child and API port."""
    port_file = state_dir / "api.port"
    port_file.unlink(missing_ok=True)
    cmd = farpoint_command(
        "agent",
        "run",
        "--state-dir",
        str(state_dir),
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--poll-wait",
        str(poll_wait),
        "--heartbeat-s",
        str(heartbeat_s),
        "--parent-pid",
        str(os.getpid()),
        *extra_args,
    )
    child = _spawn(
        f"agent {state_dir.name}",
        cmd,
        dict(os.environ if env is None else env),
        state_dir / "agent.log",
    )
    port = int(wait_for_file(port_file, child, timeout=60))
    return child, port


def stop_all(children: list[Child]) -> None:
    """Stop every child: signal them all first, then wait, so shutdown takes one timeout."""
    for child in children:
        child.terminate()
    for child in reversed(children):
        child.stop()
