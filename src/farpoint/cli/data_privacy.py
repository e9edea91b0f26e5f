"""`farpoint dataset pseudonymize|retention|sweep|erase|erasures|lineage`: who may keep a
dataset's rows, for how long, and where they went.

Registered on `dataset_app` (cli/datasets.py) when cli/main.py imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text
from rich.tree import Tree

from farpoint.cli import render
from farpoint.cli.datasets import Ref, dataset_app, plural, review_hint
from farpoint.cli.params import Json
from farpoint.cli.session import client
from farpoint.wire.datasets import ErasureOut

__all__: list[str] = []

Name = Annotated[str, typer.Argument(help="The dataset's name.")]


# -- pseudonymize, retention, erasure -----------------------------------------------------


@dataset_app.command("pseudonymize")
def pseudonymize(
    ctx: typer.Context,
    ref: Ref,
    columns: Annotated[
        list[str],
        typer.Option(
            "--column", help="A column whose values become keyed hashes; repeat.", metavar="COLUMN"
        ),
    ],
    as_json: Json = False,
) -> None:
    """Derive a version whose COLUMNs hold keyed hashes instead of identifiers.

    The hashes are HMAC-SHA256 under a per-dataset key: joins on them still work, the
    identities do not show."""
    v = client(ctx).pseudonymize(ref, columns)
    if as_json:
        render.emit_json(v)
        return
    transform = v.transform or {}
    render.console.print(
        Text(
            f"{render.PASS} {v.ref}: {', '.join(transform.get('columns', columns))} "
            f"pseudonymized from {v.parent} ({transform.get('algorithm', 'keyed hash')}, "
            f"key {transform.get('key_id', '-')})",
            style="green",
        )
    )
    render.console.print(Text(f"digest {v.digest} · {v.row_count:,} rows", style="dim"))
    for line in review_hint(v):
        render.console.print(Text("  " + line))


@dataset_app.command("retention")
def retention(
    ctx: typer.Context,
    name: Name,
    days: Annotated[
        int | None,
        typer.Option(
            "--days", min=1, max=36_500, help="Rows expire this many days after registration."
        ),
    ] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep rows for good.")] = False,
    as_json: Json = False,
) -> None:
    """Set how long the rows of NAME's versions are kept.

    Once expired, the rows are purged; each version's digest, profile and lineage stay."""
    if (days is None) == (not keep):
        raise typer.BadParameter("give either --days N or --keep", param_hint="--days/--keep")
    d = client(ctx).set_retention(name, None if keep else days)
    if as_json:
        render.emit_json(d)
        return
    if d.retention_days is None:
        render.console.print(Text(f"{name}: rows are kept until erased", style="green"))
    else:
        render.console.print(
            Text(
                f"{name}: the rows of each version expire {plural(d.retention_days, 'day')} "
                "after it was registered (the server purges them on its timer, or "
                "`farpoint dataset sweep`)",
                style="green",
            )
        )


@dataset_app.command("sweep")
def sweep(ctx: typer.Context, as_json: Json = False) -> None:
    """Purge the rows of every dataset version past its retention now."""
    out = client(ctx).sweep_retention()
    if as_json:
        render.emit_json(out)
        return
    if not out.purged:
        render.console.print(Text("nothing has expired", style="dim"))
    for ref in out.purged:
        render.console.print(Text(f"purged the rows of {ref}"))


def _identifiers(ids: list[str] | None, ids_file: Path | None) -> list[str]:
    found = list(ids or [])
    if ids_file is not None:
        try:
            lines = ids_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise typer.BadParameter(
                f"cannot read {ids_file}: {exc}", param_hint="--ids-file"
            ) from exc
        found += [line.strip() for line in lines if line.strip()]
    if not found:
        raise typer.BadParameter(
            "name the data subjects with --id X (repeat) or --ids-file FILE (one per line)",
            param_hint="--id/--ids-file",
        )
    return found


