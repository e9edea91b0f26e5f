"""Running one release's model: input checks against the signed signature, inference,
and the golden self-test. onnxruntime is imported here, lazily, when a model loads."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from farpoint.core.errors import FarpointError

from .health import InferenceCounter, nearest_rank
from .payloads import Manifest, TensorSpec

__all__ = [
    "MAX_ROWS",
    "InferenceFailed",
    "InputError",
    "LoadedModel",
    "SelfTestFailed",
    "latency_budget",
    "load_model",
    "rows_from_body",
]

MAX_ROWS = 10_000
GOLDEN_TOLERANCE = 1e-4
LATENCY_SAMPLES = 200
LATENCY_MAX_S = 0.5
"""The self-test's latency measure: this many single-row predictions, or this long."""
_NUMERIC = {"float32": np.float32, "float64": np.float64, "int64": np.int64, "int32": np.int32}


class InputError(ValueError):
    """The caller's rows do not match the model's signature."""

    def __init__(self, detail: str, row: int | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.row = row
        self.field = field


class SelfTestFailed(Exception):
    """The installed model does not reproduce its golden outputs, or is over its budget."""


class InferenceFailed(FarpointError):
    """The model failed to answer well-formed rows: the release's fault, not the caller's."""

    status = 500
    code = "inference-failed"
    title = "Inference failed"


def latency_budget(manifest: Manifest, profile: str) -> tuple[str, float] | None:
    """(the key that applies, its p95 budget in ms): `profile`'s, else `default`'s, else none."""
    budgets = manifest.get("budgets", {}).get("latency_p95_ms", {})
    for key in (profile, "default"):
        if key in budgets:
            return key, budgets[key]
    return None


def rows_from_body(body: Any) -> list[dict[str, Any]]:
    """Accept {"rows": [{...}]} or {"columns": {name: [...]}}; return rows."""
    if not isinstance(body, dict):
        raise InputError('body must be a JSON object with "rows" or "columns"')
    if "rows" in body:
        rows = body["rows"]
        if not isinstance(rows, list):
            raise InputError('"rows" must be a list of objects')
        if len(rows) > MAX_ROWS:
            raise OverflowError(f"{len(rows)} rows is over the limit of {MAX_ROWS}")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InputError(f"row {i} is not an object", row=i)
        return rows
    if "columns" in body:
        columns = body["columns"]
        if not isinstance(columns, dict) or not columns:
            raise InputError('"columns" must be an object of lists')
        lengths = set()
        for name, values in columns.items():
            if not isinstance(values, list):
                raise InputError(f"column {name!r} is not a list", field=name)
            lengths.add(len(values))
        if len(lengths) != 1:
            raise InputError("columns have different lengths")
        n = lengths.pop()
        if n > MAX_ROWS:
            raise OverflowError(f"{n} rows is over the limit of {MAX_ROWS}")
        return [{name: columns[name][i] for name in columns} for i in range(n)]
    raise InputError('body must hold "rows" or "columns"')


def _check_value(spec: TensorSpec, value: Any, row: int) -> None:
    name, dtype = spec["name"], spec["dtype"]
    if dtype == "string":
        ok = isinstance(value, str)
        want = "a string"
    elif dtype == "bool":
        ok = isinstance(value, bool)
        want = "true or false"
    elif dtype in ("int64", "int32"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "an integer"
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        want = "a number"
    if not ok:
        raise InputError(
            f"row {row}: field {name!r} must be {want}, got {type(value).__name__}",
            row=row,
            field=name,
        )


def columns_for(inputs: list[TensorSpec], rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Check every row against the signature and build one [n, 1] array per input."""
    names = [s["name"] for s in inputs]
    known = set(names)
    for i, row in enumerate(rows):
        for key in row:
            if key not in known:
                raise InputError(f"row {i}: unknown field {key!r}", row=i, field=str(key))
        for spec in inputs:
            if spec["name"] not in row:
                raise InputError(
                    f"row {i}: missing field {spec['name']!r}", row=i, field=spec["name"]
                )
            _check_value(spec, row[spec["name"]], i)
    feeds: dict[str, np.ndarray] = {}
    for spec in inputs:
        values = [row[spec["name"]] for row in rows]
        dtype = spec["dtype"]
        if dtype == "string":
            arr = np.array(values, dtype=object)
        elif dtype == "bool":
            arr = np.array(values, dtype=np.bool_)
        else:
            arr = np.array(values, dtype=_NUMERIC[dtype])
        feeds[spec["name"]] = arr.reshape(len(values), 1)
    return feeds


def _plain(value: Any) -> Any:
    """numpy scalars to JSON-able Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


@dataclass
class LoadedModel:
    """An InferenceSession with the signed manifest it belongs to."""

    manifest: Manifest
    session: Any
    label_output: str
    proba_output: str
    counter: InferenceCounter = field(default_factory=InferenceCounter)
    """What this release did since it was loaded: the health window reads it."""

    @property
    def name(self) -> str:
        return self.manifest["model"]

    def predict(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predictions for `rows`; InputError for rows that do not fit the signature (not
        counted against the release), InferenceFailed when the model itself fails."""
        if not rows:
            return []
        feeds = columns_for(self.manifest["signature"]["inputs"], rows)
        started = time.perf_counter()
        try:
            out = self._run(feeds)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            self.counter.record(time.perf_counter() - started, failed=True)
            raise InferenceFailed(f"the model failed on these rows: {exc}") from exc
        self.counter.record(time.perf_counter() - started, failed=False)
        return out

    def _infer(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Predict without counting (the self-test is not traffic)."""
        return self._run(columns_for(self.manifest["signature"]["inputs"], rows))

    def _run(self, feeds: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        labels, probas = self.session.run([self.label_output, self.proba_output], feeds)
        classes = [str(c) for c in self.manifest["classes"]]
        out: list[dict[str, Any]] = []
        for label, row_p in zip(labels.reshape(-1), np.asarray(probas), strict=True):
            out.append(
                {
                    "label": _plain(label),
                    "probabilities": {
                        c: float(p) for c, p in zip(classes, row_p.reshape(-1), strict=False)
                    },
                }
            )
        return out

    def self_test(self, profile: str) -> None:
        """Raise SelfTestFailed unless the golden rows reproduce the golden outputs and,
        where the release has a latency budget for `profile` (or a default one), their
        single-row p95 latency is within it."""
        golden = self.manifest["golden"]
        if not golden["rows"]:
            raise SelfTestFailed("the manifest carries no golden rows")
        n_rows, n_labels, n_probs = (len(golden[k]) for k in ("rows", "labels", "probabilities"))
        if not n_rows == n_labels == n_probs:
            raise SelfTestFailed(
                f"the manifest's golden vectors have {n_rows} rows, {n_labels} labels and "
                f"{n_probs} probability rows"
            )
        try:
            got = self._infer(golden["rows"])
        except (InputError, Exception) as exc:
            raise SelfTestFailed(f"golden rows do not run: {exc}") from exc
        classes = [str(c) for c in self.manifest["classes"]]
        for i, (pred, label, probs) in enumerate(
            zip(got, golden["labels"], golden["probabilities"], strict=True)
        ):
            if str(pred["label"]) != str(label):
                raise SelfTestFailed(f"golden row {i}: label {pred['label']!r}, expected {label!r}")
            if len(probs) != len(classes):
                raise SelfTestFailed(
                    f"golden row {i}: {len(probs)} probabilities for {len(classes)} classes"
                )
            for c, want in zip(classes, probs, strict=True):
                have = pred["probabilities"].get(c, math.nan)
                if not abs(have - float(want)) <= GOLDEN_TOLERANCE:
                    raise SelfTestFailed(
                        f"golden row {i}: probability of class {c} is {have:.6f}, "
                        f"expected {float(want):.6f} (tolerance {GOLDEN_TOLERANCE})"
                    )
        budget = latency_budget(self.manifest, profile)
        if budget is None:
            return
        key, limit_ms = budget
        p95, samples = self.single_row_p95_ms()
        if p95 > limit_ms:
            which = (
                f"hardware profile {profile}"
                if key == profile
                else (f"the default (no budget for hardware profile {profile})")
            )
            raise SelfTestFailed(
                f"latency p95 of {p95:.3f} ms over {samples} single-row predictions of the "
                f"golden rows is over the budget of {limit_ms} ms for {which}"
            )

    def single_row_p95_ms(
        self, max_samples: int = LATENCY_SAMPLES, max_s: float = LATENCY_MAX_S
    ) -> tuple[float, int]:
        """p95 (nearest rank) of single-row predictions cycling over the golden rows, after
        one warm-up pass: `max_samples` of them, or as many as fit in `max_s` (at least one)."""
        rows = self.manifest["golden"]["rows"]
        for row in rows:
            self._infer([row])
        times: list[float] = []
        deadline = time.perf_counter() + max_s
        while len(times) < max_samples:
            row = rows[len(times) % len(rows)]
            started = time.perf_counter()
            self._infer([row])
            finished = time.perf_counter()
            times.append((finished - started) * 1000.0)
            if finished >= deadline:
                break
        p95 = nearest_rank(times, 95)
        assert p95 is not None
        return p95, len(times)


def _pick(names: list[str], wanted: str, index: int) -> str:
    if wanted in names:
        return wanted
    if len(names) > index:
        return names[index]
    raise SelfTestFailed(f"the model has no {wanted!r} output (outputs: {names})")


def load_model(path: Path, manifest: Manifest) -> LoadedModel:
    """Open an InferenceSession; the caller has already checked the file's digest."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    # a device shares its cores with the application: keep inference to few threads
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise SelfTestFailed(f"onnxruntime cannot load the model: {exc}") from exc
    model_inputs = {i.name for i in session.get_inputs()}
    signed_inputs = {s["name"] for s in manifest["signature"]["inputs"]}
    if model_inputs != signed_inputs:
        raise SelfTestFailed(
            f"model inputs {sorted(model_inputs)} differ from the signed signature "
            f"{sorted(signed_inputs)}"
        )
    outputs = [o.name for o in session.get_outputs()]
    return LoadedModel(
        manifest=manifest,
        session=session,
        label_output=_pick(outputs, "label", 0),
        proba_output=_pick(outputs, "probabilities", 1),
    )


def execution_providers() -> list[str]:
    """The providers of an onnxruntime already imported; empty before any model loads."""
    import sys

    ort = sys.modules.get("onnxruntime")
    if ort is None:
        return []
    providers: list[str] = ort.get_available_providers()
    return providers
