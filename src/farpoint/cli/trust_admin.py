"""`farpoint trust ...`: the offline root of trust (keys kept away from the server)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from farpoint.cli import render
from farpoint.cli.params import Json
from farpoint.cli.session import client
from farpoint.core.errors import BadRequest, NotFound
from farpoint.sdk import offline

__all__ = ["trust_app"]

trust_app = typer.Typer(
    help="Root of trust: offline keys, key bindings, trust policy.", no_args_is_help=True
)

OfflineDir = Annotated[
    Path | None,
    typer.Option(
        "--offline-dir",
        metavar="DIR",
        help="The offline key directory (default: $FARPOINT_HOME/offline, development only).",
        show_default=False,
    ),
]
PassphraseEnv = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        metavar="VAR",
        help="Read the offline keys' passphrase from this environment variable; prompt otherwise.",
    ),
]


def _directory(given: Path | None) -> Path:
    if given is not None:
        return given
    directory = offline.default_offline_dir()
    render.note(
        f"WARNING: offline keys in {directory} (under FARPOINT_HOME) are for development only; "
        "in production keep --offline-dir on a machine that is never online."
    )
    return directory


def _passphrase(env: str | None, *, twice: bool = False) -> bytes:
    if env:
        value = os.environ.get(env)
        if not value:
            raise typer.BadParameter(f"environment variable {env} is unset or empty")
        return value.encode()
    text: str = typer.prompt("Offline keys' passphrase", hide_input=True, confirmation_prompt=twice)
    if not text:
        raise typer.BadParameter("the passphrase must not be empty")
    return text.encode()


def _emit(as_json: bool, data: dict[str, Any], title: str, footer: str | None = None) -> None:
    if as_json:
        render.emit_json(data)
        return
    render.fields(title, [(k.replace("_", " "), v) for k, v in data.items()], footer=footer)


@trust_app.command("init")
def trust_init(
    ctx: typer.Context,
    offline_dir: OfflineDir = None,
    root_keys: Annotated[int, typer.Option("--root-keys", min=1, help="Root keys (n).")] = 3,
    root_threshold: Annotated[
        int, typer.Option("--root-threshold", min=1, help="Root signatures needed (k).")
    ] = 2,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Make the offline keys, sign root and targets v1, and upload them (admin)."""
    directory = _directory(offline_dir)
    sdk = client(ctx)
    out = offline.init(
        sdk,
        directory,
        _passphrase(passphrase_env, twice=True),
        root_keys=root_keys,
        threshold=root_threshold,
    )
    _emit(
        as_json,
        {
            "offline_dir": str(out.directory),
            "root_version": out.root_version,
            "root_keyids": out.root_keyids,
            "root_threshold": out.threshold,
            "targets_keyid": out.targets_keyid,
            "targets_version": out.targets_version,
        },
        "root of trust created",
        "next: farpoint trust bind-key KEY_ID --role data-scientist|mlops-engineer",
    )


@trust_app.command("bind-key")
def trust_bind_key(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="A registered key, sha256:<hex>.")],
    role: Annotated[str, typer.Option("--role", help="data-scientist or mlops-engineer.")],
    release_threshold: Annotated[
        int | None,
        typer.Option("--release-threshold", help="Release-manager signatures a release needs."),
    ] = None,
    offline_dir: OfflineDir = None,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Bind a user's key to a role, signed with the offline targets key (admin)."""
    out = offline.bind_key(
        client(ctx),
        _directory(offline_dir),
        _passphrase(passphrase_env),
        key_id,
        role,
        release_threshold=release_threshold,
    )
    _emit(as_json, _bind_fields(out), f"bound {out.key_id}")


