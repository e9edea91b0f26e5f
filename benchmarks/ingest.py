"""Registering a 1,000,000-row CSV, beside `pandas.read_csv` alone on the same file.

The CSV is generated here, seeded (ten columns a data scientist would upload: an id,
integers, floats, a category, a flag, a timestamp, a free-text name, a label with a few
missing readings). Farpoint's side is exactly what the server does with an upload before
it records the version: the streaming ingest into canonical Parquet with its content
digest (`farpoint.ml.ingest.ingest_file`), then `server.datasets.analysis.analyze`: the
proposed classification (PII detection), the profile with frozen bins, the contract
inferred from the rows, the contract validation and the quality report. pandas' side is
`pandas.read_csv(path)` with its defaults, nothing else.

Each side runs in a fresh child process (so one's memory never counts for the other),
alternating, `--rounds` times each; the figures are medians. Peak memory is the child's
peak resident set (`ru_maxrss`) minus its resident set once its libraries were imported,
i.e. what the work itself needed; the whole-process peaks are printed too.

    .venv/bin/python benchmarks/ingest.py [--rows 1000000] [--rounds 3] [--csv PATH] [--json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROLES = {
    "record_id": "id",
    "patient_name": "pii",
    "age": "feature",
    "heart_rate": "feature",
    "temperature": "feature",
    "lab_value": "feature",
    "ward": "feature",
    "on_oxygen": "feature",
    "admitted_at": "timestamp",
    "deteriorated": "label",
}


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """A deterministic CSV of `rows` rows and ten columns, written in chunks."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    first = np.array(["Ada", "Ben", "Chloe", "Dev", "Eva", "Finn", "Grace", "Hiro", "Ines", "Jon"])
    last = np.array(["Baker", "Chen", "Diaz", "Evans", "Fox", "Garcia", "Ito", "Khan", "Lee"])
    wards = np.array(["cardiology", "oncology", "respiratory", "surgical", "general"])
    chunk = 200_000
    with pacsv.CSVWriter(path, _schema()) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            label = rng.random(n) < 0.2
            hr = np.round(rng.normal(80, 12, n) + 15 * label, 1)
            missing = rng.random(n) < 0.01
            lab = np.where(missing, np.nan, np.round(rng.lognormal(1.0, 0.5, n), 3))
            table = pa.table(
                {
                    "record_id": np.arange(start, start + n, dtype=np.int64) + 10_000_000,
                    "patient_name": np.char.add(
                        np.char.add(first[rng.integers(0, len(first), n)], " "),
                        last[rng.integers(0, len(last), n)],
                    ),
                    "age": rng.integers(18, 95, n),
                    "heart_rate": hr,
                    "temperature": np.round(rng.normal(37.0, 0.5, n), 2),
                    "lab_value": pa.array(lab, mask=missing),
                    "ward": wards[rng.integers(0, len(wards), n)],
                    "on_oxygen": rng.random(n) < 0.15,
                    "admitted_at": (
                        np.datetime64("2026-01-01T00:00:00")
                        + rng.integers(0, 300 * 86_400, n).astype("timedelta64[s]")
                    ),
                    "deteriorated": label.astype(np.int64),
                },
                schema=_schema(),
            )
            writer.write_table(table)


def _schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("record_id", pa.int64()),
            ("patient_name", pa.string()),
            ("age", pa.int64()),
            ("heart_rate", pa.float64()),
            ("temperature", pa.float64()),
            ("lab_value", pa.float64()),
            ("ward", pa.string()),
            ("on_oxygen", pa.bool_()),
            ("admitted_at", pa.timestamp("s")),
            ("deteriorated", pa.int64()),
        ]
    )


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pandas_child(path: str, out: Any) -> None:
    import pandas as pd

    base = _rss_mb()
    started = time.perf_counter()
    frame = pd.read_csv(path)
    elapsed = time.perf_counter() - started
    out.send({"s": elapsed, "rows": len(frame), "base_mb": base, "peak_mb": _peak_mb()})


def _farpoint_child(path: str, out: Any) -> None:
    import pandas  # noqa: F401  (the analysis converts batches for pandera)
    import pandera.pandas  # noqa: F401
    import pyarrow  # noqa: F401

    from farpoint.ml import contract, ingest, pii, profile, quality  # noqa: F401
    from farpoint.server.datasets.analysis import analyze

    base = _rss_mb()
    work = Path(tempfile.mkdtemp(prefix="fp-ingest-"))
    started = time.perf_counter()
    result = ingest.ingest_file(Path(path), Path(path).name, work)
    ingested = time.perf_counter()
    analysis = analyze(result.parquet_path, columns=result.columns, roles=ROLES, contract=None)
    done = time.perf_counter()
    out.send(
        {
            "s": done - started,
            "ingest_s": ingested - started,
            "analyze_s": done - ingested,
            "rows": result.row_count,
            "digest": result.digest,
            "parquet_mb": result.size_bytes / 1e6,
            "quality_passed": bool(analysis.quality.get("passed")),
            "contract_failures": len(analysis.validation.get("failures", [])),
            "proposed": sorted(analysis.classification),
            "base_mb": base,
            "peak_mb": _peak_mb(),
        }
    )
    import shutil

    shutil.rmtree(work, ignore_errors=True)


