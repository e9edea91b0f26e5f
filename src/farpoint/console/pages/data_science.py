"""The data scientist's view: datasets with their quality and column roles, evaluations,
fairness. Each dataset links to its page (pages/dataset_detail.py)."""

from __future__ import annotations

from dataclasses import dataclass

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.pages.dataset_columns import plural
from farpoint.console.session import Api
from farpoint.console.widgets import (
    empty_state,
    human_bytes,
    live,
    num,
    pass_mark,
    role_chips,
    section,
    short,
    stamp,
    table,
)
from farpoint.sdk import Client
from farpoint.wire.datasets import DatasetOut, DatasetVersionOut
from farpoint.wire.evaluations import EvaluationOut

__all__ = ["register"]

_SHOWN = 50
"""Datasets and evaluations drawn at most; the CLI lists the rest."""


@dataclass
class _Board:
    datasets: list[tuple[DatasetOut, DatasetVersionOut]]
    """Each dataset with its latest version."""
    evaluations: list[EvaluationOut]


def _load(client: Client) -> _Board:
    latest: list[tuple[DatasetOut, DatasetVersionOut]] = []
    datasets = sorted(client.list_datasets(), key=lambda d: d.created_at, reverse=True)
    for dataset in datasets[:_SHOWN]:
        if dataset.latest_version:
            latest.append(
                (dataset, client.get_dataset_version(dataset.name, dataset.latest_version))
            )
    evaluations = sorted(client.list_evaluations(), key=lambda e: e.id, reverse=True)
    return _Board(latest, evaluations[:_SHOWN])


def _draw(board: _Board) -> None:
    section("Datasets", "latest version of each; open one for its quality, profile and lineage")
    if not board.datasets:
        empty_state(
            "No datasets yet: upload a CSV or Parquet file and say what each column is.",
            "farpoint dataset upload NAME data.csv --role label=LABEL_COLUMN "
            "--role protected=SEX_COLUMN --role pii=NAME_COLUMN",
        )
    for dataset, version in board.datasets:
        _dataset_card(dataset, version)

    section("Evaluations", "newest first; each gate against its threshold")
    if not board.evaluations:
        empty_state(
            "No evaluations yet: evaluate a model version on a held-out dataset version.",
            "farpoint evaluate --model MODEL@1 --dataset DATASET@1 --policy POLICY",
        )
    for evaluation in board.evaluations:
        _evaluation_card(evaluation)


def _governance(dataset: DatasetOut, version: DatasetVersionOut) -> None:
    """Quality, pending reviews, retention: what needs the data scientist's attention."""
    q = version.quality
    with ui.row().classes("gap-1 items-center"):
        if q is None:
            ui.badge("no quality report", color="grey-6").classes("quality-badge")
        elif not q.passed or q.errors:
            ui.badge(f"quality: {plural(q.errors, 'error')}", color="negative").classes(
                "quality-badge"
            )
        elif q.warnings:
            ui.badge(f"quality: {plural(q.warnings, 'warning')}", color="orange-8").classes(
                "quality-badge"
            )
        else:
            ui.badge("quality passed", color="positive").classes("quality-badge")
        pending = len(version.pending_classification)
        if pending:
            ui.badge(f"{pending} to review", color="orange-8").classes("pending-badge").tooltip(
                "Columns proposed as PII, protected or identifiers: "
                + ", ".join(version.pending_classification)
            )
    retention = (
        "no retention period"
        if dataset.retention_days is None
        else f"rows expire {plural(dataset.retention_days, 'day')} after registration"
    )
    if not version.rows_available:
        retention = f"rows purged ({version.purge_reason or 'purged'})"
    ui.label(retention).classes("text-caption text-grey-7 retention")


def _dataset_card(dataset: DatasetOut, version: DatasetVersionOut) -> None:
    with (
        ui.card().props("flat bordered").classes("w-full dataset-card"),
        ui.row().classes("w-full items-start justify-between no-wrap gap-6"),
    ):
        with ui.column().classes("gap-1 min-w-[16rem]"):
            ui.link(version.dataset, f"/datasets/{version.dataset}").classes(
                "text-subtitle1 text-weight-bold dataset-name dataset-link"
            )
            ui.label(
                f"version {version.version} · {version.row_count:,} rows · "
                f"{len(version.columns)} columns · {human_bytes(version.size_bytes)}"
            ).classes("text-body2")
            ui.label(short(version.digest)).classes("text-caption font-mono text-grey-8")
            ui.label(
                f"from {version.source_filename} by {version.created_by}, "
                f"{stamp(version.created_at)}"
            ).classes("text-caption text-grey-7")
            _governance(dataset, version)
        roles = {column: str(role) for column, role in version.roles.items()}
        for column in version.columns:
            roles.setdefault(column.name, "no role")
        with ui.column().classes("gap-1 grow"):
            ui.label("Column roles").classes("text-caption text-weight-medium text-grey-8")
            role_chips(roles)


def _evaluation_card(evaluation: EvaluationOut) -> None:
    verdict = "passed" if evaluation.passed else "failed"
    colour = "positive" if evaluation.passed else "negative"
    with ui.card().props("flat bordered").classes("w-full"):
        with ui.row().classes("items-center gap-3"):
            ui.badge(verdict.upper(), color=colour).classes("text-sm px-2")
            ui.label(f"#{evaluation.id} {evaluation.model}").classes(
                "text-subtitle1 text-weight-bold"
            )
            ui.label(
                f"on {evaluation.dataset} · policy {evaluation.policy} · "
                f"by {evaluation.created_by}, {stamp(evaluation.created_at)}"
            ).classes("text-body2 text-grey-8")
        table(
            [
                ("mark", ""),
                ("gate", "Gate"),
                ("metric", "Metric"),
                ("value", "Value"),
                ("threshold", "Threshold"),
                ("reason", "Why"),
            ],
            [
                {
                    "mark": pass_mark(gate.passed),
                    "gate": gate.name,
                    "metric": gate.metric,
                    "value": num(gate.value),
                    "threshold": f"{gate.op} {num(gate.threshold)}",
                    "reason": gate.reason,
                }
                for gate in evaluation.gates
            ],
            key="gate",
        )
        if evaluation.metrics:
            with ui.row().classes("gap-2 items-center"):
                ui.label("Metrics").classes("text-caption text-weight-medium text-grey-8")
                for name, value in sorted(evaluation.metrics.items()):
                    ui.chip(f"{name} {num(value)}").props("dense outline square")
        for column, groups in sorted(evaluation.group_metrics.items()):
            metrics = sorted({m for values in groups.values() for m in values})
            ui.label(f"Fairness by {column}").classes("text-caption text-weight-medium mt-2")
            table(
                [("group", column), *((m, m) for m in metrics)],
                [
                    {"group": group, **{m: num(values.get(m)) for m in metrics}}
                    for group, values in sorted(groups.items())
                ],
                key="group",
            )


def register() -> None:
    @ui.page("/data-science", title="Data science · Farpoint", response_timeout=30)
    async def data_science(request: Request) -> Response | None:
        api = await open_view(request, "data-scientist")
        if not isinstance(api, Api):
            return api
        await live(api, _load, _draw)
        ui.button("Refresh", icon="refresh", on_click=lambda: ui.navigate.reload()).props(
            "flat dense"
        ).classes("mt-4")
        return None
