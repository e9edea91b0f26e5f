"""The agent's identity pieces without a server: tokens, URLs, redaction, the log ring,
upload bounds, the push waker, the hardware profile at enrollment."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import typing
from pathlib import Path

import pytest
from agent_fakes import FakeControlPlane

from farpoint.agent import diagnostics, payloads
from farpoint.agent.cli import main
from farpoint.agent.enroll import parse_token
from farpoint.agent.push import Waker
from farpoint.agent.tls import InsecureServer, check_server_url

pytestmark = pytest.mark.timeout(30)
ROOT, CA = "1f" * 32, "2e" * 32


# --- tokens and URLs --------------------------------------------------------------------


def test_a_four_part_token_names_the_ca_to_pin() -> None:
    parsed = parse_token(f"fpe1.secret-_x.{ROOT}.{CA}")
    assert (parsed.secret, parsed.root_sha256, parsed.ca_sha256) == ("secret-_x", ROOT, CA)


def test_three_part_tokens_still_parse_without_a_ca() -> None:
    parsed = parse_token(f"fpe1.secret.{ROOT}")
    assert (parsed.root_sha256, parsed.ca_sha256) == (ROOT, None)
    # an older secret holding dots, read leniently as before
    parsed = parse_token(f"fpe1.abc.def.{ROOT}")
    assert (parsed.secret, parsed.root_sha256, parsed.ca_sha256) == ("abc.def", ROOT, None)
    # a 64-hex secret is a secret, not a root: three parts never carry a CA
    parsed = parse_token(f"fpe1.{ROOT}.{CA}")
    assert (parsed.secret, parsed.root_sha256, parsed.ca_sha256) == (ROOT, CA, None)


@pytest.mark.parametrize(
    "url",
    ["https://farpoint.example", "https://10.0.0.5:8750/", "http://127.0.0.1:8750",
     "http://localhost:1", "http://[::1]:8750", "http://127.9.9.9"],
)  # fmt: skip
def test_https_anywhere_and_http_on_loopback_are_allowed(url: str) -> None:
    assert check_server_url(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5:8750", "http://farpoint.example", "http://127.0.0.1.evil.example",
     "ftp://127.0.0.1", "127.0.0.1:8750", "https://"],
)  # fmt: skip
def test_plain_http_off_loopback_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(InsecureServer):
        check_server_url(url)


def test_enroll_refuses_plain_http_before_any_request(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = control_plane.url.replace("127.0.0.1", "192.0.2.10")  # TEST-NET: not loopback
    code = main(["enroll", "--server", remote, "--token", control_plane.token(),
                 "--state-dir", str(tmp_path / "s"), "--name", "edge-1"])  # fmt: skip
    assert code == 1
    assert "refusing plain HTTP to 192.0.2.10" in capsys.readouterr().err
    assert control_plane.enroll_requests == []


# --- the hardware profile ---------------------------------------------------------------


def test_enrollment_sends_the_execution_providers(
    control_plane: FakeControlPlane, tmp_path: Path
) -> None:
    assert main(["enroll", "--server", control_plane.url, "--token", control_plane.token(),
                 "--state-dir", str(tmp_path / "s"), "--name", "edge-1"]) == 0  # fmt: skip
    hardware = control_plane.enroll_requests[0]["hardware"]
    assert "CPUExecutionProvider" in hardware["execution_providers"]
    assert hardware["architecture"] and hardware["cpu_count"] >= 1


def test_the_idle_agent_does_not_import_onnxruntime() -> None:
    """Only `agent enroll` pays for onnxruntime's import (about 45 MB) to list providers;
    python-tuf, securesystemslib and urllib3 stay in the trust worker."""
    code = (
        "import sys\n"
        "import farpoint.agent.cli, farpoint.agent.loop, farpoint.agent.enroll\n"
        "import farpoint.agent.rotate, farpoint.agent.diagnostics, farpoint.agent.push\n"
        "import farpoint.agent.trust, farpoint.agent.activation\n"
        "heavy = ('onnxruntime', 'paho', 'tuf', 'securesystemslib', 'urllib3')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


# --- diagnostics ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("token fpe1.abcDEF-_.0f0f.1e1e used", "token fpe1.[redacted] used"),
        ("auth with fpt_12_s3cr3t-x ok", "auth with fpt_[redacted] ok"),
        ("Authorization: Bearer abc.def", "Authorization: [redacted] [redacted]"),
        ("{'X-Farpoint-Signature': 'MEUCIQ=='}", "{'X-Farpoint-Signature': '[redacted]'}"),
        ("mqtt://bob:hunter2@10.0.0.1:1883", "mqtt://[redacted]@10.0.0.1:1883"),
        ("password=hunter2&x=1", "password=[redacted]&x=1"),
        ("nothing secret here", "nothing secret here"),
    ],
)  # fmt: skip
def test_redact_removes_secrets(text: str, kept: str) -> None:
    assert diagnostics.redact(text) == kept


def test_redact_removes_private_keys_even_cut_short() -> None:
    from farpoint.core import keys

    pem = keys.private_key_pem(keys.generate_private_key()).decode()
    assert diagnostics.redact(f"key:\n{pem}after") == "key:\n[private key redacted]\nafter"
    assert "MIG" not in diagnostics.redact("x " + pem[:80])


def _record(
    message: str, level: int = logging.INFO, exc: BaseException | None = None
) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("farpoint.agent", level, __file__, 1, message, None, info)


def test_the_ring_keeps_the_last_lines_and_errors_with_tracebacks() -> None:
    ring = diagnostics.DiagnosticsRing(max_lines=3, max_errors=2)
    for i in range(5):
        ring.emit(_record(f"line {i}"))
    try:
        raise RuntimeError("it broke")
    except RuntimeError as exc:
        ring.emit(_record("failed", logging.ERROR, exc))
    lines, errors = ring.snapshot()
    assert [line["message"] for line in lines] == ["line 3", "line 4", "failed"]
    assert errors[0]["level"] == "ERROR" and "RuntimeError: it broke" in errors[0]["message"]
    assert "Traceback" in errors[0]["message"]


def test_an_upload_fits_the_limit_dropping_the_oldest_lines_first() -> None:
    ring = diagnostics.DiagnosticsRing()
    for i in range(500):
        ring.emit(_record(f"line {i:03d} " + "x" * 1500))
    lines, errors = ring.snapshot()
    body = diagnostics.build_upload(lines, errors, {"device_id": "d"}, max_bytes=60 * 1024)
    assert len(body) <= 60 * 1024
    doc = json.loads(body)
    kept = [line["message"][:8] for line in doc["logs"]]
    assert kept[-1] == "line 499" and doc["dropped_lines"] == 500 - len(kept) > 0
    assert kept == sorted(kept)  # the newest survive, in order
    wire = pytest.importorskip("farpoint.wire.device_ops")
    wire.DiagnosticsUpload.model_validate_json(body)


def test_agent_payloads_match_the_wire_models_of_rotation_and_diagnostics() -> None:
    wire = pytest.importorskip("farpoint.wire.device_ops")
    for ours, theirs in (
        (payloads.KeyRotation, wire.KeyRotation),
        (payloads.KeyRotated, wire.KeyRotated),
        (payloads.LogLine, wire.LogLine),
        (payloads.DiagnosticsUpload, wire.DiagnosticsUpload),
    ):
        assert set(typing.get_type_hints(ours)) == set(theirs.model_fields), ours


# --- the push waker ---------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_push_ends_a_nap_and_pushes_are_rate_limited() -> None:
    stop = threading.Event()
    clock = _Clock()
    waker = Waker(stop, min_interval_s=1.0, clock=clock)
    assert waker.nap(0.01) is False  # nobody pushed: the timeout ends it
    waker.wake()
    assert waker.nap(30) is True  # at once, not after 30 s
    # a second push right away is held back until min_interval_s after the first
    waker.wake()
    waited: list[float] = []
    real_wait = stop.wait

    def fake_wait(timeout: float | None = None) -> bool:
        waited.append(timeout or 0.0)
        clock.now += timeout or 0.0
        return real_wait(0)

    stop.wait = fake_wait  # type: ignore[method-assign]
    assert waker.nap(30) is True
    assert waited == [pytest.approx(1.0)]
    assert waker.wakes == 2


def test_stop_ends_a_nap() -> None:
    stop = threading.Event()
    waker = Waker(stop)
    stop.set()
    waker.wake()
    assert waker.nap(30) is False
