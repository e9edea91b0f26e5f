"""`farpoint audit ...`: the hash-chained audit log."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from farpoint.cli import render
from farpoint.cli.params import Json
from farpoint.cli.session import Session, client
from farpoint.core import audit_chain

__all__ = ["audit_app", "default_state_file"]

audit_app = typer.Typer(help="The audit log: list entries, verify the chain.", no_args_is_help=True)

EXIT_BROKEN = 1
"""The chain did not verify (the same code as any refusal: something is wrong)."""


def default_state_file(server: str) -> Path:
    """`$XDG_STATE_HOME/farpoint/audit-<host>-<port>.json` (XDG default ~/.local/state)."""
    url = urlsplit(server if "://" in server else f"http://{server}")
    port = url.port or (443 if url.scheme == "https" else 80)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "farpoint" / f"audit-{url.hostname or 'localhost'}-{port}.json"


def _load_state(path: Path) -> audit_chain.Remembered | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return audit_chain.Remembered(
            key_id=str(data["key_id"]),
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            at=str(data["at"]),
            verified_at=str(data["verified_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        render.error(
            f"the audit state file {path} cannot be read ({exc}); it holds the last checkpoint "
            "this machine verified. Restore it, or pass another --state-file to start afresh"
        )
        raise typer.Exit(EXIT_BROKEN) from None


def _save_state(path: Path, state: audit_chain.Remembered) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    os.replace(tmp, path)


@audit_app.command("list")
def audit_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Show the latest N entries.")] = 100,
    as_json: Json = False,
) -> None:
    """List the latest audit entries, oldest of them first (admin, business)."""
    entries = list(reversed(client(ctx).audit_entries(limit, newest_first=True)))
    if as_json:
        render.emit_json(entries)
        return
    render.table(
        ["seq", "at", "actor", "action", "subject", "digests"],
        (
            (
                e.seq,
                e.at,
                e.actor,
                e.action,
                e.subject,
                ", ".join(f"{k}={render.short(v)}" for k, v in e.digests.items()) or "-",
            )
            for e in entries
        ),
        title="audit log",
    )


@audit_app.command("verify")
def audit_verify(
    ctx: typer.Context,
    key_id: Annotated[
        str | None,
        typer.Option(
            "--key-id",
            help="Require checkpoints signed by this key (sha256:...), learned out of band.",
        ),
    ] = None,
    state_file: Annotated[
        Path | None,
        typer.Option(
            "--state-file",
            help="Where the last verified checkpoint is remembered between runs "
            "(default: $XDG_STATE_HOME/farpoint/audit-<host>-<port>.json).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Fetch every entry and checkpoint and verify the chain here; exit 1 at the first fault.

    Detects edited, deleted, reordered and cut-off entries, forged checkpoints, and a tail
    cut off together with its checkpoints after this machine last verified it.
    """
    session = ctx.find_root().obj
    assert isinstance(session, Session)
    path = state_file or default_state_file(session.server)
    remembered = _load_state(path)
    result = client(ctx).verify_audit(key_id=key_id, remembered=remembered)
    if result.ok and result.latest is not None:
        _save_state(path, result.latest)
    if as_json:
        render.emit_json(
            {
                "ok": result.ok,
                "problem": result.problem,
                "entries": result.entries,
                "head": result.head_hash,
                "checkpoints": result.checkpoints,
                "unanchored_entries": result.unanchored,
                "state_file": str(path),
                "notes": result.notes,
            }
        )
    if not result.ok:
        if not as_json:
            render.error(f"audit chain does not verify: {result.problem}")
        raise typer.Exit(EXIT_BROKEN)
    if as_json:
        return
    for note in result.notes:
        render.note(f"note: {note}")
    if result.unanchored:
        render.note(
            f"note: the last {result.unanchored} entries are not yet under a checkpoint; "
            "a cut there shows after the next one (farpoint audit checkpoint)"
        )
    typer.echo(
        f"audit chain verified: {result.entries} entries, head {result.head_hash}, "
        f"{result.checkpoints} checkpoints"
    )


@audit_app.command("checkpoint")
def audit_checkpoint(ctx: typer.Context, as_json: Json = False) -> None:
    """Have the server sign its current head now (admin)."""
    cp = client(ctx).create_audit_checkpoint()
    if as_json:
        render.emit_json(cp)
        return
    render.fields(
        f"checkpoint {cp.id}",
        [("covers entry", cp.seq), ("hash", cp.hash), ("at", cp.at), ("signed by", cp.key_id)],
    )
