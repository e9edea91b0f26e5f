"""Time to verify a 100 MB release on the device, against raw sha256 over the same bytes.

The device side is the agent's own code (`farpoint.agent.delivery`): refresh and verify the
TUF image repository (root, timestamp, snapshot, targets, the release managers' delegated
metadata), fetch and verify the director metadata, check the image targets, the manifest,
the trust policy (every approval and evaluation signature against the keys bound offline)
and the OMS model signature, then hash the model bytes once. The control plane is the
agent test suite's (`tests/unit/agent/agent_fakes.py`): a real python-tuf repository and
real DSSE attestations served over loopback HTTP.

Verification time counts the model as already on the device (the agent's content-addressed
cache); the download over loopback is reported beside it. Signature checks are ECDSA P-256
verifications of DSSE envelopes, timed one by one.

    .venv/bin/python benchmarks/verify.py [--mb 100] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from fake_control_plane import ControlPlane, fakes  # benchmarks/ is on sys.path

from farpoint.agent.client import DeviceClient
from farpoint.agent.delivery import Delivery
from farpoint.agent.enroll import enroll
from farpoint.agent.state import load_identity
from farpoint.agent.trust import TrustWorker, WorkerDelivery
from farpoint.core import dsse, keys


def _model_bytes(mb: int) -> bytes:
    return np.random.default_rng(7).bytes(mb * 1024 * 1024)


class _Blob:
    """The release's model: random bytes (verification never parses them). A class, not a
    lambda, so the forked control plane builds the same bytes."""

    def __init__(self, mb: int) -> None:
        self.mb = mb

    def __call__(self) -> fakes.OnnxModel:
        data = _model_bytes(self.mb)
        return fakes.OnnxModel(data=data, inputs=["x"], rows=[], labels=[], probabilities=[])


def _best(fn, repeat: int, before=lambda: None) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _signature_checks() -> tuple[list[float], int]:
    """Each DSSE envelope of a release's chain (evaluation, two approvals), verified alone."""
    dana = fakes.Person("dana", ("data-scientist",), keys.generate_private_key())
    omar = fakes.Person("omar", ("mlops-engineer",), keys.generate_private_key())
    subject = "sha256:" + "ab" * 32
    envelopes = [
        fakes.evaluation(dana, subject),
        fakes.approval(dana, subject, "data-scientist"),
        fakes.approval(omar, subject, "mlops-engineer"),
    ]
    trusted = {p.key_id: p.key.public_key() for p in (dana, omar)}
    per_signature = []
    for _ in range(200):
        for env in envelopes:
            started = time.perf_counter()
            dsse.verify_envelope(env, trusted, env["payloadType"])
            per_signature.append(time.perf_counter() - started)
    return per_signature, len(envelopes)