def _run(target: Any, path: Path) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=target, args=(str(path), child))
    proc.start()
    result: dict[str, Any] = parent.recv()
    proc.join()
    if proc.exitcode != 0:
        raise SystemExit(f"{target.__name__} exited with {proc.exitcode}")
    result["work_mb"] = result["peak_mb"] - result["base_mb"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--csv", type=Path, help="use (or create) this CSV file")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args()

    tmp = None
    path = args.csv
    if path is None:
        tmp = tempfile.TemporaryDirectory(prefix="fp-ingest-bench-")
        path = Path(tmp.name) / "vitals.csv"
    if not path.exists():
        started = time.perf_counter()
        make_csv(path, args.rows)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s: {path}")
    size_mb = path.stat().st_size / 1e6

    ours, theirs = [], []
    for i in range(args.rounds):
        theirs.append(_run(_pandas_child, path))
        ours.append(_run(_farpoint_child, path))
        print(
            f"round {i + 1}: pandas.read_csv {theirs[-1]['s']:.2f} s, "
            f"Farpoint {ours[-1]['s']:.2f} s (ingest {ours[-1]['ingest_s']:.2f} s, "
            f"analysis {ours[-1]['analyze_s']:.2f} s)",
            flush=True,
        )

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    rows = ours[0]["rows"]
    assert rows == theirs[0]["rows"], (rows, theirs[0]["rows"])
    fp_s, pd_s = med(ours, "s"), med(theirs, "s")
    fp_mem, pd_mem = med(ours, "work_mb"), med(theirs, "work_mb")
    figures = {
        "rows": rows,
        "csv_mb": round(size_mb, 1),
        "rounds": args.rounds,
        "farpoint_s": round(fp_s, 3),
        "farpoint_ingest_s": round(med(ours, "ingest_s"), 3),
        "farpoint_analysis_s": round(med(ours, "analyze_s"), 3),
        "pandas_read_csv_s": round(pd_s, 3),
        "rows_per_s": round(rows / fp_s),
        "time_ratio_vs_pandas": round(fp_s / pd_s, 3),
        "farpoint_work_mb": round(fp_mem, 1),
        "pandas_work_mb": round(pd_mem, 1),
        "peak_memory_ratio_vs_pandas": round(fp_mem / pd_mem, 3),
        "farpoint_process_peak_mb": round(med(ours, "peak_mb"), 1),
        "pandas_process_peak_mb": round(med(theirs, "peak_mb"), 1),
        "digest": ours[0]["digest"],
        "digest_stable": len({r["digest"] for r in ours}) == 1,
        "proposed_classification": ours[0]["proposed"],
    }
    print()
    print(f"{rows:,} rows, {size_mb:.0f} MB of CSV; medians of {args.rounds} rounds")
    print(f"{'':34} {'time':>9} {'work memory':>12} {'process peak':>13}")
    print(
        f"{'pandas.read_csv':34} {pd_s:>7.2f} s {pd_mem:>9.0f} MB "
        f"{figures['pandas_process_peak_mb']:>10.0f} MB"
    )
    print(
        f"{'Farpoint ingest + analysis':34} {fp_s:>7.2f} s {fp_mem:>9.0f} MB "
        f"{figures['farpoint_process_peak_mb']:>10.0f} MB"
    )
    print(
        f"  of which ingest {figures['farpoint_ingest_s']:.2f} s, analysis "
        f"{figures['farpoint_analysis_s']:.2f} s; {figures['rows_per_s']:,} rows/s"
    )
    print(
        f"time ratio {figures['time_ratio_vs_pandas']:.2f} (goal ≤ 2), work-memory ratio "
        f"{figures['peak_memory_ratio_vs_pandas']:.2f} (goal < 1); digest "
        f"{'stable' if figures['digest_stable'] else 'CHANGED between rounds'}; proposed: "
        f"{', '.join(figures['proposed_classification']) or 'none'}"
    )
    if args.json:
        print(json.dumps(figures))
    if tmp is not None:
        tmp.cleanup()
    sys.exit(0)


if __name__ == "__main__":
    main()
