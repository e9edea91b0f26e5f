"""The agent tests' control plane (`tests/unit/agent/agent_fakes.py`: a real python-tuf image
repository, real director metadata and DSSE attestations over loopback HTTP) in a process
of its own, driven by the benchmarks through a pipe. Not a benchmark itself."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "agent"))

import agent_fakes as fakes  # noqa: E402
from securesystemslib.signer import CryptoSigner  # noqa: E402

from farpoint.core import keys  # noqa: E402

__all__ = ["ControlPlane", "fakes", "trust_keys"]


def trust_keys() -> fakes.TrustKeys:
    gen = CryptoSigner.generate_ecdsa
    person = keys.generate_private_key
    return fakes.TrustKeys(
        gen(), gen(), gen(), gen(), gen(), gen(), gen(),
        fakes.Person("dana", ("data-scientist",), person()),
        fakes.Person("omar", ("mlops-engineer",), person()),
        fakes.Person("alex", ("data-scientist", "mlops-engineer"), person()),
        fakes.Person("eve", ("mlops-engineer",), person()),
    )  # fmt: skip


def _serve(make_model: Callable[[], fakes.OnnxModel], conn: Connection) -> None:
    model = make_model()
    clock = fakes.Clock()
    k = trust_keys()
    cp = fakes.FakeControlPlane(k=k, clock=clock, repo=fakes.Repository(k, clock))
    httpd = fakes._Server(("127.0.0.1", 0), fakes._Handler)
    httpd.cp = cp
    cp.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    release = cp.release(1, model)
    conn.send((cp.url, cp.token()))
    while True:
        command = conn.recv()
        answer: Any = "ok"
        if command == "deploy":  # the director names the release for every enrolled device
            cp.deploy(release)
        elif command == "republish":
            # As when a release is published: new releases.json, snapshot, timestamp and
            # director versions, which a device must fetch and verify afresh.
            cp.repo.add_release(release)
            cp.deploy(release)
        elif command == "token":
            answer = cp.token()
        elif command == "phases":
            answer = cp.phases(release.name, release.release_id)
        elif command == "requests":
            answer = len(cp.requests)
        else:
            break
        conn.send(answer)
    httpd.shutdown()


class ControlPlane:
    """Start with a function that makes the release's model (run in the child)."""

    def __init__(self, make_model: Callable[[], fakes.OnnxModel]) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(make_model, theirs), daemon=True)
        self._proc.start()
        self.url, self.first_token = self._conn.recv()

    def ask(self, command: str) -> Any:
        self._conn.send(command)
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)
