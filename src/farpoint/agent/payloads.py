"""The JSON the agent exchanges with the server, as light typed structures of its own.

They mirror `farpoint.wire.devices` and the release manifest in docs/api.md; the agent
may not import pydantic, so the parsers below check shapes by hand and raise
`PayloadError` naming the field that is wrong.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, NotRequired, TypedDict, cast

__all__ = [
    "DEFAULT_HEALTH",
    "MAX_BUDGET_PROFILES",
    "PHASES",
    "PROFILE_PATTERN",
    "Budgets",
    "DesiredModel",
    "DesiredState",
    "DeviceModelStatus",
    "DeviceStatusReport",
    "DiagnosticsRequest",
    "DiagnosticsUpload",
    "EnrollRequest",
    "EnrollResponse",
    "Golden",
    "HealthPolicy",
    "KeyRotated",
    "KeyRotation",
    "LogLine",
    "Manifest",
    "PayloadError",
    "Phase",
    "TensorSpec",
    "parse_budgets",
    "parse_desired_state",
    "parse_enroll_response",
    "parse_health",
    "parse_key_rotated",
    "parse_manifest",
]

Phase = Literal[
    "pending", "downloading", "verifying", "installing", "active", "failed", "rolled_back"
]
PHASES: tuple[str, ...] = (
    "pending",
    "downloading",
    "verifying",
    "installing",
    "active",
    "failed",
    "rolled_back",
)
MANIFEST_SCHEMA = "farpoint.release-manifest/v1"
TENSOR_DTYPES = ("float32", "float64", "int64", "int32", "string", "bool")
PROFILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$"
"""A hardware profile name (`x86_64`, `aarch64`, `jetson-orin`) or `default`."""
MAX_BUDGET_PROFILES = 16
_PROFILE_RE = re.compile(PROFILE_PATTERN)


class PayloadError(ValueError):
    """A document from the server does not have the expected shape."""


class EnrollRequest(TypedDict):
    token: str
    name: str
    public_key_pem: str
    labels: dict[str, str]
    hardware: dict[str, Any]


class EnrollResponse(TypedDict):
    device_id: str
    root_json_b64: str
    labels: dict[str, str]
    state: str
    """`pending` until IT operations approve the device (token with approval), else active."""


class KeyRotation(TypedDict):
    public_key_pem: str
    old_key_id: str
    proof_b64: str


class KeyRotated(TypedDict):
    device_id: str
    key_id: str
    previous_key_id: str | None
    rotated_at: str | None


class LogLine(TypedDict):
    at: float
    level: str
    logger: str
    message: str


class DiagnosticsUpload(TypedDict):
    logs: list[LogLine]
    errors: list[LogLine]
    dropped_lines: int
    agent: dict[str, Any]


class HealthPolicy(TypedDict):
    window_s: int
    max_error_rate: float
    min_requests: int
    max_latency_p95_ms: float | None
    max_crashes: int


DEFAULT_HEALTH: HealthPolicy = {
    "window_s": 60,
    "max_error_rate": 0.05,
    "min_requests": 20,
    "max_latency_p95_ms": None,
    "max_crashes": 1,
}


class DesiredModel(TypedDict):
    model: str
    release_id: int
    manifest_digest: str
    model_digest: str
    fleet: str
    rollout_id: int | None
    health: HealthPolicy


class DiagnosticsRequest(TypedDict):
    id: int


class DesiredState(TypedDict):
    device_id: str
    etag: str
    models: list[DesiredModel]
    diagnostics: DiagnosticsRequest | None


class DeviceModelStatus(TypedDict):
    model: str
    release_id: int | None
    phase: Phase
    error: str | None
    committed: NotRequired[bool]
    serving_release_id: NotRequired[int | None]
    rollout_id: NotRequired[int | None]


class DeviceStatusReport(TypedDict):
    models: list[DeviceModelStatus]
    heartbeat: dict[str, Any]
    telemetry: NotRequired[list[dict[str, Any]]]
    dropped_telemetry: NotRequired[int]


class TensorSpec(TypedDict):
    name: str
    dtype: str
    shape: list[int | None]


class Signature(TypedDict):
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


class Golden(TypedDict):
    rows: list[dict[str, Any]]
    labels: list[int | str]
    probabilities: list[list[float]]


class Budgets(TypedDict):
    latency_p95_ms: dict[str, float]
    """Per hardware profile (or `default`): single-row p95 latency the self-test allows."""


class Manifest(TypedDict):
    schema: str
    release_id: int
    model: str
    model_version: int
    model_ref: str
    model_digest: str
    model_size: int
    signature: Signature
    label_column: str
    classes: list[int | str]
    golden: Golden
    evaluation_id: NotRequired[int]
    author: NotRequired[str]
    created_at: NotRequired[str]
    budgets: NotRequired[Budgets]


def _field(doc: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(doc, dict):
        raise PayloadError(f"{where}: expected a JSON object")
    if key not in doc:
        raise PayloadError(f"{where}: missing field {key!r}")
    value = doc[key]
    # bool is an int in Python; a JSON true where a number belongs is still wrong
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise PayloadError(f"{where}: field {key!r} has the wrong type")
    if not isinstance(value, kind):
        raise PayloadError(f"{where}: field {key!r} has the wrong type")
    return value


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise PayloadError(f"{where}: expected an object of strings")
    return cast(dict[str, str], value)


def parse_enroll_response(doc: Any) -> EnrollResponse:
    where = "enrollment response"
    state = doc.get("state", "active") if isinstance(doc, dict) else "active"
    if state not in ("pending", "active"):
        raise PayloadError(f"{where}: unexpected device state {state!r}")
    return {
        "device_id": _field(doc, "device_id", str, where),
        "root_json_b64": _field(doc, "root_json_b64", str, where),
        "labels": _str_map(doc.get("labels", {}), where + " labels"),
        "state": state,
    }


def parse_key_rotated(doc: Any) -> KeyRotated:
    where = "key rotation answer"
    return {
        "device_id": _field(doc, "device_id", str, where),
        "key_id": _field(doc, "key_id", str, where),
        "previous_key_id": _optional(doc, "previous_key_id", str, where),
        "rotated_at": _optional(doc, "rotated_at", str, where),
    }


def _optional(doc: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """A field that may be missing or null (None then)."""
    if doc.get(key) is None:
        return None
    return _field(doc, key, kind, where)


def _number(doc: dict[str, Any], key: str, where: str, default: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PayloadError(f"{where}: field {key!r} must be a non-negative number")
    return float(value)


def _count(doc: dict[str, Any], key: str, where: str, default: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(f"{where}: field {key!r} must be a non-negative integer")
    return value


def parse_health(doc: Any, where: str) -> HealthPolicy:
    """The health window settings; missing fields take DEFAULT_HEALTH's values."""
    if doc is None:
        return dict(DEFAULT_HEALTH)  # type: ignore[return-value]
    if not isinstance(doc, dict):
        raise PayloadError(f"{where}: expected a JSON object")
    d = DEFAULT_HEALTH
    p95 = doc.get("max_latency_p95_ms")
    return {
        "window_s": _count(doc, "window_s", where, d["window_s"]),
        "max_error_rate": min(1.0, _number(doc, "max_error_rate", where, d["max_error_rate"])),
        "min_requests": max(1, _count(doc, "min_requests", where, d["min_requests"])),
        "max_latency_p95_ms": None
        if p95 is None
        else _number(doc, "max_latency_p95_ms", where, 0.0),
        "max_crashes": _count(doc, "max_crashes", where, d["max_crashes"]),
    }


