"""A dataset's contract (inferred from its first version, then edited as YAML, every edit a
new version), and what was learned of each version: quality report, profile, comparison."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from farpoint.core.errors import NotFound
from farpoint.server.datasets import repository as repo
from farpoint.server.datasets.analysis import redact_profile, sensitive_columns
from farpoint.server.datasets.tables import Dataset, DatasetContract, DatasetVersion
from farpoint.wire.datasets import ContractOut, QualityOut

__all__ = [
    "add_contract",
    "compare",
    "contract_of",
    "contract_out",
    "profile_of",
    "quality_out",
    "set_contract",
]


def contract_out(dataset: Dataset, c: DatasetContract) -> ContractOut:
    return ContractOut(
        dataset=dataset.name,
        version=c.version,
        yaml=c.yaml,
        spec=c.spec,
        source=c.source,
        created_by=c.created_by,
        created_at=c.created_at,
    )


def add_contract(
    s: Session, dataset: Dataset, spec: dict[str, Any], text: str, source: str, actor: str
) -> DatasetContract:
    latest = repo.latest_contract(s, dataset.id)
    c = DatasetContract(
        dataset_id=dataset.id,
        version=(latest.version if latest else 0) + 1,
        spec=spec,
        yaml=text,
        source=source[:80],
        created_by=actor,
    )
    s.add(c)
    s.flush()
    return c


def quality_out(dataset: Dataset, v: DatasetVersion) -> QualityOut:
    if v.quality is None:
        raise NotFound(f"{dataset.name}@{v.version} was registered before quality reports existed")
    return QualityOut(
        ref=f"{dataset.name}@{v.version}",
        report=v.quality,
        validation=v.validation,
        contract_version=v.contract_version,
    )


def profile_of(dataset: Dataset, v: DatasetVersion) -> dict[str, Any]:
    if v.profile is None:
        raise NotFound(f"{dataset.name}@{v.version} was registered before profiles existed")
    return v.profile


def contract_of(s: Session, dataset: Dataset, version: int | None = None) -> ContractOut:
    name = dataset.name
    c = repo.contract(s, dataset.id, version) if version else repo.latest_contract(s, dataset.id)
    if c is None:
        raise NotFound(
            f"dataset {name!r} has no contract{f' version {version}' if version else ''}; "
            "one is inferred from its first version"
        )
    return contract_out(dataset, c)


def set_contract(s: Session, dataset: Dataset, text: str, actor: str) -> ContractOut:
    """A new contract version from edited YAML; later versions are validated against it."""
    from farpoint.ml.contract import parse_contract

    spec = parse_contract(text)
    return contract_out(dataset, add_contract(s, dataset, spec, text, "edited", actor))


def compare(dataset: Dataset, a: DatasetVersion, b: DatasetVersion, path: Path) -> dict[str, Any]:
    """Schema diff and per-column distribution shift from version `a` to `b` (whose rows are
    at `path`), `b` counted into `a`'s frozen bins."""
    from farpoint.ml.contract import schema_diff
    from farpoint.ml.profile import compare_profiles, profile_parquet

    if a.profile is None or b.profile is None:
        raise NotFound("both versions need a profile; one was registered before profiles existed")
    recounted = profile_parquet(path, b.roles, reference=a.profile)
    sensitive = sensitive_columns(a.roles, a.classification or {}) | sensitive_columns(
        b.roles, b.classification or {}
    )
    columns = compare_profiles(a.profile, recounted).get("columns", {})
    return {
        "dataset": dataset.name,
        "old": f"{dataset.name}@{a.version}",
        "new": f"{dataset.name}@{b.version}",
        "schema_changes": schema_diff(a.columns, b.columns),
        "columns": redact_profile({"columns": columns}, sensitive)["columns"],
    }
