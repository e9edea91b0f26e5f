"""`farpoint demo`: from a CSV to a model served on simulated edge devices.

Starts the control plane on the embedded default and N real agent processes on loopback,
then walks the bedside-gateway scenario through the public HTTP API: data, training run,
model version, evaluation gate, release, enrollment, rollout, local predictions.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from farpoint.examples.processes import (
    Child,
    farpoint_command,
    start_agent,
    start_server,
    stop_all,
)

__all__ = ["DemoResult", "register", "run_demo"]

ROLE_USERS = {
    "data-scientist": "dana",
    "ai-engineer": "aiden",
    "mlops-engineer": "mo",
    "app-developer": "ava",
    "it-ops": "ito",
    "business": "bea",
}
MODEL = "deterioration"
HEALTH_WINDOW_S = 3
"""Each device watches a new release this long (errors, latency, crashes) before it counts
as healthy; a real fleet would use minutes."""
SLOW_BUDGET_MS = 0.001
"""The single-row latency budget of the demo's second release: no gateway meets it."""
REVIEWER = "sam"
"""A second data scientist: approvals must come from someone other than the author."""


@dataclass
class DemoResult:
    base_url: str = ""
    stages: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    devices: list[dict[str, Any]] = field(default_factory=list)
    release: int | None = None
    model_ref: str = ""
    evaluation: dict[str, Any] = field(default_factory=dict)
    lead_time_s: float = 0.0
    max_prob_diff_vs_sklearn: float | None = None
    rows_compared: int = 0
    trace_links: int = 0
    trace_signatures: int = 0
    trace_verified: bool = False
    guard: dict[str, Any] = field(default_factory=dict)

    @property
    def devices_serving(self) -> int:
        return sum(1 for d in self.devices if d.get("serving_release") == self.release)

    def summary(self) -> dict[str, Any]:
        return {
            "lead_time_s": round(self.lead_time_s, 3),
            "devices": len(self.devices),
            "devices_serving": self.devices_serving,
            "release": self.release,
            "model": self.model_ref,
            "stages_s": {k: round(v, 3) for k, v in self.stages.items()},
            "evaluation_passed": self.evaluation.get("passed"),
            "metrics": self.evaluation.get("metrics", {}),
            "rows_compared_with_sklearn": self.rows_compared,
            "trace": {
                "links": self.trace_links,
                "signatures": self.trace_signatures,
                "verified": self.trace_verified,
            },
            "max_prob_diff_vs_sklearn": self.max_prob_diff_vs_sklearn,
            "guard": self.guard,
            "server": self.base_url,
        }


