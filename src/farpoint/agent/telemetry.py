"""What the device counts: heartbeat gauges, and per model and release the requests,
rows, failures, input errors, latency histogram, predicted labels and feedback confusion
counts, closed into interval records (`TelemetryWindow`) every heartbeat period.

`InferenceStats` is shared by the local API (which records), the heartbeat (which reads
and closes windows) and the health window of a fresh release (which reads):

- `totals(model, release_id)`: counts since the agent started; `a.minus(b)` of two
  readings is exactly what happened between them, whatever the distance.
- `since(model, t, release_id)`: counts from time `t` on, at one-second resolution,
  over the last `history_s` seconds (`t` on the stats' clock: take it with `now()`).
- `snapshot()`: the heartbeat's per-model figures (cumulative counts, recent p50/p95).

Latency is what the model's predict takes (input checks, inference, the answer's rows)
for requests that succeeded; failures and input errors are counted, not timed.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from farpoint.core.telemetry import LATENCY_BUCKETS, histogram_quantile, latency_bucket

__all__ = [
    "MAX_FEEDBACK_CELLS",
    "MAX_GROUPS_PER_ATTRIBUTE",
    "MAX_PREDICTED_LABELS",
    "OTHER_LABEL",
    "ConfusionCount",
    "CpuMeter",
    "FeedbackCount",
    "FeedbackRefused",
    "InferenceStats",
    "ModelCounts",
    "ModelWindow",
    "TelemetryWindow",
    "disk_free_bytes",
    "pack_windows",
    "percentile",
    "rss_bytes",
]

_LATENCY_WINDOW = 2048
MAX_PREDICTED_LABELS = 64
"""Distinct predicted labels counted per model and window; the rest count as OTHER_LABEL."""
OTHER_LABEL = "(other)"
MAX_FEEDBACK_CELLS = 128
"""Distinct feedback counts (overall and per group) per model and window: a window's
record must fit a status report (64 KiB) with room to spare."""
MAX_ATTRIBUTES_PER_MODEL = 8
MAX_GROUPS_PER_ATTRIBUTE = 32
"""Distinct values one attribute may take per model while the agent runs: attributes are
groups (sex, age band), not identifiers, so no single prediction can be told apart."""
DEFAULT_HISTORY_S = 3600


# -- the record shapes (mirror farpoint.wire.telemetry) ------------------------------


class ConfusionCount(TypedDict):
    label: str
    predicted: str
    count: int


class FeedbackCount(TypedDict):
    attribute: str
    group: str
    label: str
    predicted: str
    count: int


class ModelWindow(TypedDict):
    release_id: int | None
    requests: int
    inferences: int
    errors: int
    input_errors: int
    latency_ms: list[int]
    predictions: dict[str, int]
    feedback: list[FeedbackCount]
    confusion: list[ConfusionCount]


class TelemetryWindow(TypedDict):
    seq: NotRequired[int]
    """Given by the outbox when the record is queued."""
    start: str
    end: str
    models: dict[str, ModelWindow]
    resources: dict[str, float | int | None]


# -- gauges ---------------------------------------------------------------------------


def rss_bytes() -> int:
    """Resident set size now (from /proc), or the peak where /proc is missing."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def disk_free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    # the smallest value with at least q% of the values at or below it
    rank = max(1, min(len(ordered), math.ceil(round(q * len(ordered) / 100.0, 9))))
    return ordered[rank - 1]


class CpuMeter:
    """The process's CPU use between two readings, in percent of one core."""

    def __init__(self) -> None:
        self._last_cpu = self._cpu()
        self._last_wall = time.monotonic()

    @staticmethod
    def _cpu() -> float:
        t = os.times()
        return t.user + t.system

    def read(self) -> float:
        cpu, wall = self._cpu(), time.monotonic()
        elapsed = wall - self._last_wall
        used = cpu - self._last_cpu
        self._last_cpu, self._last_wall = cpu, wall
        return round(100.0 * used / elapsed, 2) if elapsed > 0 else 0.0


# -- counts ---------------------------------------------------------------------------


