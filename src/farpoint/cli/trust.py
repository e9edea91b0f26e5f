"""`farpoint keys`, `farpoint attestation` and `farpoint approve`: signing on your machine."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref
from farpoint.cli.session import client
from farpoint.core import keys
from farpoint.sdk import keystore
from farpoint.wire.trust import AttestationOut

__all__ = ["approve", "attestation_app", "keys_app"]

keys_app = typer.Typer(
    help="Your signing keys: create, register, list, revoke.", no_args_is_help=True
)
attestation_app = typer.Typer(help="Signed attestations (in-toto in DSSE).", no_args_is_help=True)
create_app = typer.Typer(help="Sign an attestation about a record.", no_args_is_help=True)
attestation_app.add_typer(create_app, name="create")

PassphraseEnv = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        metavar="VAR",
        help="Read the key's passphrase from this environment variable (CI); prompt otherwise.",
    ),
]
KeyName = Annotated[str, typer.Option("--key", help="The local key to sign with.")]


def _passphrase(env: str | None, *, twice: bool = False) -> str:
    if env:
        value = os.environ.get(env)
        if not value:
            raise typer.BadParameter(f"environment variable {env} is unset or empty")
        return value
    text: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=twice)
    return text


def _signing_key(name: str, env: str | None) -> keys.PrivateKey:
    return keystore.load_key(name, _passphrase(env))


# -- keys ---------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(name: str, passphrase_env: PassphraseEnv = None) -> None:
    """Make a signing key here; the private key is stored encrypted, mode 0600."""
    key = keystore.create_key(name, _passphrase(passphrase_env, twice=True))
    render.fields(
        f"key {name}",
        [
            ("key id", keys.key_id(key.public_key())),
            ("stored in", keystore.keys_dir() / f"{name}.pem"),
        ],
        footer=f"next: farpoint keys register {name}",
    )


@keys_app.command("register")
def keys_register(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Send the public key `name` to the server, bound to your user."""
    out = client(ctx).register_key(name)
    if as_json:
        render.emit_json(out)
        return
    render.fields(f"registered key {out.name}", [("key id", out.key_id), ("user", out.user)])


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    user: Annotated[str | None, typer.Option("--user", help="Another user's keys (admin).")] = None,
    as_json: Json = False,
) -> None:
    """Your registered keys (an admin sees everyone's)."""
    rows = client(ctx).list_keys(user)
    if as_json:
        render.emit_json(rows)
        return
    render.table(
        ["key id", "name", "user", "created", "revoked"],
        ((k.key_id, k.name, k.user, k.created_at, k.revoked_at) for k in rows),
        title="keys",
    )


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a registered key: it stays on record and signs nothing any more."""
    client(ctx).revoke_key(key_id)
    render.note(f"revoked {key_id}")


# -- attestations ---------------------------------------------------------------------------


def _show(a: AttestationOut) -> None:
    render.fields(
        f"attestation {a.id}",
        [
            ("predicate type", a.predicate_type),
            *((f"subject {s.name}", s.digest) for s in a.subjects),
            ("signed by", f"{a.signer} with {a.key_id}"),
            ("created", render.when(a.created_at)),
        ],
    )


def _done(a: AttestationOut, as_json: bool) -> None:
    if as_json:
        render.emit_json(a)
    else:
        _show(a)


@create_app.command("dataset")
def create_dataset(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="Dataset version, NAME@VERSION.", callback=check_ref)],
    key: KeyName,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Sign that a dataset version has the digest, schema and roles on record."""
    _done(client(ctx).attest_dataset(ref, _signing_key(key, passphrase_env)), as_json)


@create_app.command("training")
def create_training(
    ctx: typer.Context,
    model_ref: Annotated[
        str, typer.Argument(help="Model version, NAME@VERSION.", callback=check_ref)
    ],
    key: KeyName,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Sign the SLSA provenance of a model version."""
    _done(client(ctx).attest_training(model_ref, _signing_key(key, passphrase_env)), as_json)


@create_app.command("evaluation")
def create_evaluation(
    ctx: typer.Context,
    evaluation_id: int,
    key: KeyName,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Sign an evaluation's verdict, gate results and metrics."""
    signing_key = _signing_key(key, passphrase_env)
    _done(client(ctx).attest_evaluation(evaluation_id, signing_key), as_json)


@attestation_app.command("list")
def attestation_list(
    ctx: typer.Context,
    subject: Annotated[str | None, typer.Option("--subject", help="sha256:<hex>.")] = None,
    predicate_type: Annotated[str | None, typer.Option("--predicate-type")] = None,
    as_json: Json = False,
) -> None:
    """Attestations, about one digest or of one predicate type."""
    rows = client(ctx).list_attestations(subject, predicate_type)
    if as_json:
        render.emit_json(rows)
        return
    render.table(
        ["id", "predicate type", "subjects", "signer", "created"],
        (
            (a.id, a.predicate_type, [s.name for s in a.subjects], a.signer, a.created_at)
            for a in rows
        ),
        title="attestations",
    )


@attestation_app.command("show")
def attestation_show(ctx: typer.Context, attestation_id: int, as_json: Json = False) -> None:
    """Show an attestation: what it is about and who signed it."""
    _done(client(ctx).get_attestation(attestation_id), as_json)


@attestation_app.command("verify")
def attestation_verify(ctx: typer.Context, attestation_id: int) -> None:
    """Verify here that the signer's registered key signed what the server shows."""
    sdk = client(ctx)
    attestation = sdk.get_attestation(attestation_id)
    sdk.verify_attestation(attestation)
    render.console.print(
        f"{render.PASS} attestation {attestation_id} verifies: signed by "
        f"{attestation.signer} with {attestation.key_id}"
    )


# -- approve ----------------------------------------------------------------------------------


def approve(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--as", help="The role you approve as (one you hold).")],
    key: KeyName,
    release: Annotated[int | None, typer.Option("--release", help="Release id.")] = None,
    evaluation: Annotated[int | None, typer.Option("--evaluation", help="Evaluation id.")] = None,
    comment: Annotated[str, typer.Option("--comment")] = "",
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Sign your approval of a release or an evaluation, on this machine."""
    if (release is None) == (evaluation is None):
        raise typer.BadParameter("give exactly one of --release or --evaluation")
    signing_key = _signing_key(key, passphrase_env)
    out = client(ctx).approve(
        release_id=release, evaluation_id=evaluation, role=role, key=signing_key, comment=comment
    )
    _done(out, as_json)
