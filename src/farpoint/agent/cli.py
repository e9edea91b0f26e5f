"""`farpoint agent enroll`, `run` and `rotate-key` (argparse: no client extras needed)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from .client import LinkDown, ServerError
from .enroll import EnrollError, enroll_device, parse_labels
from .payloads import PayloadError
from .state import StateError
from .tls import InsecureServer

__all__ = ["OffsetClock", "build_parser", "main"]

log = logging.getLogger("farpoint.agent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="farpoint agent", description="The Farpoint device agent."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    e = sub.add_parser("enroll", help="enroll this device with a control plane")
    e.add_argument(
        "--server",
        required=True,
        help="control plane URL, https://host[:port] (http:// only on 127.0.0.1)",
    )
    e.add_argument(
        "--token", required=True, help="enrollment token fpe1.<secret>.<root hex>[.<ca hex>]"
    )
    e.add_argument("--state-dir", required=True, type=Path, help="where the agent keeps state")
    e.add_argument("--name", required=True, help="device name (lowercase, digits, . _ -)")
    e.add_argument(
        "--label", action="append", default=[], metavar="K=V", help="device label (repeatable)"
    )

    r = sub.add_parser("run", help="sync, install and serve the desired releases")
    r.add_argument("--state-dir", required=True, type=Path)
    r.add_argument("--host", default="127.0.0.1", help="local API address (default 127.0.0.1)")
    r.add_argument("--port", type=int, default=0, help="local API port (0: any free port)")
    r.add_argument("--port-file", type=Path, help="write the bound local API port here")
    r.add_argument("--poll-wait", type=int, default=30, help="long-poll hold in seconds (max 60)")
    r.add_argument(
        "--poll-interval",
        type=float,
        default=0.5,
        help="least seconds between polls the server answers at once (with --poll-wait 0 "
        "and --mqtt-url, polls can be rare: pushes wake the agent)",
    )
    r.add_argument(
        "--mqtt-url",
        help="listen for sync pushes on this broker, mqtt://[user:pass@]host[:port] or "
        "mqtts://... (needs the mqtt extra)",
    )
    r.add_argument(
        "--key-max-age-days",
        type=float,
        help="rotate the device key when it is older than this (checked hourly)",
    )
    r.add_argument("--heartbeat-s", type=float, default=10.0, help="heartbeat period")
    r.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    r.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    r.add_argument(
        "--max-download-bytes-per-s",
        type=_positive_number,
        metavar="N",
        help="limit model downloads to N bytes per second on average (default: no limit)",
    )
    r.add_argument(
        "--resync-s",
        type=_positive_number,
        default=300.0,
        metavar="S",
        help="re-read the image repository and the director this often even when the "
        "desired state did not change (default 300)",
    )
    r.add_argument(
        "--trust-in-process",
        action="store_true",
        help="verify in the agent's own process instead of a short-lived trust worker "
        "(python-tuf then stays in the agent's memory)",
    )
    r.add_argument(
        "--trust-clock-offset-file",
        type=Path,
        help="testing only: a file holding seconds to add to the clock that judges metadata "
        "expiry (re-read when it changes), so tests can move a device in time",
    )

    k = sub.add_parser(
        "rotate-key", help="replace the device key (no re-enrollment); the old one is refused"
    )
    k.add_argument("--state-dir", required=True, type=Path)
    return parser


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


class OffsetClock:
    """time.time() plus the seconds written in a file (0 while it is missing or empty)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._offset = 0.0

    def __call__(self) -> float:
        try:
            st = self._path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp != self._stamp:
                text = self._path.read_text().strip()
                self._offset, self._stamp = (float(text) if text else 0.0), stamp
        except FileNotFoundError:
            self._offset, self._stamp = 0.0, None
        except (OSError, ValueError) as exc:
            log.error("clock offset file %s unusable: %s", self._path, exc)
        return time.time() + self._offset


def _enroll(args: argparse.Namespace) -> int:
    try:
        enrolled = enroll_device(
            args.server, args.token, args.state_dir, args.name, parse_labels(args.label)
        )
    except ServerError as exc:
        print(
            f"farpoint agent enroll: refused by the server ({exc.status}): {exc.detail}",
            file=sys.stderr,
        )
        return 1
    except (EnrollError, InsecureServer, LinkDown, PayloadError, StateError, OSError) as exc:
        print(f"farpoint agent enroll: {exc}", file=sys.stderr)
        return 1
    print(enrolled.identity.device_id)
    if enrolled.pinned_ca:
        print("pinned the server's TLS CA named by the token", file=sys.stderr)
    if enrolled.state == "pending":
        print(
            "enrolled, waiting for IT operations to approve this device: "
            f"farpoint device approve {enrolled.identity.device_id}",
            file=sys.stderr,
        )
    return 0


def _rotate_key(args: argparse.Namespace) -> int:
    from .rotate import RotationError, rotate_key

    try:
        answer = rotate_key(args.state_dir)
    except StateError as exc:
        print(f"farpoint agent rotate-key: {exc} (enroll first)", file=sys.stderr)
        return 1
    except (RotationError, InsecureServer, LinkDown, PayloadError, ServerError) as exc:
        print(f"farpoint agent rotate-key: {exc}", file=sys.stderr)
        return 1
    print(answer["key_id"])
    return 0


def _run(args: argparse.Namespace) -> int:
    level = getattr(logging, str(args.log_level).upper(), logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from . import diagnostics
    from .loop import Agent
    from .push import PushUnavailable
    from .rotate import KeyRotator, RotationError, resume_rotation

    diagnostics.install(level)  # IT operations may ask for these lines (secrets removed)
    try:
        resume_rotation(args.state_dir)
    except (RotationError, LinkDown, ServerError, PayloadError) as exc:
        log.warning("an interrupted key rotation could not be finished yet: %s", exc)
    except StateError as exc:
        print(f"farpoint agent run: {exc} (enroll first)", file=sys.stderr)
        return 1
    try:
        agent = Agent(
            args.state_dir,
            host=args.host,
            port=args.port,
            port_file=args.port_file,
            poll_wait_s=args.poll_wait,
            heartbeat_s=args.heartbeat_s,
            parent_pid=args.parent_pid,
            trust_worker=not args.trust_in_process,
            resync_s=args.resync_s,
            trust_clock=(
                OffsetClock(args.trust_clock_offset_file) if args.trust_clock_offset_file else None
            ),
            poll_interval_s=args.poll_interval,
            mqtt_url=args.mqtt_url,
            max_download_bytes_per_s=args.max_download_bytes_per_s,
        )
    except StateError as exc:
        print(f"farpoint agent run: {exc} (enroll first)", file=sys.stderr)
        return 1
    except (PushUnavailable, InsecureServer) as exc:
        print(f"farpoint agent run: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"farpoint agent run: {exc}", file=sys.stderr)
        return 1

    def _stop(signum: int, frame: FrameType | None) -> None:
        agent.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        agent.start()
    except OSError as exc:
        print(f"farpoint agent run: {exc}", file=sys.stderr)
        return 1
    if args.key_max_age_days:
        KeyRotator(args.state_dir, args.key_max_age_days * 86400, agent.stop_event).start()
    # wake now and then: a signal handler runs only between bytecodes of the main thread
    while not agent.wait(1.0):
        pass
    agent.close()
    return 0


def main(argv: list[str]) -> int:
    """Entry point of `farpoint agent`; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "enroll":
        return _enroll(args)
    if args.command == "rotate-key":
        return _rotate_key(args)
    return _run(args)