def run(mb: int, repeat: int) -> dict[str, float]:
    cp = ControlPlane(_Blob(mb))

    def ask(command: str) -> None:
        assert cp.ask(command) == "ok"

    data = _model_bytes(mb)
    clock = fakes.Clock()
    try:
        url, token = cp.url, cp.first_token
        with tempfile.TemporaryDirectory(prefix="farpoint-verify-") as tmp:
            state = Path(tmp) / "device"
            enroll(url, token, state, "bench-1", {})
            ask("deploy")
            identity, key = load_identity(state)
            client = DeviceClient(identity.server_url, identity.device_id, key, clock)
            # One Delivery for the device's life, as the agent keeps it between syncs (its
            # small verified trust files stay cached by hash; everything else is fetched).
            delivery = Delivery(client, state, identity.server_url, identity.device_id, clock)
            directed = delivery.sync().releases[0]
            delivery.verify_release(directed)
            started = time.perf_counter()
            blob = delivery.fetch_model(directed, lambda: None)  # download over loopback
            download_s = time.perf_counter() - started

            def verify_on_device() -> None:
                # as the agent applies a release: the cached blob is hashed (once, not
                # fetched) while the image targets, manifest, policy and signatures verify
                rel = delivery.sync().releases[0]
                check = delivery.check_cache(rel)
                delivery.verify_release(rel)
                delivery.fetch_model(rel, lambda: None, check)

            def metadata_only() -> None:
                delivery.verify_release(delivery.sync().releases[0])

            def sha256_file() -> None:
                with open(blob, "rb") as f:
                    hashlib.file_digest(f, "sha256")

            def sha256_mmap() -> None:
                with open(blob, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                    hashlib.sha256(m).digest()

            verify_s = _best(verify_on_device, repeat, lambda: ask("republish"))
            metadata_s = _best(metadata_only, repeat, lambda: ask("republish"))

            # The same through the trust worker, as `farpoint agent run` verifies: in a
            # child process (python-tuf stays out of the serving agent), warm while a sync's
            # requests follow each other, cold when it has to start first.
            worker = TrustWorker(state, linger_s=30.0)
            via_worker = WorkerDelivery(client, state, worker, clock, clock)

            def verify_through_worker() -> None:
                rel = via_worker.sync().releases[0]
                check = via_worker.check_cache(rel)
                via_worker.verify_release(rel)
                via_worker.fetch_model(rel, lambda: None, check)

            try:
                worker_warm_s = _best(verify_through_worker, repeat, lambda: ask("republish"))
                worker_cold_s = _best(verify_through_worker, repeat, worker.close)
            finally:
                worker.close()
            sha256_memory_s = _best(lambda: hashlib.sha256(data).digest(), repeat)
            sha256_file_s = _best(sha256_file, repeat)
            sha256_mmap_s = _best(sha256_mmap, repeat)
            # the baseline is the fastest of three ways of hashing the same bytes
            sha256_s = min(sha256_memory_s, sha256_file_s, sha256_mmap_s)
    finally:
        cp.stop()
    per_signature, signatures = _signature_checks()
    return {
        "model_mb": mb,
        "verify_s": round(verify_s, 4),
        "metadata_and_signatures_s": round(metadata_s, 4),
        "sha256_s": round(sha256_s, 4),
        "sha256_memory_s": round(sha256_memory_s, 4),
        "sha256_file_s": round(sha256_file_s, 4),
        "sha256_mmap_s": round(sha256_mmap_s, 4),
        "speed_ratio_vs_sha256": round(sha256_s / verify_s, 3),
        "worker_warm_verify_s": round(worker_warm_s, 4),
        "worker_cold_verify_s": round(worker_cold_s, 4),
        "speed_ratio_worker_warm": round(sha256_s / worker_warm_s, 3),
        "signature_check_ms": round(statistics.median(per_signature) * 1000, 3),
        "signature_check_p99_ms": round(
            sorted(per_signature)[int(len(per_signature) * 0.99) - 1] * 1000, 3
        ),
        "signatures_in_chain": signatures,
        "download_loopback_s": round(download_s, 3),
        "verify_mb_per_s": round(mb / verify_s, 1),
        "sha256_mb_per_s": round(mb / sha256_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()
    r = run(args.mb, args.repeat)
    print(f"release of {r['model_mb']} MB, best of {args.repeat}")
    print(f"  verify on the device (metadata, signatures, hash): {r['verify_s']:.3f} s "
          f"({r['verify_mb_per_s']} MB/s)")  # fmt: skip
    print(f"    of which metadata, policy, signatures: {r['metadata_and_signatures_s']:.3f} s")
    print(f"  hashlib.sha256 over the same bytes:                {r['sha256_s']:.3f} s "
          f"({r['sha256_mb_per_s']} MB/s), the fastest of:")  # fmt: skip
    print(f"    in memory, one update:                           {r['sha256_memory_s']:.3f} s")
    print(f"    hashlib.file_digest from the page cache:         {r['sha256_file_s']:.3f} s")
    print(f"    one update over an mmap of the file:             {r['sha256_mmap_s']:.3f} s")
    print(f"  speed ratio vs sha256:                             {r['speed_ratio_vs_sha256']}")
    warm, cold = r["worker_warm_verify_s"], r["worker_cold_verify_s"]
    print(f"  through the agent's trust worker, warm / cold:     {warm:.3f} s / {cold:.3f} s "
          f"(ratio warm {r['speed_ratio_worker_warm']})")  # fmt: skip
    print(f"  one signature check (median, p99):                 {r['signature_check_ms']} ms, "
          f"{r['signature_check_p99_ms']} ms")  # fmt: skip
    print(f"  first download over loopback + hash:               {r['download_loopback_s']} s")
    if args.json:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
