"""Column roles and the review of proposed classifications (PII, protected, identifiers).

A proposal waits for a data scientist: a role named at upload or set later settles it
(accepted when it is the proposed role, rejected otherwise), or it is accepted or rejected
outright. The stored profile follows: a sensitive column's values leave it, and come back
(re-profiled from the stored rows) when a proposal is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from farpoint.core.errors import ValidationFailed
from farpoint.server.blobs.store import BlobStore
from farpoint.server.datasets.analysis import redact_profile, sensitive_columns
from farpoint.server.datasets.tables import Dataset, DatasetVersion
from farpoint.wire.common import ColumnRole
from farpoint.wire.datasets import ClassificationOut, ColumnFinding

__all__ = [
    "carry_reviews",
    "check_roles",
    "classification_out",
    "pending_review",
    "review",
    "set_roles",
    "settle",
]


def check_roles(roles: Mapping[str, ColumnRole | str], columns: list[str]) -> dict[str, str]:
    """Every column gets a role (unnamed ones are features); at most one label."""
    unknown = sorted(set(roles) - set(columns))
    if unknown:
        raise ValidationFailed(
            f"roles name columns the table does not have: {unknown}; its columns are {columns}"
        )
    full = {c: ColumnRole(roles.get(c, ColumnRole.FEATURE)).value for c in columns}
    labels = [c for c, r in full.items() if r == ColumnRole.LABEL]
    if len(labels) > 1:
        raise ValidationFailed(f"at most one column can be the label; got {labels}")
    return full


def pending_review(v: DatasetVersion) -> list[str]:
    return sorted(c for c, f in (v.classification or {}).items() if f.get("status") == "proposed")


def settle(
    proposals: dict[str, Any],
    given: Mapping[str, Any],
    full_roles: Mapping[str, str],
    actor: str,
) -> dict[str, Any]:
    """A role the uploader named for a column is their decision on its proposal: accepted
    when it is the proposed role, rejected otherwise; unnamed columns wait for review."""
    out = {}
    for column, finding in proposals.items():
        if column in given:
            accepted = full_roles[column] == finding.get("role")
            finding = {
                **finding,
                "status": "accepted" if accepted else "rejected",
                "reviewed_by": actor,
            }
        out[column] = finding
    return out


def carry_reviews(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """A derived version keeps the decisions people already took on the same proposals."""
    out = {}
    for column, finding in new.items():
        before = old.get(column)
        if (
            before
            and before.get("role") == finding.get("role")
            and before.get("status") != "proposed"
        ):
            finding = {
                **finding,
                "status": before["status"],
                "reviewed_by": before.get("reviewed_by"),
            }
        out[column] = finding
    return out


def set_roles(
    s: Session,
    blobs: BlobStore,
    v: DatasetVersion,
    roles: Mapping[str, ColumnRole | str],
    actor: str,
) -> DatasetVersion:
    """Replace the column roles; a role given for a proposed column settles its proposal."""
    v.roles = check_roles(roles, [c["name"] for c in v.columns])
    classification = dict(v.classification or {})
    for column, finding in classification.items():
        if column in roles and finding.get("status") == "proposed":
            accepted = v.roles[column] == finding.get("role")
            status = "accepted" if accepted else "rejected"
            classification[column] = {**finding, "status": status, "reviewed_by": actor}
    v.classification = classification
    _refresh_profile(v, blobs)
    s.flush()
    return v


def _refresh_profile(v: DatasetVersion, blobs: BlobStore) -> None:
    """Keep the stored profile in step with the columns' roles: a column that became
    sensitive loses its values; one that stopped being sensitive (a rejected proposal) gets
    them back, re-profiled from the stored rows while they are there."""
    if not v.profile:
        return
    from farpoint.ml.profile import profile_parquet

    sensitive = sensitive_columns(v.roles, v.classification or {})
    columns = v.profile.get("columns", {})
    regained = [c for c, st in columns.items() if st.get("redacted") and c not in sensitive]
    profile = v.profile
    if regained and v.blob_digest is not None:
        profile = profile_parquet(blobs.path(v.blob_digest), v.roles)
    profile = redact_profile(profile, sensitive)
    for column, stats in profile.get("columns", {}).items():
        if isinstance(stats, dict) and column in v.roles:
            stats["role"] = v.roles[column]
    v.profile = profile


def classification_out(dataset: Dataset, v: DatasetVersion) -> ClassificationOut:
    return ClassificationOut(
        ref=f"{dataset.name}@{v.version}",
        roles=v.roles,
        findings=[
            ColumnFinding(
                column=c, **{k: f.get(k) for k in ColumnFinding.model_fields if k != "column"}
            )
            for c, f in sorted((v.classification or {}).items())
        ],
    )


def review(
    s: Session,
    blobs: BlobStore,
    v: DatasetVersion,
    accept: list[str],
    reject: list[str],
    actor: str,
) -> DatasetVersion:
    """Accept proposals (the column takes the proposed role) or reject them."""
    classification = dict(v.classification or {})
    both = sorted(set(accept) & set(reject))
    if both:
        raise ValidationFailed(f"columns both accepted and rejected: {both}")
    unknown = sorted((set(accept) | set(reject)) - set(classification))
    if unknown:
        raise ValidationFailed(
            f"no proposal to review for {unknown}; proposals exist for {sorted(classification)}"
        )
    roles = dict(v.roles)
    for column in accept:
        proposed = classification[column]["role"]
        if proposed == ColumnRole.LABEL.value:
            raise ValidationFailed(f"{column!r}: a proposal cannot make a column the label")
        roles[column] = proposed
        classification[column] = {
            **classification[column],
            "status": "accepted",
            "reviewed_by": actor,
        }
    for column in reject:
        classification[column] = {
            **classification[column],
            "status": "rejected",
            "reviewed_by": actor,
        }
    v.roles = check_roles(roles, [c["name"] for c in v.columns])
    v.classification = classification
    _refresh_profile(v, blobs)
    s.flush()
    return v
