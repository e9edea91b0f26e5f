"""`farpoint agent enroll` against a fake control plane."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from agent_fakes import FakeControlPlane

from farpoint.agent.cli import main
from farpoint.agent.enroll import EnrollError, parse_token
from farpoint.agent.state import load_identity
from farpoint.core import keys

pytestmark = pytest.mark.timeout(30)


def _enroll(cp: FakeControlPlane, state: Path, token: str | None = None) -> int:
    return main(
        [
            "enroll",
            "--server", cp.url,
            "--token", token or cp.token(),
            "--state-dir", str(state),
            "--name", "edge-1",
            "--label", "site=lab",
            "--label", "floor=2",
        ]
    )  # fmt: skip


def test_enroll_stores_identity_and_prints_device_id(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert _enroll(control_plane, state) == 0
    device_id = capsys.readouterr().out.strip()
    assert device_id in control_plane.devices

    sent = control_plane.enroll_requests[0]
    assert sent["name"] == "edge-1"
    assert sent["labels"] == {"site": "lab", "floor": "2"}
    assert {"architecture", "cpu_count", "memory_bytes", "os", "python"} <= set(sent["hardware"])
    # the key was made on the device: the server holds only its public half
    identity, key = load_identity(state)
    assert keys.public_key_pem(key.public_key()).decode() == sent["public_key_pem"]
    assert identity.device_id == device_id
    assert identity.root_sha256 == control_plane.root_hex
    # the root the token named is the trusted root python-tuf bootstraps from
    root = state / "tuf" / "metadata" / "root.json"
    assert root.read_bytes() == control_plane.repo.root_bytes
    assert stat.S_IMODE((state / "device-key.pem").stat().st_mode) == 0o600
    doc = json.loads((state / "device.json").read_text())
    assert doc["server_url"] == control_plane.url
    assert "server_public_key_pem" not in doc
    assert "PRIVATE" not in (state / "device.json").read_text()


def test_enroll_refuses_a_root_other_than_the_tokens(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a server that hands over another root (say, one whose keys it holds itself)
    doc = json.loads(control_plane.repo.root_bytes)
    doc["signed"]["version"] = 7
    control_plane.answer_root = json.dumps(doc).encode()
    state = tmp_path / "state"
    assert _enroll(control_plane, state) == 1
    err = capsys.readouterr().err
    assert "hashes to" in err and "refusing to trust" in err and err.count("\n") == 1
    assert not (state / "device.json").exists()
    assert not (state / "tuf").exists()


def test_enroll_refuses_bytes_that_are_not_root_metadata(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    junk = b'{"signed": {"_type": "targets"}}'
    control_plane.answer_root = junk
    token = f"fpe1.s.{hashlib.sha256(junk).hexdigest()}"
    control_plane.tokens.add(token)
    assert _enroll(control_plane, tmp_path / "s", token) == 1
    assert "not TUF root metadata" in capsys.readouterr().err


def test_enroll_shows_the_servers_problem_detail(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hex_part = control_plane.root_hex
    assert _enroll(control_plane, tmp_path / "s", f"fpe1.unknown.{hex_part}") == 1
    err = capsys.readouterr().err
    assert "401" in err and "enrollment token is unknown, used or expired" in err


def test_enroll_with_a_malformed_token_fails_before_any_request(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _enroll(control_plane, tmp_path / "s", "fpe1.secret.nothex") == 1
    assert "malformed enrollment token" in capsys.readouterr().err
    assert control_plane.enroll_requests == []


def test_enroll_twice_into_one_state_dir_is_refused(
    control_plane: FakeControlPlane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert _enroll(control_plane, state) == 0
    assert _enroll(control_plane, state) == 1
    assert "already holds an enrolled device" in capsys.readouterr().err


def test_enroll_against_an_unreachable_server_fails_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "fpe1.s." + "a" * 64
    code = main(["enroll", "--server", "http://127.0.0.1:9", "--token", token,
                 "--state-dir", str(tmp_path / "s"), "--name", "edge-1"])  # fmt: skip
    assert code == 1
    assert "cannot reach" in capsys.readouterr().err


@pytest.mark.parametrize(
    "token",
    ["", "fpe1", "fpe2.s." + "a" * 64, "fpe1.." + "a" * 64, "fpe1.s." + "A" * 64,
     "fpe1.s." + "a" * 63, "fpe1." + "a" * 64],
)  # fmt: skip
def test_parse_token_rejects_malformed_tokens(token: str) -> None:
    with pytest.raises(EnrollError, match="malformed enrollment token"):
        parse_token(token)


def test_parse_token_names_the_roots_digest() -> None:
    parsed = parse_token("fpe1.abc-_.def." + "0f" * 32)
    assert parsed.secret == "abc-_.def"
    assert parsed.root_sha256 == "0f" * 32
