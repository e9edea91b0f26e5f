"""The MLOps engineer's view: gates per model version, signed releases, rollouts."""

from __future__ import annotations

from dataclasses import dataclass

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.pages.ai_engineering import all_model_versions
from farpoint.console.pages.rollout import PHASE_COLOURS, STATE_COLOURS
from farpoint.console.session import Api
from farpoint.console.widgets import empty_state, live, num, pass_mark, section, short, stamp
from farpoint.console.widgets import table as plain_table
from farpoint.sdk import Client
from farpoint.wire.evaluations import EvaluationOut
from farpoint.wire.models import ModelVersionOut
from farpoint.wire.releases import ReleaseOut
from farpoint.wire.rollouts import RolloutSummary

__all__ = ["register"]


@dataclass
class _Board:
    versions: list[ModelVersionOut]
    latest_evaluation: dict[str, EvaluationOut]
    releases: list[ReleaseOut]


def _load(client: Client) -> _Board:
    latest: dict[str, EvaluationOut] = {}
    for evaluation in sorted(client.list_evaluations(), key=lambda e: e.id):
        latest[evaluation.model] = evaluation
    releases = sorted(client.list_releases(), key=lambda r: r.id, reverse=True)
    return _Board(all_model_versions(client), latest, releases)


def _gates_text(evaluation: EvaluationOut | None) -> str:
    if evaluation is None:
        return "not evaluated"
    return "   ".join(
        f"{pass_mark(g.passed)} {g.metric} {num(g.value)} {g.op} {num(g.threshold)}"
        for g in evaluation.gates
    )


def _draw(board: _Board) -> None:
    section("Gates", "each model version's latest evaluation")
    if not board.versions:
        empty_state(
            "No model versions yet: a data scientist or AI engineer registers them "
            "from the SDK; then evaluate one against a policy.",
            "farpoint policy create POLICY gates.yaml\n"
            "farpoint evaluate --model MODEL@1 --dataset DATASET@1 --policy POLICY",
        )
    else:
        rows = []
        for version in board.versions:
            evaluation = board.latest_evaluation.get(version.ref)
            rows.append(
                {
                    "ref": version.ref,
                    "status": version.status,
                    "verdict": "—" if evaluation is None else pass_mark(evaluation.passed),
                    "evaluation": "—" if evaluation is None else f"#{evaluation.id}",
                    "policy": "—" if evaluation is None else evaluation.policy,
                    "gates": _gates_text(evaluation),
                }
            )
        plain_table(
            [
                ("ref", "Model version"),
                ("status", "Status"),
                ("verdict", "Passed"),
                ("evaluation", "Evaluation"),
                ("policy", "Policy"),
                ("gates", "Gates (value vs threshold)"),
            ],
            rows,
            key="ref",
        )

    section("Releases", "signed by the server's key; newest first")
    if not board.releases:
        empty_state(
            "No releases yet: release a model version that passed its evaluation.",
            "farpoint release create --model MODEL@1",
        )
    else:
        plain_table(
            [
                ("id", "Release"),
                ("model", "Model version"),
                ("evaluation", "Evaluation"),
                ("manifest", "Manifest digest"),
                ("key", "Signer key id"),
                ("created", "Created"),
            ],
            [
                {
                    "id": r.id,
                    "model": r.model_ref,
                    "evaluation": f"#{r.evaluation_id}",
                    "manifest": short(r.manifest_digest),
                    "key": short(r.key_id, 16),
                    "created": f"{stamp(r.created_at)} by {r.created_by}",
                }
                for r in board.releases
            ],
            key="id",
        )
        with ui.row().classes("gap-3 items-center"):
            ui.label("Chain of custody:").classes("text-caption text-grey-8")
            for r in board.releases[:20]:
                ui.link(f"release {r.id}", f"/releases/{r.id}").classes("text-caption")


def _draw_rollouts(rollouts: list[RolloutSummary]) -> None:
    if not rollouts:
        empty_state(
            "No rollouts yet: deliver a release to a fleet.",
            "farpoint fleet create FLEET --selector site=SITE\n"
            "farpoint rollout create --fleet FLEET --release RELEASE_ID --wait",
        )
        return
    for rollout in sorted(rollouts, key=lambda r: r.id, reverse=True)[:30]:
        _rollout_card(rollout)


def _rollout_card(rollout: RolloutSummary) -> None:
    total = sum(rollout.progress.values())
    active = rollout.progress.get("active", 0)
    with ui.card().props("flat bordered").classes("w-full gap-2 rollout-card"):
        with ui.row().classes("items-center gap-3"):
            ui.badge(rollout.state, color=STATE_COLOURS.get(rollout.state, "grey-6"))
            ui.link(f"Rollout #{rollout.id}", f"/rollouts/{rollout.id}").classes(
                "text-subtitle1 text-weight-bold rollout-link"
            )
            before = (
                "nothing"
                if rollout.from_release_id is None
                else f"release {rollout.from_release_id}"
            )
            ui.label(
                f"{rollout.model}: {before} → release {rollout.to_release_id} on fleet "
                f"{rollout.fleet} · {rollout.strategy} · started {stamp(rollout.created_at)}"
            ).classes("text-body2 text-grey-8")
        ui.linear_progress(
            value=(active / total) if total else 0.0, show_value=False, size="10px"
        ).props("rounded color=positive track-color=grey-3")
        with ui.row().classes("gap-2 items-center"):
            ui.label(f"{active} of {total} devices active").classes("text-caption")
            if rollout.batches:
                done = sum(1 for b in rollout.batches if b.state == "succeeded")
                ui.label(f"· {done} of {len(rollout.batches)} batches done").classes("text-caption")
            for phase, count in sorted(rollout.progress.items()):
                if count:
                    ui.chip(
                        f"{phase} {count}",
                        color=PHASE_COLOURS.get(phase, "grey-6"),
                        text_color="white",
                    ).props("dense square")
        for why in (rollout.paused_reason, rollout.reason):
            if why:
                ui.label(why).classes("text-caption text-negative")


def register() -> None:
    @ui.page("/mlops", title="MLOps · Farpoint", response_timeout=30)
    async def mlops(request: Request) -> Response | None:
        api = await open_view(request, "mlops-engineer")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw, every=15.0)
        section("Rollouts", "live; refreshes every 3 s")
        await live(api, lambda client: client.list_rollouts(), _draw_rollouts, every=3.0)
        return None