class Reporter:
    """Prints each stage with its duration (to stderr when stdout carries JSON)."""

    def __init__(self, quiet_stdout: bool) -> None:
        from rich.console import Console

        self.console = Console(stderr=quiet_stdout, highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        self.console.print(text)

    @contextmanager
    def stage(self, result: DemoResult, name: str, title: str) -> Iterator[None]:
        self.console.print(f"[bold cyan]▶ {title}[/]")
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        result.stages[name] = took
        self.console.print(f"  [green]✓[/] {title} [dim]({took:.2f} s)[/]")


def _sdk(base_url: str, token: str) -> Any:
    from farpoint.sdk import Client

    return Client(base_url, token, timeout=120)


def run_demo(
    home: Path,
    devices: int,
    report: Reporter,
    *,
    keep_running: Callable[[DemoResult, list[Child]], None] | None = None,
    sex_bias: float = 0.0,
) -> DemoResult:
    """Run the whole scenario; children are stopped before this returns."""
    from farpoint.examples import vitals

    _fresh_demo_dir(home)
    result = DemoResult()
    children: list[Child] = []
    env = dict(os.environ)
    env["FARPOINT_HOME"] = str(home / "server")
    try:
        with report.stage(result, "server", "Start the control plane (SQLite + local blobs)"):
            admin = _admin_init(env)
            server, base_url = start_server(home / "server", env)
            children.append(server)
            result.base_url = base_url
            report.note(f"  server at {base_url}, state in {home / 'server'}")
            admin_client = _sdk(base_url, admin)
            admin_client.create_team("ward-analytics")
            for role, user in ROLE_USERS.items():
                admin_client.create_user(user, [role], teams=["ward-analytics"])
                result.tokens[role] = admin_client.create_token(user, description="demo").token
            admin_client.create_user(REVIEWER, ["data-scientist"], teams=["ward-analytics"])
            reviewer_token = admin_client.create_token(REVIEWER, description="demo").token
            result.tokens["admin"] = admin
        ds = _sdk(base_url, result.tokens["data-scientist"])
        reviewer = _sdk(base_url, reviewer_token)
        mlops = _sdk(base_url, result.tokens["mlops-engineer"])
        itops = _sdk(base_url, result.tokens["it-ops"])
        # Each person's signing key stays on "their machine": a directory of their own here.
        signing = {
            who: _signing_key(client, home / "keys" / who)
            for who, client in (("dana", ds), (REVIEWER, reviewer), ("mo", mlops))
        }
        with report.stage(result, "trust", "Create the offline root of trust; bind people's keys"):
            root = _init_trust(admin_client, home / "offline", signing)
            report.note(
                "  root (2 of 3 keys) and targets keys made offline in "
                f"{home / 'offline'} (development only: keep them off the server)"
            )
            report.note(f"  bound: dana and {REVIEWER} as data-scientist, mo as mlops-engineer")

        lead_start = time.perf_counter()
        with report.stage(result, "data", "Generate 20,000 rows of vital signs and register them"):
            frame = vitals.generate(n_rows=20_000, seed=7, sex_bias=sex_bias)
            train, holdout = vitals.split(frame, holdout_fraction=0.2, seed=7)
            data_dir = home / "data"
            data_dir.mkdir()
            train.to_csv(data_dir / "vitals.csv", index=False)
            holdout.to_csv(data_dir / "vitals-holdout.csv", index=False)
            v_train = ds.upload_dataset(
                "vitals", data_dir / "vitals.csv", roles=vitals.COLUMN_ROLES, team="ward-analytics"
            )
            v_hold = ds.upload_dataset(
                "vitals-holdout",
                data_dir / "vitals-holdout.csv",
                roles=vitals.COLUMN_ROLES,
                team="ward-analytics",
            )
            roles = ", ".join(f"{c}={r}" for c, r in v_train.roles.items())
            report.note(f"  {v_train.ref}: {v_train.row_count} rows, {v_train.digest[:19]}…")
            report.note(f"  {v_hold.ref}: {v_hold.row_count} rows (held out for evaluation)")
            report.note(f"  column roles: {escape(roles)}")
            _note_governance(report, ds, v_train)

        with report.stage(result, "train", "Train on the registered data, record the run"):
            registered = ds.load_dataset(v_train.ref)
            started = time.perf_counter()
            model = vitals.train_model(registered, seed=7)
            from sklearn.metrics import roc_auc_score

            train_auc = float(
                roc_auc_score(
                    registered[vitals.LABEL], model.predict_proba(registered[vitals.FEATURES])[:, 1]
                )
            )
            run = ds.log_run(
                name="logreg-baseline",
                params={"estimator": "LogisticRegression", "max_iter": 1000, "seed": 7},
                metrics={"train_roc_auc": train_auc, "fit_s": time.perf_counter() - started},
                datasets=[v_train.ref],
            )
            report.note(f"  run {run.id}: train ROC AUC {train_auc:.3f}")

        with report.stage(result, "register", "Convert to ONNX, check parity, register"):
            from farpoint.ml.policy import DEFAULT_POLICY_YAML

            policy = mlops.create_policy("ward-default", DEFAULT_POLICY_YAML)
            mv = ds.register_sklearn_model(
                MODEL,
                model,
                registered,
                vitals.FEATURES,
                run_id=run.id,
                label_column=vitals.LABEL,
                policy=policy.ref,
            )
            result.model_ref = mv.ref
            report.note(
                f"  {mv.ref}: {mv.size_bytes} bytes, parity max |Δp| "
                f"{mv.parity.get('max_abs_prob_diff', float('nan')):.2e}"
            )
            report.note(
                f"  inputs checked against {v_train.ref} under {mv.data_policy}'s data rules "
                "(no PII, unreviewed or protected column; no blocking quality failure)"
            )

        with report.stage(result, "evaluate", "Evaluate on held-out data against the policy"):
            evaluation = ds.evaluate(mv.ref, v_hold.ref, policy.ref)
            result.evaluation = evaluation.model_dump(mode="json")
            for gate in evaluation.gates:
                mark = "[green]✓[/]" if gate.passed else "[red]✗[/]"
                report.note(f"  {mark} {escape(gate.reason)}")
            if not evaluation.passed:
                raise DemoFailed("the model failed its evaluation gates; nothing to release")

        with report.stage(result, "attest", "Sign attestations: data, training, evaluation"):
            for ref in (v_train.ref, v_hold.ref):
                ds.attest_dataset(ref, signing["dana"])
            ds.attest_training(mv.ref, signing["dana"])
            ds.attest_evaluation(evaluation.id, signing["dana"])
            report.note("  dana signed 4 in-toto statements with her own key (DSSE, P-256)")

        with report.stage(result, "release", "Release: two reviewers approve, a manager publishes"):
            release = mlops.create_release(mv.ref, evaluation_id=evaluation.id)
            result.release = release.id
            reviewer.approve(release_id=release.id, role="data-scientist", key=signing[REVIEWER])
            mlops.approve(release_id=release.id, role="mlops-engineer", key=signing["mo"])
            from farpoint.sdk.publish import publish_release

            publish_release(mlops, release.id, signing["mo"], root=root)
            report.note(
                f"  release {release.id}: manifest {release.manifest_digest[:19]}…, "
                f"approved by {REVIEWER} and mo; published to the image repository by mo"
            )

        with report.stage(result, "enroll", f"Enroll {devices} devices and start their agents"):
            agent_dirs = _enroll_devices(itops, base_url, home / "devices", devices)
            with ThreadPoolExecutor(max_workers=8) as pool:
                started_agents = list(pool.map(start_agent, agent_dirs))
            for (child, port), state_dir in zip(started_agents, agent_dirs, strict=True):
                children.append(child)
                child.extra["port"] = str(port)
                child.extra["state_dir"] = str(state_dir)

        with report.stage(result, "rollout", "Roll out: one canary ward first, then the rest"):
            itops.create_fleet("all-wards", {"site": "general-hospital"})
            rollout = mlops.create_rollout(
                "all-wards", release.id, **_canary_first(devices, HEALTH_WINDOW_S)
            )
            final = mlops.wait_rollout(rollout.id, timeout_s=300, poll_s=0.2)
            if final.state != "succeeded":
                raise DemoFailed(f"rollout {final.id} ended {final.state}: {final.progress}")
            for batch in final.batches:
                which = "canary" if batch.index == 0 and len(final.batches) > 1 else "then"
                report.note(
                    f"  {which} (batch {batch.index}): {batch.healthy} of {batch.size} device(s) "
                    f"serving, healthy through a {HEALTH_WINDOW_S} s health window"
                )
        result.lead_time_s = time.perf_counter() - lead_start

        if devices > 1:
            with report.stage(
                result, "guard", "A release too slow for the gateways: the canary stops it"
            ):
                result.guard = _guarded_rollout(
                    mlops, reviewer, signing, root, mv.ref, evaluation.id, devices, report
                )

        with report.stage(result, "verify", "Check every device's predictions"):
            result.devices, diff, rows = _check_devices(
                children, holdout, model, release.id, vitals.FEATURES
            )
            result.max_prob_diff_vs_sklearn = diff
            result.rows_compared = rows
            chain = mlops.trace_device(result.devices[0]["name"])
            checks = mlops.verify_trace(chain)
            result.trace_links = len(checks)
            result.trace_signatures = sum(len(c.checks) for c in checks)
            result.trace_verified = all(c.ok for c in checks)
            report.note(
                f"  trace {result.devices[0]['name']}: {result.trace_links} links, "
                f"{result.trace_signatures} signatures, "
                f"{'all verify' if result.trace_verified else 'NOT ALL VERIFY'}"
            )
            if not result.trace_verified:
                raise DemoFailed("the chain of custody does not verify")
        if keep_running is not None:
            keep_running(result, children)
        return result
    finally:
        stop_all(children)


def _canary_first(devices: int, window_s: int) -> dict[str, Any]:
    """Rollout settings: one canary device, then every other one (one batch)."""
    health = {"window_s": window_s, "min_requests": 20}
    if devices < 2:
        return {"health": health}
    return {
        "strategy": "canary",
        "canary": {"count": 1},
        "batches": {"count": 1},
        "health": health,
    }


def _guarded_rollout(
    mlops: Any,
    reviewer: Any,
    signing: dict[str, Any],
    root: bytes,
    model_ref: str,
    evaluation_id: int,
    devices: int,
    report: Reporter,
) -> dict[str, Any]:
    """Release the same model with a latency budget no gateway meets; roll it out canary
    first: the canary's self-test refuses it, the rollout rolls back, the rest never see it."""
    from farpoint.sdk.publish import publish_release

    slow = mlops.create_release(
        model_ref, evaluation_id=evaluation_id, latency_budget_ms={"default": SLOW_BUDGET_MS}
    )
    reviewer.approve(release_id=slow.id, role="data-scientist", key=signing[REVIEWER])
    mlops.approve(release_id=slow.id, role="mlops-engineer", key=signing["mo"])
    publish_release(mlops, slow.id, signing["mo"], root=root)
    rollout = mlops.create_rollout("all-wards", slow.id, **_canary_first(devices, HEALTH_WINDOW_S))
    final = mlops.wait_rollout(rollout.id, timeout_s=300, poll_s=0.2)
    canary = [d for d in final.devices if d.batch == 0]
    others = [d for d in final.devices if d.batch != 0]
    refused = [d for d in canary if d.phase == "failed"]
    untouched = [d for d in others if d.assigned_release_id != slow.id]
    if final.state not in ("failed", "rolled_back") or not refused:
        raise DemoFailed(
            f"rollout {final.id} of the too-slow release {slow.id} ended {final.state}: "
            f"{final.progress}"
        )
    for d in refused:
        report.note(f"  canary {d.device_name} refused release {slow.id}: {escape(d.error or '')}")
    report.note(
        f"  rollout {final.id} {final.state}; {len(untouched)} other device(s) never got "
        f"release {slow.id} and keep serving the release before it"
    )
    return {
        "release": slow.id,
        "rollout": final.id,
        "state": final.state,
        "canary_refused": len(refused),
        "others_untouched": len(untouched),
        "others": len(others),
    }


class DemoFailed(RuntimeError):
    pass


_MARKER = ".farpoint-demo"


def _fresh_demo_dir(home: Path) -> None:
    """Start from an empty directory; only ever delete one an earlier demo made."""
    if home.exists() and any(home.iterdir()):
        if not (home / _MARKER).exists():
            raise DemoFailed(f"{home} is not empty and was not made by the demo; choose --home")
        shutil.rmtree(home)
    home.mkdir(parents=True, exist_ok=True)
    (home / _MARKER).write_text("state of `farpoint demo`; deleted by the next demo run\n")


def _note_governance(report: Any, ds: Any, version: Any) -> None:
    """What the server checked on the data: contract, quality, proposed classification."""
    q = version.quality
    if q is not None:
        verdict = "passed" if q.passed else "FAILED"
        report.note(
            f"  quality: {verdict} ({q.errors} errors, {q.warnings} warnings) against contract "
            f"v{version.contract_version} (inferred from the first version; "
            f"farpoint dataset quality {version.ref})"
        )
    for f in ds.get_classification(version.ref).findings:
        given = version.roles.get(f.column)
        decision = {"accepted": "confirmed", "rejected": f"kept as {given}"}.get(f.status, f.status)
        report.note(
            f"  proposed {f.column} → {f.role} ({f.kind.replace('_', ' ')}, "
            f"{f.confidence:.2f}): {decision} by {f.reviewed_by or 'nobody yet'}"
        )


def _signing_key(client: Any, keys_dir: Path) -> Any:
    """Create and register a person's signing key, kept encrypted in their own directory."""
    import secrets

    client.keys_dir = keys_dir
    key = client.create_key("demo", secrets.token_urlsafe(16))
    client.register_key("demo")
    return key


def _init_trust(admin: Any, directory: Path, signing: dict[str, Any]) -> bytes:
    """`farpoint trust init` and `bind-key`, as an admin would run them offline."""
    import secrets

    from farpoint.core import keys
    from farpoint.sdk import offline

    passphrase = secrets.token_urlsafe(16).encode()
    offline.init(admin, directory, passphrase)
    for who, role in (
        ("dana", "data-scientist"),
        (REVIEWER, "data-scientist"),
        ("mo", "mlops-engineer"),
    ):
        offline.bind_key(admin, directory, passphrase, keys.key_id(signing[who].public_key()), role)
    return (directory / "metadata" / "1.root.json").read_bytes()


def _admin_init(env: dict[str, str]) -> str:
    import subprocess

    out = subprocess.run(
        farpoint_command("admin", "init", "--json"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise DemoFailed(f"admin init failed: {out.stderr.strip()}")
    token: str = json.loads(out.stdout)["token"]
    return token


def _enroll_devices(itops: Any, base_url: str, root: Path, count: int) -> list[Path]:
    import subprocess

    from farpoint.examples.vitals import WARDS

    def enroll(i: int) -> Path:
        ward = WARDS[i % len(WARDS)]
        token = itops.create_enrollment_token(
            labels={"site": "general-hospital", "ward": ward}, expires_in_s=3600
        ).token
        name = f"gw-{i + 1:03d}-{ward}"
        state = root / name
        out = subprocess.run(
            farpoint_command(
                "agent",
                "enroll",
                "--server",
                base_url,
                "--token",
                token,
                "--state-dir",
                str(state),
                "--name",
                name,
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            raise DemoFailed(f"enrolling device {i + 1} failed: {out.stderr.strip()}")
        return state

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(enroll, range(count)))


def _check_devices(
    children: list[Child], holdout: Any, model: Any, release_id: int, features: list[str]
) -> tuple[list[dict[str, Any]], float, int]:
    """Ask each device for predictions on held-out rows; compare with scikit-learn."""
    import httpx
    import numpy as np

    sample = holdout.head(200)
    rows = json.loads(sample[features].to_json(orient="records"))
    expected = model.predict_proba(sample[features])[:, 1]
    worst = 0.0
    out = []
    for child in children:
        if "port" not in child.extra:
            continue
        url = f"http://127.0.0.1:{child.extra['port']}/v1/models/{MODEL}:predict"
        r = httpx.post(url, json={"rows": rows}, timeout=30)
        r.raise_for_status()
        body = r.json()
        got = np.array([p["probabilities"]["1"] for p in body["predictions"]])
        worst = max(worst, float(np.max(np.abs(got - expected))))
        out.append(
            {
                "name": Path(child.extra["state_dir"]).name,
                "port": int(child.extra["port"]),
                "serving_release": body["release_id"],
                "predict_url": url,
            }
        )
    return out, worst, len(rows) * len(out)


def _print_summary(report: Reporter, result: DemoResult) -> None:
    c = report.console
    c.print()
    c.print(f"[bold]Lead time from raw data to every device serving: {result.lead_time_s:.1f} s[/]")
    c.print(
        f"{result.devices_serving} of {len(result.devices)} devices serve release "
        f"{result.release} ({result.model_ref}); predictions on {result.rows_compared} "
        f"held-out rows match scikit-learn within {result.max_prob_diff_vs_sklearn:.1e}"
    )
    c.print("Stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.stages.items()))
    if result.guard:
        g = result.guard
        c.print(
            f"A canary caught release {g['release']} (over its latency budget): rollout "
            f"{g['rollout']} {g['state']}, {g['others_untouched']} of {g['others']} other "
            f"devices never got it (see it: farpoint rollout show {g['rollout']})"
        )
    if result.devices:
        c.print(
            f"Chain of custody from {result.devices[0]['name']} back to the raw rows: "
            f"{result.trace_links} links, {result.trace_signatures} signatures verified here "
            f"(see it: farpoint trace {result.devices[0]['name']})"
        )
    c.print()
    c.print(f"[bold]Console[/] {result.base_url}/console — sign in with a role's token:")
    for role, token in result.tokens.items():
        c.print(f"  {role:15} {result.base_url}/console/login?token={token}")
    c.print()
    c.print(f"API docs: {result.base_url}/api/v1/docs")
    c.print(
        f"CLI as admin: export FARPOINT_URL={result.base_url} "
        f"FARPOINT_TOKEN={result.tokens.get('admin', '')}; .venv/bin/farpoint device list"
    )
    if result.devices:
        dev = result.devices[0]
        from farpoint.examples.vitals import FEATURES

        example = {f: v for f, v in zip(FEATURES, _example_row(), strict=True)}
        c.print()
        c.print(f"[bold]Ask a device[/] ({dev['name']}):")
        c.print(
            f"  curl -s -X POST {dev['predict_url']} -H 'Content-Type: application/json' "
            f"-d '{json.dumps({'rows': [example]})}'",
            soft_wrap=True,
        )


def _example_row() -> list[Any]:
    return [118.0, 26.0, 91.0, 38.4, 96.0, 71, "respiratory"]


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        devices: Annotated[int, typer.Option(min=1, max=500, help="Agents to start.")] = 5,
        exit_when_done: Annotated[
            bool, typer.Option("--exit", help="Exit when every device serves (no Ctrl-C wait).")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary.")] = False,
        home: Annotated[
            Path | None,
            typer.Option(help="Where the demo keeps its state (default: $FARPOINT_HOME/demo)."),
        ] = None,
    ) -> None:
        """Run the end-to-end demo: data → model → gate → release → devices serving.

        Exit codes: 0 every device serves the release; 1 a stage failed.
        """
        # SIGTERM stops the demo like Ctrl-C does, so its server and agents are stopped too.
        signal.signal(signal.SIGTERM, _interrupt)
        base = Path(os.environ.get("FARPOINT_HOME") or ".farpoint").resolve()
        where = (home or base / "demo").resolve()
        report = Reporter(quiet_stdout=as_json)
        report.note(f"[bold]Farpoint demo[/]: {devices} bedside gateways, state in {where}")

        def wait_for_ctrl_c(result: DemoResult, _children: list[Child]) -> None:
            _print_summary(report, result)
            if exit_when_done:
                return
            report.note("\n[bold]Running.[/] Press Ctrl-C to stop the server and the agents.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                report.note("stopping…")

        try:
            result = run_demo(where, devices, report, keep_running=wait_for_ctrl_c)
        except Exception as exc:  # the demo reports any failure and exits 1
            report.note(f"[red]demo failed:[/] {exc}")
            raise typer.Exit(1) from exc
        if as_json:
            sys.stdout.write(json.dumps(result.summary()) + "\n")
        if result.devices_serving != devices:
            raise typer.Exit(1)