class FeedbackRefused(ValueError):
    """Feedback that would make the counts identifying or the window's record too big;
    `retry_later` when the next window will take it."""

    def __init__(self, detail: str, retry_later: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_later = retry_later


@dataclass
class ModelCounts:
    """Counts of one model (one release, or all) over some span."""

    requests: int = 0
    inferences: int = 0
    errors: int = 0
    input_errors: int = 0
    latency_ms: list[int] = field(default_factory=lambda: [0] * LATENCY_BUCKETS)
    latency_p95_ms: float | None = None
    """Exact (nearest rank) over the span's most recent 2048 successful requests, where
    the reading keeps them (`since`); else the upper edge of the histogram's bucket."""
    complete: bool = True
    """False when `since` was asked about a time before the history it keeps."""

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def latency_quantile_ms(self, q: float) -> float | None:
        """Upper edge of the histogram bucket holding the q-quantile (inf: above 2.5 s)."""
        return histogram_quantile(self.latency_ms, q)

    def minus(self, earlier: ModelCounts) -> ModelCounts:
        """What happened between an earlier reading of `totals` and this one."""
        hist = [a - b for a, b in zip(self.latency_ms, earlier.latency_ms, strict=True)]
        return ModelCounts(
            requests=self.requests - earlier.requests,
            inferences=self.inferences - earlier.inferences,
            errors=self.errors - earlier.errors,
            input_errors=self.input_errors - earlier.input_errors,
            latency_ms=hist,
            latency_p95_ms=histogram_quantile(hist, 0.95),
        )


class _Counter:
    """requests / rows / failures / input errors / latency buckets (slotted, hot path)."""

    __slots__ = ("errors", "hist", "input_errors", "requests", "rows")

    def __init__(self) -> None:
        self.requests = 0
        self.rows = 0
        self.errors = 0
        self.input_errors = 0
        self.hist = [0] * LATENCY_BUCKETS

    def add(self, other: _Counter) -> None:
        self.requests += other.requests
        self.rows += other.rows
        self.errors += other.errors
        self.input_errors += other.input_errors
        for i, n in enumerate(other.hist):
            self.hist[i] += n

    def counts(self) -> ModelCounts:
        return ModelCounts(
            requests=self.requests,
            inferences=self.rows,
            errors=self.errors,
            input_errors=self.input_errors,
            latency_ms=list(self.hist),
            latency_p95_ms=histogram_quantile(self.hist, 0.95),
        )


class _Slot(_Counter):
    """One second of one release's traffic, for `since`."""

    __slots__ = ("release_id", "second")

    def __init__(self, second: int, release_id: int | None) -> None:
        super().__init__()
        self.second = second
        self.release_id = release_id


class _Window(_Counter):
    """One release's counts since the last closed window."""

    __slots__ = ("confusion", "feedback", "predictions")

    def __init__(self) -> None:
        super().__init__()
        self.predictions: dict[str, int] = {}
        self.feedback: dict[tuple[str, str, str, str], int] = {}
        self.confusion: dict[tuple[str, str], int] = {}

    def record(self, release_id: int | None) -> ModelWindow:
        return {
            "release_id": release_id,
            "requests": self.requests,
            "inferences": self.rows,
            "errors": self.errors,
            "input_errors": self.input_errors,
            "latency_ms": list(self.hist) if any(self.hist) else [],
            "predictions": dict(self.predictions),
            "feedback": [
                {"attribute": a, "group": g, "label": lb, "predicted": p, "count": n}
                for (a, g, lb, p), n in sorted(self.feedback.items())
            ],
            "confusion": [
                {"label": lb, "predicted": p, "count": n}
                for (lb, p), n in sorted(self.confusion.items())
            ],
        }


class _ModelStats:
    def __init__(self) -> None:
        self.total = _Counter()
        self.by_release: dict[int | None, _Counter] = {}
        self.latencies: deque[tuple[float, float, int | None]] = deque(maxlen=_LATENCY_WINDOW)
        """(time, ms, release) of recent successful requests."""
        self.slots: deque[_Slot] = deque()
        self.groups: dict[str, set[str]] = {}


class InferenceStats:
    """Counters the local API updates and the heartbeat reads, shared across threads."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, history_s: int = DEFAULT_HISTORY_S
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._history_s = history_s
        self._started = clock()
        self._models: dict[str, _ModelStats] = {}
        self._windows: dict[tuple[str, int | None], _Window] = {}

    def now(self) -> float:
        """The time on this object's clock, as `since` takes it."""
        return self._clock()

    # recording (the local API)

    def _touch(
        self, model: str, release_id: int | None, now: float
    ) -> tuple[_ModelStats, _Counter, _Slot, _Window]:
        """The counters one event updates; call with the lock held."""
        m = self._models.get(model)
        if m is None:
            m = self._models[model] = _ModelStats()
        per_release = m.by_release.get(release_id)
        if per_release is None:
            per_release = m.by_release[release_id] = _Counter()
        second = int(now)
        slots = m.slots
        if not slots or slots[-1].second != second or slots[-1].release_id != release_id:
            slots.append(_Slot(second, release_id))
            horizon = second - self._history_s
            while slots[0].second < horizon:
                slots.popleft()
        window = self._windows.get((model, release_id))
        if window is None:
            window = self._windows[(model, release_id)] = _Window()
        return m, per_release, slots[-1], window

    def record_prediction(
        self, model: str, release_id: int | None, latency_s: float, labels: Iterable[str]
    ) -> None:
        """A request the model answered: one row per predicted label."""
        self._answered(model, release_id, latency_s, labels, 0)

    def _answered(
        self,
        model: str,
        release_id: int | None,
        latency_s: float,
        labels: Iterable[str],
        unlabelled_rows: int,
    ) -> None:
        ms = latency_s * 1000.0
        bucket = latency_bucket(ms)
        with self._lock:
            now = self._clock()
            m, per_release, slot, window = self._touch(model, release_id, now)
            predictions = window.predictions
            rows = unlabelled_rows
            for label in labels:
                rows += 1
                if label in predictions:
                    predictions[label] += 1
                elif len(predictions) < MAX_PREDICTED_LABELS - 1 or label == OTHER_LABEL:
                    predictions[label] = 1
                else:
                    predictions[OTHER_LABEL] = predictions.get(OTHER_LABEL, 0) + 1
            for c in (m.total, per_release, slot, window):
                c.requests += 1
                c.rows += rows
                c.hist[bucket] += 1
            m.latencies.append((now, ms, release_id))

    def record_failure(self, model: str, release_id: int | None) -> None:
        """A request the model or runtime failed on (the caller got a 5xx)."""
        with self._lock:
            m, per_release, slot, window = self._touch(model, release_id, self._clock())
            for c in (m.total, per_release, slot, window):
                c.requests += 1
                c.errors += 1

    def record_input_error(self, model: str, release_id: int | None) -> None:
        """A request refused for its input (the caller got a 4xx)."""
        with self._lock:
            m, per_release, slot, window = self._touch(model, release_id, self._clock())
            for c in (m.total, per_release, slot, window):
                c.requests += 1
                c.input_errors += 1

    def record(
        self,
        model: str,
        rows: int,
        latency_s: float | None,
        error: bool,
        release_id: int | None = None,
    ) -> None:
        """Older form: `error` is an inference failure; rows are counted without labels."""
        if error:
            self.record_failure(model, release_id)
        else:
            self._answered(model, release_id, latency_s or 0.0, (), rows)

    def record_feedback(
        self,
        model: str,
        release_id: int | None,
        label: str,
        predicted: str,
        attributes: Mapping[str, str],
    ) -> None:
        """Count a true label against the predicted one, overall and per attribute group;
        FeedbackRefused (nothing counted) when the bounds above would be passed."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                m = self._models[model] = _ModelStats()
            new_names = [a for a in attributes if a not in m.groups]
            if len(m.groups) + len(new_names) > MAX_ATTRIBUTES_PER_MODEL:
                raise FeedbackRefused(
                    f"model {model!r} already has feedback on {len(m.groups)} attributes "
                    f"({', '.join(sorted(m.groups))}); at most {MAX_ATTRIBUTES_PER_MODEL}"
                )
            for name, value in attributes.items():
                known = m.groups.get(name, set())
                if value not in known and len(known) >= MAX_GROUPS_PER_ATTRIBUTE:
                    raise FeedbackRefused(
                        f"attribute {name!r} already took {len(known)} distinct values; at "
                        f"most {MAX_GROUPS_PER_ATTRIBUTE}: send groups (like an age band), "
                        "not identifiers"
                    )
            window = self._windows.get((model, release_id))
            if window is None:
                window = self._windows[(model, release_id)] = _Window()
            keys = [(name, value, label, predicted) for name, value in attributes.items()]
            new_cells = sum(1 for k in keys if k not in window.feedback)
            new_cells += (label, predicted) not in window.confusion
            if len(window.feedback) + len(window.confusion) + new_cells > MAX_FEEDBACK_CELLS:
                raise FeedbackRefused(
                    f"this telemetry window already holds {MAX_FEEDBACK_CELLS} distinct "
                    f"feedback counts for model {model!r}; it is sent at the next heartbeat, "
                    "try again then",
                    retry_later=True,
                )
            for name, value in attributes.items():
                m.groups.setdefault(name, set()).add(value)
            for k in keys:
                window.feedback[k] = window.feedback.get(k, 0) + 1
            window.confusion[(label, predicted)] = window.confusion.get((label, predicted), 0) + 1

    # reading

    def totals(self, model: str, release_id: int | None = None) -> ModelCounts:
        """Counts since the agent started, of one release when `release_id` is given
        (None for every release of the model)."""
        with self._lock:
            m = self._models.get(model)
            if m is None:
                return ModelCounts()
            if release_id is None:
                return m.total.counts()
            c = m.by_release.get(release_id)
            return c.counts() if c is not None else ModelCounts()

    def since(self, model: str, t: float, release_id: int | None = None) -> ModelCounts:
        """Counts from time `t` (this object's clock) to now, of one release when given.

        One-second resolution: the second holding `t` counts whole. `complete` is False
        when `t` is before the kept history (`history_s`) of an agent running longer.
        """
        first = int(t)
        with self._lock:
            out = _Counter()
            m = self._models.get(model)
            horizon = int(self._clock()) - self._history_s
            complete = first >= horizon or self._started >= horizon
            if m is None:
                counts = out.counts()
                counts.complete = complete
                return counts
            for slot in reversed(m.slots):
                if slot.second < first:
                    break
                if release_id is None or slot.release_id == release_id:
                    out.add(slot)
            recent = [
                ms
                for when, ms, rel in m.latencies
                if when >= first and (release_id is None or rel == release_id)
            ]
        counts = out.counts()
        counts.complete = complete
        ok = counts.requests - counts.errors - counts.input_errors
        if recent and len(recent) >= min(ok, _LATENCY_WINDOW):
            counts.latency_p95_ms = percentile(recent, 95)
        return counts

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The heartbeat's figures per model: counts since start, p50/p95 of recent requests."""
        with self._lock:
            out: dict[str, dict[str, Any]] = {}
            for name, m in self._models.items():
                window = [ms for _, ms, _ in m.latencies]
                out[name] = {
                    "requests": m.total.requests,
                    "inferences": m.total.rows,
                    "errors": m.total.errors,
                    "input_errors": m.total.input_errors,
                    "latency_p50_ms": percentile(window, 50),
                    "latency_p95_ms": percentile(window, 95),
                }
            return out

    def close_window(self) -> list[tuple[str, ModelWindow]]:
        """The counts since the last call, per model and release, and start new ones."""
        with self._lock:
            windows, self._windows = self._windows, {}
        return [
            (model, w.record(release_id))
            for (model, release_id), w in sorted(windows.items(), key=lambda kv: str(kv[0]))
        ]


def _size(doc: Any) -> int:
    return len(json.dumps(doc, separators=(",", ":")))


def pack_windows(
    windows: list[tuple[str, ModelWindow]],
    start: str,
    end: str,
    resources: dict[str, float | int | None],
    max_bytes: int,
) -> list[TelemetryWindow]:
    """Interval records for one closed window: at least one (resources alone when nothing
    was counted), each naming a model once (a release switch inside the window makes two
    records) and each at most `max_bytes` of compact JSON where its parts allow it."""
    records: list[TelemetryWindow] = []
    current: TelemetryWindow = {"start": start, "end": end, "models": {}, "resources": resources}
    used = _size(current) + 16  # and a seq
    for model, window in windows:
        cost = _size({model: window}) + 1
        if current["models"] and (model in current["models"] or used + cost > max_bytes):
            records.append(current)
            current = {"start": start, "end": end, "models": {}, "resources": {}}
            used = _size(current) + 16
        current["models"][model] = window
        used += cost
    records.append(current)
    return records
