"""What the server learns about a version's rows before it records it: contract validation,
profile, proposed classification and quality report, all streamed from the canonical
Parquet file (bounded memory whatever the size)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SENSITIVE_ROLES", "Analysis", "analyze", "classification_of", "redact_profile"]

SENSITIVE_ROLES = frozenset({"pii", "id"})
"""Columns whose values never appear in metadata (profile, contract, quality examples)."""

# Read at most one row group to propose a classification: detectors sample ~1,000 values.
_CLASSIFY_ROWS = 131_072


@dataclasses.dataclass(frozen=True)
class Analysis:
    profile: dict[str, Any]
    validation: dict[str, Any]
    quality: dict[str, Any]
    classification: dict[str, Any]
    inferred_contract: dict[str, Any] | None
    """The contract inferred from these rows when the dataset had none (its first version)."""


def classification_of(parquet: Path) -> dict[str, Any]:
    """Proposals for the columns that look like PII, protected attributes or identifiers,
    as `{column: {"role", "kind", "confidence", "evidence", "source", "status"}}`."""
    import pyarrow.parquet as pq

    from farpoint.ml.pii import propose_classification

    pf = pq.ParquetFile(parquet)
    if pf.metadata.num_row_groups == 0:
        return {}
    sample = pf.read_row_group(0).slice(0, _CLASSIFY_ROWS)
    found = propose_classification(sample)
    return {
        column: {
            "role": f.role,
            "kind": f.kind,
            "confidence": round(float(f.confidence), 3),
            "evidence": f.evidence,
            "source": f.source,
            "status": "proposed",
            "reviewed_by": None,
        }
        for column, f in sorted(found.items())
    }


def sensitive_columns(roles: Mapping[str, str], classification: Mapping[str, Any]) -> set[str]:
    """Columns classified (or proposed and not rejected) as PII or identifiers."""
    out = {c for c, r in roles.items() if r in SENSITIVE_ROLES}
    for column, finding in classification.items():
        if finding.get("role") in SENSITIVE_ROLES and finding.get("status") != "rejected":
            out.add(column)
    return out


_VALUE_KEYS = ("top", "categories", "min", "max", "quantiles", "histogram", "examples", "mean")


def redact_profile(profile: dict[str, Any], sensitive: set[str]) -> dict[str, Any]:
    """The profile without any value of a sensitive column (only counts and types stay):
    metadata is readable by every role, rows only by the owning team's scientists."""
    columns = profile.get("columns")
    if not isinstance(columns, dict):
        return profile
    out = dict(profile)
    out["columns"] = {}
    for name, stats in columns.items():
        if name in sensitive and isinstance(stats, dict):
            kept = {k: v for k, v in stats.items() if k not in _VALUE_KEYS and not _valued(v)}
            kept["redacted"] = True
            out["columns"][name] = kept
        else:
            out["columns"][name] = stats
    return out


def _valued(v: Any) -> bool:
    # Nested structures of a sensitive column may hold its values: keep scalars only.
    return isinstance(v, dict | list)


def redact_validation(validation: dict[str, Any], sensitive: set[str]) -> dict[str, Any]:
    """Contract failures keep their counts; examples of sensitive columns lose their values."""
    out = dict(validation)
    failures = []
    for f in validation.get("failures", []):
        if f.get("column") in sensitive:
            f = {**f, "examples": [{"row": e.get("row")} for e in f.get("examples", [])]}
        failures.append(f)
    out["failures"] = failures
    return out


def analyze(
    parquet: Path,
    *,
    columns: list[dict[str, Any]],
    roles: Mapping[str, str],
    contract: dict[str, Any] | None,
) -> Analysis:
    """Classify, profile, validate against `contract` (inferred from these rows when None)
    and judge quality."""
    from farpoint.ml.contract import infer_contract
    from farpoint.ml.registration import analyze_rows

    classification = classification_of(parquet)
    sensitive = sensitive_columns(roles, classification)
    # Sensitive columns get type and nullability only: their values stay out of it.
    guarded = {**roles, **{c: "pii" for c in sensitive if roles.get(c) != "id"}}
    # One orchestrated pipeline reads the file as few times as these results allow; the
    # results are those of profile_parquet, infer_contract, validate_parquet and
    # quality_report called one after the other.
    rows = analyze_rows(
        parquet,
        columns=columns,
        roles=roles,
        contract=contract,
        infer=lambda profile: infer_contract(columns, profile, guarded),
    )
    profile, validation, quality = rows.profile, rows.validation, rows.quality
    inferred = rows.contract if contract is None else None
    return Analysis(
        profile=redact_profile(profile, sensitive),
        validation=redact_validation(validation, sensitive),
        quality=quality,
        classification=classification,
        inferred_contract=inferred,
    )