def _show_erasure(e: ErasureOut) -> None:
    render.fields(
        f"erasure {e.id} of {e.dataset}",
        [
            ("column", e.column),
            ("subjects", e.subjects),
            ("rows removed", e.rows_removed),
            ("new version", e.new_version or "none (no stored version held their rows)"),
            ("reason", e.reason),
            ("by", f"{e.created_by}, {render.when(e.created_at)}"),
        ],
    )
    render.table(
        ["version", "rows removed"],
        ((v.get("ref"), v.get("rows_removed")) for v in e.versions),
        title="rows removed",
    )
    affected = e.affected or {}
    kinds = (
        ("model versions", "model_versions"),
        ("releases", "releases"),
        ("training runs", "runs"),
        ("evaluations", "evaluations"),
    )
    if any(affected.get(key) for _, key in kinds):
        render.console.print(
            Text("trained or evaluated on data that held these rows (retrain or retire):", "yellow")
        )
        for label, key in kinds:
            if affected.get(key):
                render.console.print(Text(f"  {label}: {render.cell(affected[key])}"))
    else:
        render.console.print(Text("no run, model, release or evaluation used those rows", "dim"))


@dataset_app.command("erase")
def erase(
    ctx: typer.Context,
    name: Name,
    column: Annotated[
        str, typer.Option("--column", help="The identifier column (role id or pii), e.g. mrn.")
    ],
    ids: Annotated[
        list[str] | None,
        typer.Option("--id", help="A data subject's identifier; repeat.", metavar="X"),
    ] = None,
    ids_file: Annotated[
        Path | None,
        typer.Option(
            "--ids-file", exists=True, dir_okay=False, readable=True, help="One identifier a line."
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", help="Kept on the record.")] = (
        "data subject request"
    ),
    as_json: Json = False,
) -> None:
    """Erase data subjects' rows from every stored version of NAME (irreversible).

    Registers a version without them and lists the model versions and releases trained
    on data that held them."""
    e = client(ctx).erase_subjects(name, column, _identifiers(ids, ids_file), reason)
    if as_json:
        render.emit_json(e)
        return
    _show_erasure(e)


@dataset_app.command("erasures")
def erasures(ctx: typer.Context, name: Name, as_json: Json = False) -> None:
    """The erasures done on dataset NAME (subjects are kept only as keyed hashes)."""
    found = client(ctx).list_erasures(name)
    if as_json:
        render.emit_json(found)
        return
    render.table(
        [
            "id",
            "column",
            "subjects",
            "rows removed",
            "new version",
            "models affected",
            "by",
            "when",
        ],
        (
            (
                e.id,
                e.column,
                e.subjects,
                e.rows_removed,
                e.new_version,
                (e.affected or {}).get("model_versions") or [],
                e.created_by,
                e.created_at,
            )
            for e in found
        ),
        title=f"erasures of {name}",
    )


# -- lineage -------------------------------------------------------------------------------


@dataset_app.command("lineage")
def lineage(ctx: typer.Context, ref: Ref, as_json: Json = False) -> None:
    """Where a dataset version came from (back to its upload) and what was made from it."""
    out = client(ctx).dataset_lineage(ref)
    if as_json:
        render.emit_json(out)
        return
    # Oldest first, so the tree reads in the order the data flowed.
    this = Text(f"{out.ref}  {out.source}", style="bold")
    chain = list(reversed(out.ancestors))
    if chain:
        root = node = Tree(Text(f"{chain[0]['ref']}  {chain[0].get('source', '')}"))
        for a in chain[1:]:
            node = node.add(Text(f"{a['ref']}  {a.get('source', '')}"))
        node = node.add(this)
    else:
        root = node = Tree(this)
    for child in out.descendants:
        node.add(Text(f"{child}  (derived)", style="cyan"))
    made = (
        ("training runs", out.runs),
        ("model versions", out.model_versions),
        ("releases", out.releases),
        ("evaluations", out.evaluations),
    )
    for label, items in made:
        if items:
            node.add(Text(f"{label}: {render.cell(items)}", style="magenta"))
    render.console.print(root)
    render.console.print(Text(f"digest {out.digest}", style="dim"))
