"""`farpoint release ...`: signed, deployable packages of evaluated model versions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref, parse_pairs
from farpoint.cli.session import client
from farpoint.sdk import keystore, publish
from farpoint.wire.releases import ReleaseOut

__all__ = ["release_app", "verify"]

release_app = typer.Typer(help="Signed releases of model versions.", no_args_is_help=True)


def _show(r: ReleaseOut) -> None:
    render.fields(
        f"release {r.id}: {r.model_ref}",
        [
            ("model digest", r.model_digest),
            ("manifest digest", r.manifest_digest),
            ("evaluation", r.evaluation_id),
            (
                "latency budget",
                ", ".join(f"{k} {v:g} ms" for k, v in r.latency_budget_ms.items()) or "none",
            ),
            ("signed by key", r.key_id),
            ("created", f"{render.when(r.created_at)} by {r.created_by}"),
        ],
    )


@release_app.command("create")
def release_create(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option("--model", help="Model version, NAME@VERSION.", callback=check_ref)
    ],
    evaluation: Annotated[
        int | None,
        typer.Option("--evaluation", help="The passed evaluation to cite; the latest otherwise."),
    ] = None,
    latency_budget: Annotated[
        list[str] | None,
        typer.Option(
            "--latency-budget",
            metavar="PROFILE=MS",
            help="Single-row p95 latency the device's self-test allows on a hardware profile "
            "(its hardware-profile label or architecture, or default); repeatable.",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Package and sign a model version that passed its evaluation."""
    budgets = _latency_budgets(latency_budget)
    release = client(ctx).create_release(model, evaluation, budgets)
    if as_json:
        render.emit_json(release)
        return
    _show(release)


def _latency_budgets(values: list[str] | None) -> dict[str, float]:
    budgets: dict[str, float] = {}
    for profile, text in parse_pairs(values, "--latency-budget").items():
        try:
            budgets[profile] = float(text.removesuffix("ms").strip())
        except ValueError:
            raise typer.BadParameter(
                f"{text!r} is not a number of milliseconds; write PROFILE=MS, such as x86_64=2.5",
                param_hint="--latency-budget",
            ) from None
    return budgets


@release_app.command("list")
def release_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List releases."""
    releases = client(ctx).list_releases()
    if as_json:
        render.emit_json(releases)
        return
    render.table(
        ["id", "model", "evaluation", "manifest", "by", "created"],
        (
            (
                r.id,
                r.model_ref,
                r.evaluation_id,
                render.short(r.manifest_digest),
                r.created_by,
                r.created_at,
            )
            for r in releases
        ),
        title="releases",
    )


@release_app.command("show")
def release_show(ctx: typer.Context, release_id: int, as_json: Json = False) -> None:
    """Show a release: digests, evaluation, signing key."""
    release = client(ctx).get_release(release_id)
    if as_json:
        render.emit_json(release)
        return
    _show(release)


# -- the image repository: publish, download, verify offline -------------------------------


def _passphrase(env: str | None) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            raise typer.BadParameter(f"environment variable {env} is unset or empty")
        return value
    text: str = typer.prompt("Passphrase", hide_input=True)
    return text


@release_app.command("publish")
def release_publish(
    ctx: typer.Context,
    release_id: int,
    key: Annotated[str, typer.Option("--key", help="Your local release-manager key.")],
    passphrase_env: Annotated[
        str | None,
        typer.Option("--passphrase-env", metavar="VAR", help="Read the passphrase from VAR."),
    ] = None,
    expires_days: Annotated[
        int, typer.Option("--expires-days", min=1, help="Days releases.json stays valid.")
    ] = publish.RELEASES_EXPIRY_DAYS,
    cosign: Annotated[
        bool,
        typer.Option("--cosign", help="Add your signature to the current releases.json."),
    ] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            exists=True,
            help="A root you trust to read the repository from (default: the server's first).",
        ),
    ] = None,
    as_json: Json = False,
) -> None:
    """Sign, on this machine, that the release's manifest and model may run (mlops-engineer)."""
    signing_key = keystore.load_key(key, _passphrase(passphrase_env))
    out = publish.publish_release(
        client(ctx),
        release_id,
        signing_key,
        expires_days=expires_days,
        cosign=cosign,
        root=root.read_bytes() if root else None,
    )
    data = {
        "release_id": out.release_id,
        "releases_version": out.version,
        "signatures": out.signatures,
        "threshold": out.threshold,
        "targets": out.targets,
    }
    if as_json:
        render.emit_json(data)
        return
    render.fields(
        f"published release {release_id}",
        [
            ("releases.json version", out.version),
            ("signatures", f"{out.signatures} (threshold {out.threshold})"),
            *((path, f"sha256:{digest}") for path, digest in out.targets.items()),
        ],
    )


@release_app.command("download")
def release_download(
    ctx: typer.Context,
    release_id: int,
    directory: Annotated[Path, typer.Argument(help="A new (or empty) directory for the bundle.")],
) -> None:
    """Write a release bundle (metadata, targets, trust files, attestations) to verify offline."""
    out = publish.download_release(client(ctx), release_id, directory)
    render.note(f"release {release_id} written to {out}; check it with `farpoint verify {out}`")


def verify(
    bundle_dir: Annotated[Path, typer.Argument(help="A bundle from `farpoint release download`.")],
    root: Annotated[
        Path | None,
        typer.Option("--root", exists=True, help="The root to trust (default: the bundle's 1st)."),
    ] = None,
    fleet: Annotated[
        str | None, typer.Option("--fleet", help="Check the fleet's policy, if it has one.")
    ] = None,
    as_json: Json = False,
) -> None:
    """Verify a downloaded release offline: TUF chain, hashes, trust policy. Exit 1 on a failure."""
    if not bundle_dir.is_dir():
        raise typer.BadParameter(f"{bundle_dir} is not a directory", param_hint="BUNDLE_DIR")
    report = publish.verify_bundle(bundle_dir, root.read_bytes() if root else None, fleet=fleet)
    if as_json:
        render.emit_json(report.as_dict())
    else:
        for check in report.checks:
            mark = render.PASS if check.ok else render.FAIL
            render.console.print(f"{mark} {check.name}: {check.detail}", markup=False)
    failed = report.first_failure
    if failed is not None or not report.ok:
        render.error(f"not verified: {failed.name if failed else 'no checks ran'}")
        raise typer.Exit(1)
    render.note(f"release {report.release_id} verified")
