"""`farpoint trace DEVICE_OR_RELEASE`: the chain from a device back to the rows it learned from."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from farpoint.cli import render
from farpoint.cli.params import Json
from farpoint.cli.session import client
from farpoint.sdk.trace import LinkCheck

__all__ = ["trace"]


def _label(check: LinkCheck) -> Text:
    link = check.link
    text = Text()
    text.append(f"{link.kind.replace('_', ' ')} ", style="dim")
    text.append(link.ref, style="bold")
    if link.digest:
        text.append(f"  {render.short(link.digest, 19)}", style="cyan")
    if link.summary:
        text.append(f"  {link.summary}")
    for what, ok, detail in check.checks:
        text.append(f"\n{render.PASS if ok else render.FAIL} ", style="green" if ok else "red")
        text.append(f"{what}: {detail}")
    if not check.checks and link.kind in ("evaluation", "model_version", "dataset_version"):
        text.append("\n  no signed attestation", style="yellow")
    return text


def trace(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="A release id, or a device id or name.")],
    key_id: Annotated[
        str | None,
        typer.Option("--key-id", help="Require the release manifests to be signed by this key."),
    ] = None,
    as_json: Json = False,
) -> None:
    """Walk the chain: device → release → approvals → evaluation → model → run → datasets.

    Every signature is verified here, with keys fetched and checked on this machine.
    Exit codes: 0 every signature present verifies; 1 one does not, or the request was
    refused; 2 cannot reach the server.
    """
    sdk = client(ctx)
    chain = sdk.trace_release(int(target)) if target.isdigit() else sdk.trace_device(target)
    checks = sdk.verify_trace(chain, server_key_id=key_id)
    failed = [c for c in checks if not c.ok]
    if as_json:
        out = {
            "trace": chain.model_dump(mode="json"),
            "verified": not failed,
            "checks": [
                {"ref": c.link.ref, "what": w, "verified": ok, "detail": d}
                for c in checks
                for w, ok, d in c.checks
            ],
        }
        typer.echo(json.dumps(out))
    else:
        nodes: list[Tree] = []
        root = Tree(_label(checks[0]))
        nodes.append(root)
        for check in checks[1:]:
            parent = nodes[check.depth - 1]
            node = parent.add(_label(check))
            del nodes[check.depth :]
            nodes.append(node)
        render.console.print(root)
        if failed:
            render.console.print(Text(f"{render.FAIL} {len(failed)} link(s) do not verify", "red"))
        else:
            render.console.print(Text(f"{render.PASS} every signature verifies", "green"))
    if failed:
        raise typer.Exit(1)
