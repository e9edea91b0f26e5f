"""Label leakage for the quality report (`farpoint.ml.quality`): per feature, label counts
per histogram bin or category (or a streaming correlation with a numeric label), scored
in [0, 1]; the scores are described in the quality module's doc. Also which columns look
like identifiers, which both the leakage pass and the report's checks need to know."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from farpoint.ml.binning import bin_indices
from farpoint.ml.columns import raw_numbers, validity_mask

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "ID_LIKE_MIN_ROWS",
    "LEAKAGE_MIN_ROWS",
    "MAX_LABEL_CLASSES",
    "LeakagePass",
    "id_like",
    "label_classes",
]

LEAKAGE_MIN_ROWS = 10
"""Categories (or bins) with fewer rows than this are pooled before computing lambda."""
ID_LIKE_MIN_ROWS = 20
MAX_LABEL_CLASSES = 50
"""An integer label with more distinct values than this is treated as a regression target."""
_LEAKAGE_ROLES = ("feature",)


class _Leakage:
    """Joint counts of (bin or category, label class) for one feature, batch by batch."""

    def __init__(self, name: str, edges: list[Any] | None, classes: int) -> None:
        self.name, self.edges, self.classes = name, edges, classes
        self.joint: dict[Any, Any] = {}
        self.binned: Any = None

    def add(self, arr: pa.Array, codes: np.ndarray, labelled: np.ndarray) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        k = self.classes
        keep = labelled if not arr.null_count else labelled & validity_mask(arr)
        if self.edges is not None:
            values = raw_numbers(arr)
            if values.dtype.kind == "f":
                keep = keep & ~np.isnan(values)
            idx = bin_indices(self.edges, values[keep])
            counts = np.bincount(idx * k + codes[keep], minlength=(len(self.edges) + 1) * k)
            self.binned = counts if self.binned is None else self.binned + counts
            return
        if pa.types.is_boolean(arr.type):
            idx = arr.fill_null(False).to_numpy(zero_copy_only=False).astype(np.int64)
            dictionary: list[Any] = [False, True]
        elif pa.types.is_dictionary(arr.type):
            idx = raw_numbers(arr.indices)
            dictionary = arr.dictionary.to_pylist()
        else:
            encoded = pc.dictionary_encode(arr)
            idx = encoded.indices.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
            dictionary = encoded.dictionary.to_pylist()
        counts = np.bincount(idx[keep] * k + codes[keep], minlength=len(dictionary) * k)
        for i, value in enumerate(dictionary):
            row = counts[i * k : (i + 1) * k]
            if row.any():
                self.joint[value] = row if value not in self.joint else self.joint[value] + row

    def table(self) -> np.ndarray:
        import numpy as np

        if self.edges is not None:
            return np.asarray(self.binned).reshape(-1, self.classes)
        if not self.joint:
            return np.zeros((0, self.classes), dtype=np.int64)
        return np.vstack(list(self.joint.values()))


def _lambda(table: np.ndarray) -> float | None:
    """Goodman-Kruskal lambda of the label given the rows of `table`, rare rows pooled."""
    import numpy as np

    sizes = table.sum(axis=1)
    rare = sizes < LEAKAGE_MIN_ROWS
    if rare.any():
        table = np.vstack([table[~rare], table[rare].sum(axis=0, keepdims=True)])
    total = int(table.sum())
    majority = int(table.sum(axis=0).max()) if total else 0
    if total == 0 or majority == total:
        return None
    return (int(table.max(axis=1).sum()) - majority) / (total - majority)


def _auc_score(table: np.ndarray) -> float | None:
    """max over classes of max(AUC, 1 - AUC), the bins taken in order."""
    import numpy as np

    best: float | None = None
    totals = table.sum(axis=1)
    for c in range(table.shape[1]):
        pos = table[:, c].astype(np.float64)
        neg = totals - pos
        p, n = pos.sum(), neg.sum()
        if p == 0 or n == 0:
            continue
        below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
        auc = float((pos * (below + 0.5 * neg)).sum() / (p * n))
        score = max(auc, 1 - auc)
        best = score if best is None else max(best, score)
    return best


class _Correlation:
    """Streaming Pearson correlation of a feature with a numeric label (Chan's merge)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.n = 0
        self.mx = self.my = self.cxy = self.m2x = self.m2y = 0.0

    def add(self, arr: pa.Array, label: np.ndarray, labelled: np.ndarray) -> None:
        import numpy as np

        x = raw_numbers(arr).astype(np.float64)
        keep = labelled & np.isfinite(x)
        if arr.null_count:
            keep &= validity_mask(arr)
        x, y = x[keep], label[keep]
        n_b = x.size
        if not n_b:
            return
        mx, my = float(x.mean()), float(y.mean())
        dx, dy = x - mx, y - my
        n = self.n + n_b
        ddx, ddy = mx - self.mx, my - self.my
        self.cxy += float((dx * dy).sum()) + ddx * ddy * self.n * n_b / n
        self.m2x += float((dx * dx).sum()) + ddx * ddx * self.n * n_b / n
        self.m2y += float((dy * dy).sum()) + ddy * ddy * self.n * n_b / n
        self.mx += ddx * n_b / n
        self.my += ddy * n_b / n
        self.n = n

    def score(self) -> float | None:
        if self.m2x <= 0 or self.m2y <= 0:
            return None
        return abs(self.cxy / math.sqrt(self.m2x * self.m2y))


def label_classes(label: Mapping[str, Any]) -> list[Any] | None:
    """The classes of a classification label's profile; None for a regression target."""
    classes = label.get("classes")
    if not classes:
        return None
    if label["kind"] == "numeric" and (
        label["dtype"] != "int64" or len(classes) > MAX_LABEL_CLASSES
    ):
        return None
    return [c["value"] for c in classes]


class LeakagePass:
    """Leakage scores of the features against `label`, from batches the caller streams
    (`columns`, the `dictionary` ones dictionary-encoded): `add` each batch, then `scores`."""

    def __init__(
        self,
        columns: Sequence[str],
        roles: Mapping[str, str],
        profile: Mapping[str, Any],
        label: str | None,
        limits: Mapping[str, float],
    ) -> None:
        import pyarrow as pa

        stats = profile["columns"]
        self.label = label
        classes = label_classes(stats[label]) if label else None
        regression = label is not None and classes is None and stats[label]["kind"] == "numeric"
        self.leak: dict[str, _Leakage] = {}
        self.corr: dict[str, _Correlation] = {}
        for name in columns:
            col = stats.get(name, {})
            if roles.get(name, "feature") not in _LEAKAGE_ROLES or name == label or not label:
                continue
            hist = col.get("histogram")
            if "distinct" in col and id_like(col, limits):
                continue  # reported as id-like instead: one row per value predicts anything
            if classes is not None and hist:
                self.leak[name] = _Leakage(name, hist["edges"], len(classes))
            elif classes is not None and col.get("kind") in ("categorical", "boolean"):
                if _categories_ok(col, limits):
                    self.leak[name] = _Leakage(name, None, len(classes))
            elif regression and col.get("kind") == "numeric" and not col.get("private"):
                self.corr[name] = _Correlation(name)
        self.class_set = (
            pa.array(classes, type=pa.bool_() if isinstance(classes[0], bool) else None)
            if classes
            else None
        )
        needed = set(self.leak) | set(self.corr)
        self.columns = [n for n in columns if n in needed or (needed and n == label)]
        # Strings with few values are read as dictionary codes: counting them then
        # touches each distinct string once per batch.
        self.dictionary = [
            n
            for n in self.columns
            if stats.get(n, {}).get("kind") == "categorical"
            and stats[n].get("distinct_exact")
            and not stats[n].get("private")
        ]

    def add(self, batch: pa.RecordBatch) -> None:
        """Count one batch (any superset of `columns`)."""
        import numpy as np

        label = self.label
        if label is None or not (self.leak or self.corr):
            return
        target = batch.column(label)
        if self.class_set is not None:
            codes, labelled = _label_codes(target, self.class_set)
            for name, counter in self.leak.items():
                counter.add(batch.column(name), codes, labelled)
        else:
            y = raw_numbers(target).astype(np.float64)
            labelled = np.isfinite(y)
            if target.null_count:
                labelled &= validity_mask(target)
            for name, correlation in self.corr.items():
                correlation.add(batch.column(name), y, labelled)

    def scores(self) -> dict[str, float | None]:
        """A leakage score per candidate feature (None where it could not be scored)."""
        scores: dict[str, float | None] = {}
        for name, counter in self.leak.items():
            table = counter.table()
            candidates = [_lambda(table)]
            if counter.edges is not None:
                candidates.append(_auc_score(table))
            known = [s for s in candidates if s is not None]
            scores[name] = max(known) if known else None
        for name, correlation in self.corr.items():
            scores[name] = correlation.score()
        return scores


def _label_codes(target: pa.Array, classes: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Each row's class index, and whether the row has a known label."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(target.type):
        if not len(target.dictionary):
            return np.zeros(len(target), dtype=np.int64), np.zeros(len(target), dtype=bool)
        known = pc.index_in(target.dictionary, value_set=classes).fill_null(-1)
        codes = known.to_numpy(zero_copy_only=False).astype(np.int64)[raw_numbers(target.indices)]
        labelled = codes >= 0
        if target.null_count:
            labelled &= validity_mask(target)
        return np.maximum(codes, 0), labelled
    found = pc.index_in(target, value_set=classes)
    labelled = validity_mask(found) if found.null_count else np.ones(len(found), dtype=bool)
    return found.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), labelled


def _categories_ok(col: Mapping[str, Any], limits: Mapping[str, float]) -> bool:
    """Exactly counted, not private and few enough categories (id-like columns are
    skipped before this is asked)."""
    return (
        not col.get("private")
        and bool(col.get("distinct_exact"))
        and col.get("distinct", 0) <= limits["max_categories"]
    )


def id_like(col: Mapping[str, Any], limits: Mapping[str, float]) -> bool:
    """A string or integer column with (nearly) one value per row; continuous numbers
    are all distinct by nature and are not identifiers for that."""
    values = col["count"] - col["null_count"]
    return (
        (col.get("kind") == "categorical" or col.get("dtype") == "int64")
        and bool(col.get("distinct_exact"))
        and values >= ID_LIKE_MIN_ROWS
        and col.get("distinct", 0) >= limits["id_like_ratio"] * values
    )
