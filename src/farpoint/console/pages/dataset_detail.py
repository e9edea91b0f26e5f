"""One dataset version for the data scientist: what it is, what its quality is, what its
columns look like, which columns hold personal data, its contract, how it moved since the
previous version, and where it came from and went."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nicegui import ui
from starlette.requests import Request
from starlette.responses import Response

from farpoint.console.layout import open_view
from farpoint.console.pages.dataset_columns import (
    drift_section,
    plural,
    profile_section,
    quality_section,
)
from farpoint.console.session import Api
from farpoint.console.widgets import (
    ROLE_COLOURS,
    code_block,
    empty_state,
    human_bytes,
    section,
    stamp,
)
from farpoint.core.errors import FarpointError, NotFound
from farpoint.sdk import Client
from farpoint.wire.datasets import (
    ClassificationOut,
    ColumnFinding,
    ContractOut,
    DatasetOut,
    DatasetVersionOut,
    LineageOut,
    QualityOut,
    VersionComparison,
)

__all__ = ["register"]

_REVIEWERS = frozenset({"data-scientist"})


@dataclass
class _Detail:
    """Everything the page shows about one version, fetched in one worker thread."""

    dataset: DatasetOut
    versions: list[DatasetVersionOut]
    version: DatasetVersionOut
    quality: QualityOut | None = None
    profile: dict[str, Any] | None = None
    classification: ClassificationOut | None = None
    contract: ContractOut | None = None
    comparison: VersionComparison | None = None
    lineage: LineageOut | None = None
    problems: dict[str, str] = field(default_factory=dict)
    """Why a block is missing (a version older than quality reports, purged rows...)."""


def _load(name: str, number: int | None) -> Callable[[Client], _Detail]:
    def load(client: Client) -> _Detail:
        versions = sorted(client.list_dataset_versions(name), key=lambda v: v.version)
        if not versions:
            raise NotFound(f"dataset {name!r} has no versions yet")
        chosen = next((v for v in versions if v.version == number), None)
        if number is not None and chosen is None:
            raise NotFound(f"dataset {name!r} has no version {number}")
        version = chosen or versions[-1]
        detail = _Detail(client.get_dataset(name), versions, version)
        ref = version.ref
        previous = [v.version for v in versions if v.version < version.version]
        parts: dict[str, Callable[[], Any]] = {
            "quality": lambda: client.get_quality(ref),
            "profile": lambda: client.get_profile(ref),
            "classification": lambda: client.get_classification(ref),
            "contract": lambda: client.get_contract(name, version.contract_version),
            "lineage": lambda: client.dataset_lineage(ref),
        }
        if previous:
            parts["comparison"] = lambda: client.compare_dataset_versions(
                name, previous[-1], version.version
            )
        for key, fetch in parts.items():
            # One block that cannot be shown (purged rows, an old version) must not hide
            # the others: its reason is drawn in its place.
            try:
                setattr(detail, key, fetch())
            except FarpointError as exc:
                detail.problems[key] = exc.detail
        return detail

    return load


# -- header --------------------------------------------------------------------------------


def _quality_badge(v: DatasetVersionOut) -> None:
    q = v.quality
    if q is None:
        ui.badge("no quality report", color="grey-6").classes("quality-badge")
        return
    text = f"{plural(q.errors, 'error')} · {plural(q.warnings, 'warning')}"
    if not q.passed or q.errors:
        ui.badge(f"quality failed · {text}", color="negative").classes("quality-badge")
    elif q.warnings:
        ui.badge(f"quality passed · {text}", color="orange-8").classes("quality-badge")
    else:
        ui.badge("quality passed", color="positive").classes("quality-badge")


def _stored_rows(v: DatasetVersionOut) -> str:
    if not v.rows_available:
        return (
            f"purged {stamp(v.purged_at)} ({v.purge_reason or 'purged'}): the digest, "
            "profile and lineage stay on record"
        )
    text = "stored"
    if v.expires_at is not None:
        text += f", expire {stamp(v.expires_at)}"
    if v.erased_rows:
        text += (
            f"; {v.erased_rows:,} rows erased since registration, so the stored rows no "
            "longer match the digest"
        )
    return text


def _facts(d: _Detail) -> None:
    v = d.version
    transform = dict(v.transform or {})
    kind = transform.pop("kind", None)
    rows: list[tuple[str, str]] = [
        ("Digest", v.digest),
        ("Rows", f"{v.row_count:,} rows · {len(v.columns)} columns · {human_bytes(v.size_bytes)}"),
        ("Source", f"{v.source_filename} ({v.source_format}), by {v.created_by}, "
                   f"{stamp(v.created_at)}"),
        ("Stored rows", _stored_rows(v)),
        ("Retention", "no retention period" if d.dataset.retention_days is None
                      else f"{plural(d.dataset.retention_days, 'day')} after registration"),
        ("Contract", "—" if v.contract_version is None
                     else f"validated against contract version {v.contract_version}"),
    ]  # fmt: skip
    with ui.grid(columns="auto 1fr").classes("gap-x-6 gap-y-1 items-baseline dataset-facts"):
        for key, value in rows:
            ui.label(key).classes("text-caption text-weight-medium text-grey-8")
            ui.label(value).classes("text-body2" + (" font-mono" if key == "Digest" else ""))
        if v.parent:
            ui.label("Derived from").classes("text-caption text-weight-medium text-grey-8")
            with ui.row().classes("gap-2 items-baseline"):
                _version_link(v.parent)
                detail = ", ".join(f"{k} {_plain(x)}" for k, x in transform.items())
                ui.label(f"by {kind or 'a transform'}" + (f" ({detail})" if detail else ""))


def _plain(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _version_link(ref: str, extra: str = "") -> None:
    name, _, number = ref.partition("@")
    ui.link(ref + extra, f"/datasets/{name}?version={number}").classes("font-mono")


def _header(d: _Detail) -> None:
    v = d.version
    with ui.row().classes("w-full items-center gap-4"):
        ui.label(v.ref).classes("text-h5 text-weight-bold font-mono dataset-ref")
        _quality_badge(v)
        if v.pending_classification:
            ui.badge(
                plural(len(v.pending_classification), "column") + " to review", color="orange-8"
            ).classes("pending-badge")
        ui.space()
        options = {x.version: f"version {x.version} · {stamp(x.created_at)}" for x in d.versions}
        ui.select(
            options,
            value=v.version,
            label="Version",
            on_change=lambda e: ui.navigate.to(f"/datasets/{v.dataset}?version={e.value}"),
        ).props("outlined dense").classes("w-72 version-select")
    _facts(d)


# -- classification ------------------------------------------------------------------------

Review = Callable[[str, str, bool], Awaitable[None]]
"""`review(ref, column, accept)`."""


def _classification(d: _Detail, may_review: bool, review: Review) -> None:
    section(
        "Personal data and protected attributes",
        "proposed from column names and values; a data scientist accepts or rejects each",
    )
    c = d.classification
    if c is None:
        empty_state(f"No classification: {d.problems.get('classification', 'not available')}")
        return
    if not c.findings:
        ui.label("No column looks like PII, a protected attribute or an identifier.").classes(
            "text-body2 text-grey-8"
        )
        return
    # Those still waiting for a decision first.
    for f in sorted(c.findings, key=lambda f: (f.status != "proposed", f.column)):
        _finding(c, f, may_review, review)


def _finding(c: ClassificationOut, f: ColumnFinding, may_review: bool, review: Review) -> None:
    role_now = str(c.roles.get(f.column, "feature"))
    with (
        ui.card().props("flat bordered").classes("w-full finding"),
        ui.row().classes("w-full items-center gap-3 no-wrap"),
    ):
        with ui.column().classes("gap-0 grow"):
            with ui.row().classes("items-center gap-2"):
                ui.label(f.column).classes("text-subtitle2 text-weight-bold finding-column")
                ui.label(f"proposed: {f.role} ({f.kind}, {f.confidence:.0%} confident)")
                ui.label("· role now").classes("text-caption text-grey-7")
                ui.chip(
                    role_now, color=ROLE_COLOURS.get(role_now, "grey-7"), text_color="white"
                ).props("dense square").classes(f"role-now role-{role_now}")
            ui.label(f"{f.evidence} (evidence from {f.source})").classes("text-caption text-grey-8")
        if f.status != "proposed":
            colour = "positive" if f.status == "accepted" else "grey-6"
            ui.badge(f"{f.status} by {f.reviewed_by or '?'}", color=colour).classes(
                "finding-status"
            )
            return
        accept = ui.button(f"Accept as {f.role}", on_click=lambda: review(c.ref, f.column, True))
        reject = ui.button("Reject", on_click=lambda: review(c.ref, f.column, False))
        accept.props("unelevated dense no-caps color=primary")
        reject.props("flat dense no-caps color=grey-8")
        if not may_review:
            for button in (accept, reject):
                button.disable()
                button.tooltip("Reviewing needs the data-scientist role")


# -- contract, comparison, lineage ---------------------------------------------------------


def _contract(d: _Detail) -> None:
    section("Contract", "the rules every later version is validated against")
    c = d.contract
    if c is None:
        empty_state(f"No contract: {d.problems.get('contract', 'not available')}")
        return
    ui.label(
        f"version {c.version} · {c.source} · by {c.created_by}, {stamp(c.created_at)}"
    ).classes("text-caption text-grey-8")
    code_block(c.yaml, language="yaml")
    name = d.version.dataset
    ui.label("To change it, edit a copy and set it (read-only here):").classes(
        "text-caption text-grey-8"
    )
    code_block(
        f"farpoint dataset contract show {name} > {name}.contract.yaml\n"
        f"farpoint dataset contract set {name} {name}.contract.yaml"
    )


def _lineage(d: _Detail) -> None:
    section("Lineage", "where these rows came from, and what was made from them")
    lin = d.lineage
    if lin is None:
        empty_state(f"No lineage: {d.problems.get('lineage', 'not available')}")
        return
    with ui.row().classes("items-center gap-2 lineage"):
        for a in reversed(lin.ancestors):
            _version_link(a["ref"])
            ui.label(f"({a.get('source', '')}) →").classes("text-caption text-grey-7")
        ui.label(f"{lin.ref} ({lin.source})").classes("text-weight-bold font-mono")
        for child in lin.descendants:
            ui.label("→").classes("text-grey-7")
            _version_link(child)
    made = [
        ("Training runs", [str(r) for r in lin.runs]),
        ("Model versions", lin.model_versions),
        ("Evaluations", [f"#{e}" for e in lin.evaluations]),
    ]
    for label, items in made:
        if items:
            ui.label(f"{label}: {', '.join(items)}").classes("text-body2")
    if lin.releases:
        with ui.row().classes("items-baseline gap-2"):
            ui.label("Releases:").classes("text-body2")
            for r in lin.releases:
                ui.link(f"release {r}", f"/releases/{r}").classes("text-body2")
    if not (lin.runs or lin.model_versions or lin.releases or lin.evaluations):
        ui.label("No training run, model, release or evaluation uses this version yet.").classes(
            "text-caption text-grey-7"
        )


def register() -> None:
    @ui.page("/datasets/{name}", title="Dataset · Farpoint", response_timeout=30)
    async def dataset_page(
        request: Request, name: str, version: int | None = None
    ) -> Response | None:
        api = await open_view(request, "data-scientist")
        if not isinstance(api, Api):
            return api
        me = await api.call(lambda c: c.me())
        may_review = me is not None and bool({str(r) for r in me.roles} & _REVIEWERS)
        ui.link("← all datasets", "/data-science").classes("text-caption mt-2")

        async def review(ref: str, column: str, accept: bool) -> None:
            # `ref` is the exact version on the page, even if a newer one was uploaded.
            done = await api.call(
                lambda c: c.review_classification(
                    ref, accept=[column] if accept else [], reject=[] if accept else [column]
                )
            )
            if done is not None:
                role = done.roles.get(column)
                verb = f"is now {role}" if accept else "keeps its role"
                ui.notify(f"{column} {verb}", type="positive")
                await reload(int(ref.rpartition("@")[2]))

        @ui.refreshable
        def page(d: _Detail | None) -> None:
            if d is None:
                empty_state(
                    "This dataset version cannot be shown (see the message above).",
                    "farpoint dataset list",
                )
                return
            _header(d)
            quality_section(d.quality, d.profile, d.problems.get("quality", ""))
            profile_section(
                d.profile, d.version.roles, d.version.ref, d.problems.get("profile", "")
            )
            _classification(d, may_review, review)
            _contract(d)
            first = d.versions[0].version == d.version.version
            drift_section(d.comparison, first, d.problems.get("comparison", ""))
            _lineage(d)

        async def reload(number: int) -> None:
            d = await api.call(_load(name, number))
            if d is not None:
                page.refresh(d)

        with ui.column().classes("w-full items-center") as waiting:
            ui.spinner(size="lg")
        first = await api.call(_load(name, version))
        waiting.delete()
        page(first)
        return None