@trust_app.command("unbind-key")
def trust_unbind_key(
    ctx: typer.Context,
    key_id: str,
    offline_dir: OfflineDir = None,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Remove a key from the bindings and from the release managers (admin)."""
    out = offline.unbind_key(
        client(ctx), _directory(offline_dir), _passphrase(passphrase_env), key_id
    )
    _emit(as_json, _bind_fields(out), f"unbound {out.key_id}")


def _bind_fields(out: offline.BindResult) -> dict[str, Any]:
    return {
        "key_id": out.key_id,
        "user": out.user,
        "roles": out.roles,
        "targets_version": out.targets_version,
        "release_manager_keyids": out.releases_keyids,
        "release_threshold": out.releases_threshold,
    }


@trust_app.command("set-policy")
def trust_set_policy(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The policy, JSON or YAML.", exists=True)],
    fleet: Annotated[
        str | None, typer.Option("--fleet", help="Only for this fleet (default: everyone).")
    ] = None,
    offline_dir: OfflineDir = None,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Publish a trust policy signed with the offline targets key (admin)."""
    try:
        policy = yaml.safe_load(file.read_text())  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise BadRequest(f"{file} is neither JSON nor YAML: {exc}") from exc
    offline.validate_policy(policy)  # before asking for a passphrase
    target, version = offline.set_policy(
        client(ctx), _directory(offline_dir), _passphrase(passphrase_env), policy, fleet=fleet
    )
    _emit(as_json, {"target": target, "targets_version": version, "policy": policy}, "policy set")


@trust_app.command("rotate-online")
def trust_rotate_online(
    ctx: typer.Context,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role", help="snapshot, timestamp or director (repeatable; default: all three)."
        ),
    ] = None,
    offline_dir: OfflineDir = None,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Replace the server's online keys and sign the root naming the new ones (admin).

    Devices follow the new root without re-enrolling; the old keys stop counting."""
    out = offline.rotate_online(
        client(ctx),
        _directory(offline_dir),
        _passphrase(passphrase_env),
        role or ("snapshot", "timestamp", "director"),
    )
    _emit(
        as_json,
        {"root_version": out.version, "online_keys_changed": out.online_changed},
        f"root version {out.version}; new online keys for "
        f"{', '.join(out.online_changed) or 'no role'}",
    )


@trust_app.command("rotate-root")
def trust_rotate_root(
    ctx: typer.Context,
    add_key: Annotated[
        int, typer.Option("--add-key", count=True, help="Make a new root key (repeatable).")
    ] = 0,
    remove_key: Annotated[
        list[str] | None,
        typer.Option("--remove-key", metavar="KEYID", help="Drop a root key (repeatable)."),
    ] = None,
    threshold: Annotated[
        int | None, typer.Option("--threshold", min=1, help="New root threshold.")
    ] = None,
    rotate_online: Annotated[
        bool,
        typer.Option(
            "--rotate-online",
            help="Vouch for the online keys the server holds now (after they were replaced).",
        ),
    ] = False,
    offline_dir: OfflineDir = None,
    passphrase_env: PassphraseEnv = None,
    as_json: Json = False,
) -> None:
    """Sign and upload the next root; devices follow it without re-enrolling (admin)."""
    out = offline.rotate_root(
        client(ctx),
        _directory(offline_dir),
        _passphrase(passphrase_env),
        add_keys=add_key,
        remove_keyids=remove_key or (),
        threshold=threshold,
        rotate_online=rotate_online,
    )
    _emit(
        as_json,
        {
            "root_version": out.version,
            "root_keyids": out.root_keyids,
            "root_threshold": out.threshold,
            "signed_by": out.signed_by,
            "added": out.added,
            "online_keys_changed": out.online_changed,
        },
        f"root version {out.version}",
    )


@trust_app.command("status")
def trust_status(
    ctx: typer.Context,
    offline_dir: OfflineDir = None,
    local: Annotated[
        bool, typer.Option("--local", help="Only the offline directory; do not ask the server.")
    ] = False,
    as_json: Json = False,
) -> None:
    """What the offline directory last signed, and what the server holds."""
    directory = _directory(offline_dir)
    if not (directory / "metadata").is_dir():
        raise NotFound(f"{directory} holds no root of trust; run `farpoint trust init`")
    status = offline.offline_status(directory, None if local else client(ctx))
    if as_json:
        render.emit_json(status)
        return
    root, targets = status["root"], status["targets"]
    render.fields(
        f"root of trust in {status['offline_dir']}",
        [
            ("root version", f"{root['version']} (expires {root['expires']})"),
            ("root threshold", f"{root['threshold']} of {len(root['keys'])}"),
            *((f"root key {k['file'] or '(not here)'}", k["keyid"]) for k in root["keys"]),
            ("targets version", f"{targets['version']} (expires {targets['expires']})"),
            ("trust files", targets["trust_files"]),
            (
                "release managers",
                f"{len(targets['releases_keyids'])} keys, threshold "
                f"{targets['releases_threshold']}",
            ),
        ],
    )
    render.table(
        ["key id", "user", "roles"],
        ((kid, b["user"], b["roles"]) for kid, b in status["bindings"].items()),
        title="bindings",
    )
    if "server" in status:
        render.console.print("server: " + json.dumps(status["server"], sort_keys=True))
