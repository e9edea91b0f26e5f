"""`farpoint agent run` as a real process: port file, serving, SIGTERM, --parent-pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from agent_fakes import FakeControlPlane, OnnxModel

pytestmark = pytest.mark.timeout(40)


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "farpoint", "agent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _read_port(port_file: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        time.sleep(0.05)
    raise AssertionError("the agent never wrote its port file")


def test_run_serves_the_desired_release_and_stops_on_sigterm(
    control_plane: FakeControlPlane,
    enrolled: Path,
    model_a: OnnxModel,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    control_plane.deploy(control_plane.release(1, model_a))
    port_file = tmp_path / "port"
    proc = _spawn(["run", "--state-dir", str(enrolled), "--port-file", str(port_file),
                   "--poll-wait", "1", "--heartbeat-s", "1",
                   "--parent-pid", str(os.getpid())])  # fmt: skip
    processes.append(proc)
    port = _read_port(port_file, proc)
    control_plane.wait_for(lambda c: "active" in c.phases("churn", 1), timeout_s=20)

    body = json.dumps({"rows": model_a.rows}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/churn:predict", data=body)
    with urllib.request.urlopen(req, timeout=10) as resp:
        doc = json.loads(resp.read())
    assert [p["label"] for p in doc["predictions"]] == model_a.labels
    # The serving process signed all its requests without the cryptography extension
    # (core/light_key.py): it is not mapped at all (the trust worker is another process).
    mapped = Path(f"/proc/{proc.pid}/maps").read_text()
    assert "cryptography" not in mapped, "the serving agent loaded the cryptography package"
    assert "libcrypto" in mapped

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0


def test_run_exits_when_its_parent_is_gone(
    enrolled: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    parent = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    processes.append(parent)
    port_file = tmp_path / "port"
    proc = _spawn(["run", "--state-dir", str(enrolled), "--port-file", str(port_file),
                   "--parent-pid", str(parent.pid), "--poll-wait", "1"])  # fmt: skip
    processes.append(proc)
    _read_port(port_file, proc)
    parent.kill()
    parent.wait()
    assert proc.wait(timeout=10) == 0


def test_run_without_enrollment_fails_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "farpoint", "agent", "run", "--state-dir", str(tmp_path)],
        capture_output=True,
        timeout=30,
    )
    assert proc.returncode == 1
    assert b"enroll first" in proc.stderr and proc.stderr.count(b"\n") == 1


def test_run_takes_a_positive_bandwidth_limit(capsys: pytest.CaptureFixture[str]) -> None:
    from farpoint.agent.cli import build_parser

    args = build_parser().parse_args(
        ["run", "--state-dir", "s", "--max-download-bytes-per-s", "250000"]
    )
    assert args.max_download_bytes_per_s == 250000.0
    assert build_parser().parse_args(["run", "--state-dir", "s"]).max_download_bytes_per_s is None
    for bad in ("0", "-5", "fast", "inf"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(
                ["run", "--state-dir", "s", "--max-download-bytes-per-s", bad]
            )
        assert "--max-download-bytes-per-s" in capsys.readouterr().err