def parse_desired_state(doc: Any) -> DesiredState:
    where = "desired state"
    models: list[DesiredModel] = []
    for i, item in enumerate(_field(doc, "models", list, where)):
        w = f"{where} models[{i}]"
        models.append(
            {
                "model": _field(item, "model", str, w),
                "release_id": _field(item, "release_id", int, w),
                "manifest_digest": _field(item, "manifest_digest", str, w),
                "model_digest": _field(item, "model_digest", str, w),
                "fleet": _field(item, "fleet", str, w) if "fleet" in item else "",
                "rollout_id": _optional(item, "rollout_id", int, w),
                "health": parse_health(item.get("health"), w + " health"),
            }
        )
    diagnostics = _optional(doc, "diagnostics", dict, where)
    return {
        "device_id": _field(doc, "device_id", str, where),
        "etag": _field(doc, "etag", str, where),
        "models": models,
        "diagnostics": None
        if diagnostics is None
        else {"id": _field(diagnostics, "id", int, where + " diagnostics")},
    }


def _tensor_specs(value: Any, where: str) -> list[TensorSpec]:
    if not isinstance(value, list):
        raise PayloadError(f"{where}: expected a list")
    specs: list[TensorSpec] = []
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        dtype = _field(item, "dtype", str, w)
        if dtype not in TENSOR_DTYPES:
            raise PayloadError(f"{w}: unsupported dtype {dtype!r}")
        shape = _field(item, "shape", list, w)
        if not all(d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape):
            raise PayloadError(f"{w}: shape must hold integers or null")
        specs.append({"name": _field(item, "name", str, w), "dtype": dtype, "shape": shape})
    return specs


