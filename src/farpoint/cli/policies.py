"""`farpoint policy ...` and `farpoint evaluate`: gates and whether a model passes them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.syntax import Syntax
from rich.text import Text

from farpoint.cli import render
from farpoint.cli.params import Json, check_ref
from farpoint.cli.session import client
from farpoint.wire.evaluations import EvaluationOut, GateResult

__all__ = ["evaluate", "policy_app"]

policy_app = typer.Typer(help="Versioned YAML policies of gates.", no_args_is_help=True)


@policy_app.command("create")
def policy_create(
    ctx: typer.Context,
    name: str,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The policy YAML.")],
    as_json: Json = False,
) -> None:
    """Store FILE as the next version of policy NAME."""
    policy = client(ctx).create_policy(name, file.read_text(encoding="utf-8"))
    if as_json:
        render.emit_json(policy)
        return
    render.console.print(f"created policy {policy.ref}", markup=False)


@policy_app.command("list")
def policy_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List policies."""
    policies = client(ctx).list_policies()
    if as_json:
        render.emit_json(policies)
        return
    render.table(
        ["ref", "name", "version", "by", "created"],
        ((p.ref, p.name, p.version, p.created_by, p.created_at) for p in policies),
        title="policies",
    )


@policy_app.command("show")
def policy_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.", callback=check_ref)],
    version: Annotated[int | None, typer.Option(help="A version; the latest otherwise.")] = None,
    as_json: Json = False,
) -> None:
    """Show a policy and its YAML."""
    policy = client(ctx).get_policy(name, version)
    if as_json:
        render.emit_json(policy)
        return
    render.fields(
        policy.ref,
        [("created", f"{render.when(policy.created_at)} by {policy.created_by}")],
        footer=Syntax(policy.yaml, "yaml", theme="ansi_dark", background_color="default"),
    )


def _gate_line(gate: GateResult) -> tuple[Text, str, str, str, str]:
    mark = Text(render.PASS, style="green") if gate.passed else Text(render.FAIL, style="red")
    value = "-" if gate.value is None else f"{gate.value:.4g}"
    return mark, gate.name, f"{gate.metric} {value}", f"{gate.op} {gate.threshold:g}", gate.reason


def _show_evaluation(ev: EvaluationOut) -> None:
    render.table(
        ["", "gate", "value", "threshold", "reason"],
        (_gate_line(g) for g in ev.gates),
        title=f"evaluation {ev.id}: {ev.model} on {ev.dataset} against {ev.policy}",
    )
    if ev.metrics:
        render.table(["metric", "value"], sorted(ev.metrics.items()), title="metrics")
    failed = [g.name for g in ev.gates if not g.passed]
    if ev.passed:
        render.console.print(Text(f"{render.PASS} passed: every gate holds", style="green"))
    else:
        what = ", ".join(failed) if failed else "the evaluation"
        render.console.print(Text(f"{render.FAIL} failed: {what}", style="red"))


def evaluate(
    ctx: typer.Context,
    model: Annotated[
        str, typer.Option("--model", help="Model version, NAME@VERSION.", callback=check_ref)
    ],
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset", help="Held-out dataset version, NAME@VERSION.", callback=check_ref
        ),
    ],
    policy: Annotated[
        str,
        typer.Option("--policy", help="Policy, NAME (latest) or NAME@VERSION.", callback=check_ref),
    ],
    as_json: Json = False,
) -> None:
    """Evaluate a model version on a dataset against a policy's gates.

    Exit codes, so CI pipelines can use it as a step:

    0  every gate passed

    1  a gate failed, or the server refused the request

    2  the server cannot be reached (or the command line is wrong)
    """
    ev = client(ctx).evaluate(model, dataset, policy)
    if as_json:
        render.emit_json(ev)
    else:
        _show_evaluation(ev)
    if not ev.passed:
        raise typer.Exit(1)
