"""Precision and recall of PII detection (`farpoint.ml.pii`) on the labelled synthetic
corpus, per kind and overall, and the time it takes per column.

The corpus is the tests' (`tests/unit/ml/pii_corpus.py`): seeded, generated offline, each
column with a name, about 200 values and the kind a careful person would give it, hard
negatives included (prices, dates, 16-digit numbers failing Luhn, IBANs failing mod-97,
coarse coordinates, version strings, city and product names, `phone_count`). Two sets:
the development set the thresholds were tuned on, and a holdout written afterwards. A
finding of the wrong kind counts against both precision and recall.

Time per column is `detect_column` over the development set, median of several rounds;
the table run times `propose_classification` on a wide, tall Arrow table, where sampling
(at most 1,000 evenly spaced non-null values per column) keeps the cost per column flat.

    .venv/bin/python benchmarks/pii_detection.py [--rounds 5] [--rows 200000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "unit" / "ml"))

from pii_corpus import KINDS, LabelledColumn, Scores, corpus, holdout, score  # noqa: E402

from farpoint.ml.pii import detect_column, propose_classification  # noqa: E402


def _detect(column: LabelledColumn) -> str | None:
    found = detect_column(column.name, column.values, column.dtype)
    return found.kind if found else None


def _tall_table(rows: int) -> tuple[Any, dict[str, str | None]]:
    """The development set's string and numeric columns at 2,000 distinct rows each,
    shuffled and repeated down to `rows` rows (with labels): tall enough to show the
    sampling at work. Shuffled, because repeating a block would line up with the evenly
    spaced sample and show it the same few rows."""
    import random

    import pyarrow as pa

    rng = random.Random(11)
    order = pa.array([rng.randrange(rows) % 2000 for _ in range(rows)], type=pa.int64())
    arrays, labels = {}, {}
    for c in corpus(rows=2000):
        arrow_type = {"string": pa.string(), "int64": pa.int64(), "double": pa.float64()}
        if c.dtype not in arrow_type:
            continue
        try:
            small = pa.array(c.values, type=arrow_type[c.dtype])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            continue  # a numeric column with text dirt in it
        arrays[c.name] = small.take(order)
        labels[c.name] = c.label
    return pa.table(arrays), labels


def _figures(scores: Scores, prefix: str = "") -> dict[str, Any]:
    overall = scores.figures()
    out: dict[str, Any] = {
        f"{prefix}precision": round(overall["precision"], 4),
        f"{prefix}recall": round(overall["recall"], 4),
        f"{prefix}f1": round(overall["f1"], 4),
        f"{prefix}columns": scores.columns,
        f"{prefix}positives": overall["support"],
        f"{prefix}mistakes": [f"{n}: {w} -> {g}" for n, w, g in scores.mistakes],
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the corpus")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the tall table")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    development = corpus()
    dev_scores = score(development, _detect)
    hold_scores = score(holdout(), _detect)

    per_round = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for column in development:
            detect_column(column.name, column.values, column.dtype)
        per_round.append((time.perf_counter() - t0) / len(development))
    ms_per_column = statistics.median(per_round) * 1e3

    table, labels = _tall_table(args.rows)
    t0 = time.perf_counter()
    proposed = propose_classification(table)
    table_s = time.perf_counter() - t0
    table_ms_per_column = table_s * 1e3 / table.num_columns
    kinds = {name: f.kind for name, f in proposed.items()}
    agree = sum(1 for name, want in labels.items() if kinds.get(name) == want)

    for title, scores in (("development set", dev_scores), ("holdout", hold_scores)):
        print(f"{title}: {scores.columns} columns, {scores.figures()['support']} to flag")
        print(scores.table())
        for name, want, got in scores.mistakes:
            print(f"  mistake: {name!r} labelled {want}, detected {got}")
        print()
    print(
        f"detect_column: {ms_per_column:.2f} ms per column of ~200 values "
        f"(median of {args.rounds} passes over {len(development)} columns)"
    )
    print(
        f"propose_classification: {table.num_rows:,} rows x {table.num_columns} columns in "
        f"{table_s:.2f} s, {table_ms_per_column:.2f} ms per column; its findings agree with "
        f"the labels on {agree} of {len(labels)} columns"
    )

    figures = _figures(dev_scores) | _figures(hold_scores, "holdout_")
    figures["ms_per_column"] = round(ms_per_column, 3)
    figures["table_rows"] = table.num_rows
    figures["table_ms_per_column"] = round(table_ms_per_column, 3)
    figures["table_columns_agreeing"] = agree
    figures["table_columns"] = len(labels)
    for kind in KINDS:
        f = dev_scores.figures([kind])
        h = hold_scores.figures([kind])
        figures[f"{kind}_precision"] = round(f["precision"], 4)
        figures[f"{kind}_recall"] = round(f["recall"], 4)
        figures[f"holdout_{kind}_precision"] = round(h["precision"], 4)
        figures[f"holdout_{kind}_recall"] = round(h["recall"], 4)
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