def parse_budgets(doc: Any, where: str) -> Budgets:
    """The release's budgets; a budget this agent does not know how to hold is refused
    (enforcing less than the release asks would be a silent failure)."""
    if not isinstance(doc, dict):
        raise PayloadError(f"{where}: expected a JSON object")
    unknown = sorted(set(doc) - {"latency_p95_ms"})
    if unknown:
        raise PayloadError(
            f"{where}: unknown budget {unknown[0]!r} (this agent knows latency_p95_ms)"
        )
    latency = doc.get("latency_p95_ms", {})
    w = where + " latency_p95_ms"
    if not isinstance(latency, dict):
        raise PayloadError(f"{w}: expected an object of hardware profile to milliseconds")
    if len(latency) > MAX_BUDGET_PROFILES:
        raise PayloadError(f"{w}: {len(latency)} profiles, at most {MAX_BUDGET_PROFILES}")
    out: dict[str, float] = {}
    for profile, ms in latency.items():
        if not isinstance(profile, str) or not _PROFILE_RE.match(profile):
            raise PayloadError(f"{w}: {profile!r} is not a hardware profile name")
        if (
            isinstance(ms, bool)
            or not isinstance(ms, int | float)
            or not math.isfinite(ms)
            or ms <= 0
        ):
            raise PayloadError(f"{w}: the budget of {profile!r} must be a positive number of ms")
        out[profile] = float(ms)
    return {"latency_p95_ms": out}


def parse_manifest(doc: Any) -> Manifest:
    """Check a verified manifest payload's shape; the signature was checked before."""
    where = "release manifest"
    schema = _field(doc, "schema", str, where)
    if schema != MANIFEST_SCHEMA:
        raise PayloadError(f"{where}: unknown schema {schema!r}, expected {MANIFEST_SCHEMA!r}")
    signature = _field(doc, "signature", dict, where)
    golden = _field(doc, "golden", dict, where)
    rows = _field(golden, "rows", list, where + " golden")
    labels = _field(golden, "labels", list, where + " golden")
    probabilities = _field(golden, "probabilities", list, where + " golden")
    if not all(isinstance(r, dict) for r in rows):
        raise PayloadError(f"{where}: golden rows must be objects")
    if not (len(rows) == len(labels) == len(probabilities)):
        raise PayloadError(f"{where}: golden rows, labels and probabilities differ in length")
    classes = _field(doc, "classes", list, where)
    if not all(isinstance(c, int | str) and not isinstance(c, bool) for c in classes):
        raise PayloadError(f"{where}: classes must be integers or strings")
    size = _field(doc, "model_size", int, where)
    if size < 0:
        raise PayloadError(f"{where}: model_size is negative")
    manifest: Manifest = {
        "schema": schema,
        "release_id": _field(doc, "release_id", int, where),
        "model": _field(doc, "model", str, where),
        "model_version": _field(doc, "model_version", int, where),
        "model_ref": _field(doc, "model_ref", str, where),
        "model_digest": _field(doc, "model_digest", str, where),
        "model_size": size,
        "signature": {
            "inputs": _tensor_specs(signature.get("inputs"), where + " signature.inputs"),
            "outputs": _tensor_specs(signature.get("outputs"), where + " signature.outputs"),
        },
        "label_column": _field(doc, "label_column", str, where),
        "classes": classes,
        "golden": {"rows": rows, "labels": labels, "probabilities": probabilities},
    }
    if isinstance(doc.get("evaluation_id"), int):
        manifest["evaluation_id"] = doc["evaluation_id"]
    if isinstance(doc.get("author"), str):
        manifest["author"] = doc["author"]
    if isinstance(doc.get("created_at"), str):
        manifest["created_at"] = doc["created_at"]
    if doc.get("budgets") is not None:
        manifest["budgets"] = parse_budgets(doc["budgets"], where + " budgets")
    return manifest
